//! Outlier scores: how far a video beats its own channel's typical views, per format
//! (long-form, Shorts, streams) and, where metric histories allow, at the same age.
//!
//! Everything here is pure: the stores load a channel's videos with their view histories,
//! call [`score_channel`] inside the save transaction, and store what it returns (the
//! channel's [`Baseline`]s and each video's [`OutlierScore`]). `docs/ideas.md` explains
//! the rules for people.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::content::ContentItem;
use crate::error::ValidationError;
use crate::Timestamp;

const DAY_MS: i64 = 86_400_000;

/// A video's format; each format is measured against its own channel median.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoFormat {
    /// A regular upload.
    Long,
    /// A YouTube Short.
    Short,
    /// A live stream (live now, upcoming, or a past broadcast).
    Stream,
}

impl VideoFormat {
    /// Every format, in the order baselines are listed.
    pub const ALL: [VideoFormat; 3] = [VideoFormat::Long, VideoFormat::Short, VideoFormat::Stream];
    /// The accepted spellings, for error messages.
    pub const ACCEPTED: &'static str = "long, short or stream";

    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoFormat::Long => "long",
            VideoFormat::Short => "short",
            VideoFormat::Stream => "stream",
        }
    }
}

impl fmt::Display for VideoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VideoFormat {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "long" => Ok(VideoFormat::Long),
            "short" => Ok(VideoFormat::Short),
            "stream" => Ok(VideoFormat::Stream),
            _ => Err(ValidationError::new(
                "format",
                format!("{:?} is not a format", crate::task::truncate_for_message(s)),
                VideoFormat::ACCEPTED,
            )),
        }
    }
}

/// Which views a score compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AgeBasis {
    /// Views at 7 days of age against the channel's median at 7 days.
    #[serde(rename = "age_7d")]
    Age7d,
    /// Views at 30 days of age against the channel's median at 30 days.
    #[serde(rename = "age_30d")]
    Age30d,
    /// Total views of a video old enough against the median total of recent uploads.
    #[serde(rename = "total")]
    Total,
}

impl AgeBasis {
    /// Every basis, in the order baselines are listed.
    pub const ALL: [AgeBasis; 3] = [AgeBasis::Age7d, AgeBasis::Age30d, AgeBasis::Total];

    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgeBasis::Age7d => "age_7d",
            AgeBasis::Age30d => "age_30d",
            AgeBasis::Total => "total",
        }
    }

    /// The age compared, in days; `None` for [`AgeBasis::Total`].
    pub fn age_days(self) -> Option<i64> {
        match self {
            AgeBasis::Age7d => Some(7),
            AgeBasis::Age30d => Some(30),
            AgeBasis::Total => None,
        }
    }
}

impl fmt::Display for AgeBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgeBasis {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgeBasis::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "basis",
                    format!(
                        "{:?} is not an age basis",
                        crate::task::truncate_for_message(s)
                    ),
                    "age_7d, age_30d or total",
                )
            })
    }
}

/// How baselines are chosen (the `[ideas]` configuration section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutlierSettings {
    /// The most recent uploads a baseline is the median of (per format and basis).
    pub window: u32,
    /// Uploads younger than this many days are left out of the total-views baseline.
    pub baseline_min_age_days: u32,
    /// Fewer uploads than this in a sample: no baseline, so no score.
    pub min_sample: u32,
    /// A video scored on its total views must be at least this many days old.
    pub score_min_age_days: u32,
    /// The shortest span of history a growth rate is reported over, in minutes
    /// ([`crate::growth`]; `[ideas] growth_min_span_minutes`).
    pub growth_min_span_minutes: u32,
}

impl Default for OutlierSettings {
    fn default() -> Self {
        OutlierSettings {
            window: 30,
            baseline_min_age_days: 7,
            min_sample: 10,
            score_min_age_days: 30,
            growth_min_span_minutes: 30,
        }
    }
}

impl OutlierSettings {
    /// [`Self::growth_min_span_minutes`] in seconds.
    pub fn growth_min_span_secs(&self) -> i64 {
        i64::from(self.growth_min_span_minutes) * 60
    }

    /// Checks the ranges: a window of 1–1,000 uploads, a minimum sample of 1 up to the
    /// window, ages of 0–3,650 days, a minimum growth span of 1–1,440 minutes.
    ///
    /// # Errors
    /// The first value out of range.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !(1..=1_000).contains(&self.window) {
            return Err(ValidationError::new(
                "window",
                format!("{} is out of range", self.window),
                "1 to 1000 uploads",
            ));
        }
        if self.min_sample < 1 || self.min_sample > self.window {
            return Err(ValidationError::new(
                "min_sample",
                format!("{} is out of range", self.min_sample),
                format!("1 to the window ({})", self.window),
            ));
        }
        if !(1..=1_440).contains(&self.growth_min_span_minutes) {
            return Err(ValidationError::new(
                "growth_min_span_minutes",
                format!("{} is out of range", self.growth_min_span_minutes),
                "1 to 1440 minutes",
            ));
        }
        for (field, v) in [
            ("baseline_min_age_days", self.baseline_min_age_days),
            ("score_min_age_days", self.score_min_age_days),
        ] {
            if v > 3_650 {
                return Err(ValidationError::new(
                    field,
                    format!("{v} is out of range"),
                    "0 to 3650 days",
                ));
            }
        }
        Ok(())
    }
}

/// The format a stored item is, from what its source said: a live status naming a
/// broadcast (`live`, `is_live`, `was_live`, `post_live`, `upcoming`, `is_upcoming`,
/// `completed`), yt-dlp's `media_type` `livestream`, or the `streams` tab makes a stream;
/// otherwise `is_short` decides (set only where the source knows), then `media_type`
/// (`short`, `video`), then the tab it was listed from (`shorts`, `videos`). Without any of
/// these, a duration over 180 s (YouTube's longest Short) makes a long-form video; a shorter
/// one is not guessed to be a Short, so the format is unknown and the item is neither in a
/// baseline nor scored.
pub fn format_of(item: &ContentItem) -> Option<VideoFormat> {
    format_from(&item.extra, item.duration_secs)
}

/// [`format_of`] from an item's `extra` fields and duration alone (what a store keeps).
pub fn format_from(
    extra: &serde_json::Map<String, serde_json::Value>,
    duration_secs: Option<i64>,
) -> Option<VideoFormat> {
    let text = |key: &str| {
        extra
            .get(key)
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_ascii_lowercase())
    };
    let (live, media, tab) = (text("live_status"), text("media_type"), text("tab"));
    let broadcast = live.as_deref().is_some_and(|s| {
        matches!(
            s,
            "live"
                | "is_live"
                | "was_live"
                | "post_live"
                | "upcoming"
                | "is_upcoming"
                | "completed"
        )
    });
    if broadcast || media.as_deref() == Some("livestream") || tab.as_deref() == Some("streams") {
        return Some(VideoFormat::Stream);
    }
    if let Some(short) = extra.get("is_short").and_then(|v| v.as_bool()) {
        return Some(if short {
            VideoFormat::Short
        } else {
            VideoFormat::Long
        });
    }
    match (media.as_deref(), tab.as_deref()) {
        (Some("short"), _) | (None, Some("shorts")) => Some(VideoFormat::Short),
        (Some("video"), _) | (None, Some("videos")) => Some(VideoFormat::Long),
        _ => duration_secs
            .filter(|d| *d > 180)
            .map(|_| VideoFormat::Long),
    }
}

/// One of a channel's videos as the score needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelVideo {
    /// When it was published; without it the video is neither in a baseline nor scored.
    pub published_at: Option<Timestamp>,
    /// Its current views.
    pub views: Option<i64>,
    /// Its format ([`format_of`]).
    pub format: Option<VideoFormat>,
    /// Every observation of its views (instant, views), in any order: the metric snapshots
    /// and the current views at the last save.
    pub history: Vec<(Timestamp, i64)>,
}

/// A channel's median for one format and basis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The format measured.
    pub format: VideoFormat,
    /// The views compared.
    pub basis: AgeBasis,
    /// The median views of the sample; absent when the sample is below the minimum or the
    /// median is 0 (nothing to divide by).
    pub median: Option<f64>,
    /// How many uploads the sample holds (at most the window).
    pub sample: u32,
}

/// A video's score and what it was measured against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OutlierScore {
    /// `views / baseline − 1`: 0 is typical for the channel, 2.0 is three times typical.
    pub score: f64,
    /// Which views were compared.
    pub basis: AgeBasis,
    /// The channel median it was compared with.
    pub baseline: f64,
    /// How many uploads that median is of.
    pub sample: u32,
    /// The video's views that were compared (at the basis's age, or in total).
    pub views: i64,
}

/// A channel's baselines and its videos' scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelOutliers {
    /// One per (format present among the videos, basis), formats then bases in order.
    pub baselines: Vec<Baseline>,
    /// One per input video, in input order; `None` when it cannot be scored.
    pub scores: Vec<Option<OutlierScore>>,
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0
    })
}

/// Whether an observation at `at` of a video published at `published` can be one that
/// [`views_at_age`] picks for 7 or 30 days of age (it lies within either tolerance). A save
/// that changes nothing but moves the video's latest observation between two instants for
/// which this is false leaves its [`VideoValues`] as they were.
pub fn observation_counts(published: Timestamp, at: Timestamp) -> bool {
    [7, 30].into_iter().any(|days| {
        let target = published.as_millisecond() + days * DAY_MS;
        (at.as_millisecond() - target).abs() <= days * DAY_MS / 7
    })
}

/// The instants (milliseconds, both included) within which [`views_at_age`] looks for an
/// observation of a video published at `published_at`: `age_days` of age, a seventh of it
/// either side. A store need read no observation outside them.
pub fn age_window_ms(published_at: Timestamp, age_days: i64) -> (i64, i64) {
    let target = published_at.as_millisecond() + age_days * DAY_MS;
    let tolerance = age_days * DAY_MS / 7;
    (target - tolerance, target + tolerance)
}

/// The views a video had at `age_days` of age: the observation nearest to that instant
/// within a seventh of the age either side (a day either side of 7 days, about four days
/// of 30), ties to the earlier one; `None` without such an observation.
pub fn views_at_age(
    published_at: Timestamp,
    history: &[(Timestamp, i64)],
    age_days: i64,
) -> Option<i64> {
    let target = published_at.as_millisecond() + age_days * DAY_MS;
    let (from, to) = age_window_ms(published_at, age_days);
    history
        .iter()
        .map(|(at, v)| {
            (
                (at.as_millisecond() - target).abs(),
                at.as_millisecond(),
                *v,
            )
        })
        .filter(|(_, at, _)| (from..=to).contains(at))
        .min_by_key(|(dist, at, _)| (*dist, *at))
        .map(|(_, _, v)| v)
}

/// What one video brings to its channel's baselines and to its own score, computed once
/// from its stored fields and view history. None of it depends on the clock, so a store can
/// keep these values beside the video and recompute them only when the video is saved
/// again; [`VideoValues::value`] applies the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoValues {
    /// Its format; without one it is neither in a baseline nor scored.
    pub format: Option<VideoFormat>,
    /// When it was published; without it the video is neither in a baseline nor scored.
    pub published_at: Option<Timestamp>,
    /// Its current views.
    pub views: Option<i64>,
    /// Its views at 7 days of age ([`views_at_age`]).
    pub at_7d: Option<i64>,
    /// Its views at 30 days of age ([`views_at_age`]).
    pub at_30d: Option<i64>,
}

impl VideoValues {
    /// The values of `video`.
    pub fn of(video: &ChannelVideo) -> Self {
        let at = |days| {
            video
                .published_at
                .and_then(|p| views_at_age(p, &video.history, days))
        };
        VideoValues {
            format: video.format,
            published_at: video.published_at,
            views: video.views,
            at_7d: at(7),
            at_30d: at(30),
        }
    }

    /// The views this video contributes for `basis` as of `now`: none when it was
    /// published after `now`; for [`AgeBasis::Total`], none when it is younger than
    /// `min_age_days`.
    pub fn value(&self, basis: AgeBasis, now: Timestamp, min_age_days: u32) -> Option<i64> {
        let published = self.published_at?;
        if published > now {
            return None;
        }
        match basis {
            AgeBasis::Age7d => self.at_7d,
            AgeBasis::Age30d => self.at_30d,
            AgeBasis::Total => {
                (published <= total_cutoff(now, min_age_days)).then_some(self.views)?
            }
        }
    }
}

/// The latest publication instant a video may have to count on its total views as of
/// `now` when it must be `min_age_days` old.
pub fn total_cutoff(now: Timestamp, min_age_days: u32) -> Timestamp {
    Timestamp::from_millisecond(now.as_millisecond() - i64::from(min_age_days) * DAY_MS)
        .unwrap_or(Timestamp::MIN)
}

impl Baseline {
    /// The baseline of a sample: `values` are the views of the `window` most recently
    /// published videos of `format` that have a value for `basis`, newest first (a store
    /// reads them through an index). The median is absent below `min_sample` or when 0.
    pub fn from_sample(
        format: VideoFormat,
        basis: AgeBasis,
        mut values: Vec<i64>,
        settings: &OutlierSettings,
    ) -> Baseline {
        values.truncate(settings.window as usize);
        let sample = u32::try_from(values.len()).unwrap_or(u32::MAX);
        let median = if sample >= settings.min_sample {
            median(&mut values).filter(|m| *m > 0.0)
        } else {
            None
        };
        Baseline {
            format,
            basis,
            median,
            sample,
        }
    }
}

/// The score of one video against its channel's `baselines`: on the longest age it has a
/// value and a baseline for (30 days, then 7); failing both, on its total views if it is at
/// least `score_min_age_days` old; otherwise none.
pub fn score_of(
    video: &VideoValues,
    baselines: &[Baseline],
    now: Timestamp,
    settings: &OutlierSettings,
) -> Option<OutlierScore> {
    let format = video.format?;
    [AgeBasis::Age30d, AgeBasis::Age7d, AgeBasis::Total]
        .into_iter()
        .find_map(|basis| {
            let b = baselines
                .iter()
                .find(|b| b.format == format && b.basis == basis)?;
            let median = b.median?;
            let views = video.value(basis, now, settings.score_min_age_days)?;
            Some(OutlierScore {
                score: views as f64 / median - 1.0,
                basis,
                baseline: median,
                sample: b.sample,
                views,
            })
        })
}

/// The baselines of one channel, as of `now`, from all its videos' values: for each format
/// present and each basis, [`Baseline::from_sample`] of the `window` most recently
/// published videos of that format with a value for the basis (views at 7 or 30 days of
/// age, or total views of a video at least `baseline_min_age_days` old). Equal publication
/// instants keep input order, so the window is deterministic.
pub fn baselines_of(
    videos: &[VideoValues],
    now: Timestamp,
    settings: &OutlierSettings,
) -> Vec<Baseline> {
    let mut baselines = Vec::new();
    for format in VideoFormat::ALL {
        if !videos.iter().any(|v| v.format == Some(format)) {
            continue;
        }
        for basis in AgeBasis::ALL {
            let mut eligible: Vec<(Timestamp, usize, i64)> = videos
                .iter()
                .enumerate()
                .filter(|(_, v)| v.format == Some(format))
                .filter_map(|(i, v)| {
                    let value = v.value(basis, now, settings.baseline_min_age_days)?;
                    Some((v.published_at?, i, value))
                })
                .collect();
            // Newest first; equal dates keep input order.
            eligible.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let values = eligible.iter().map(|e| e.2).collect();
            baselines.push(Baseline::from_sample(format, basis, values, settings));
        }
    }
    baselines
}

/// The baselines of one channel and the scores of its videos, as of `now`:
/// [`baselines_of`] their [`VideoValues`], then [`score_of`] each. This is the reference
/// the stores' incremental rescoring must agree with.
pub fn score_channel(
    videos: &[ChannelVideo],
    now: Timestamp,
    settings: &OutlierSettings,
) -> ChannelOutliers {
    let values: Vec<VideoValues> = videos.iter().map(VideoValues::of).collect();
    let baselines = baselines_of(&values, now, settings);
    let scores = values
        .iter()
        .map(|v| score_of(v, &baselines, now, settings))
        .collect();
    ChannelOutliers { baselines, scores }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(days: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + days * DAY_MS).unwrap()
    }

    /// A video published `age` days before `now = t(0)` with `views`, observed only now.
    fn video(age: i64, views: i64, format: VideoFormat) -> ChannelVideo {
        ChannelVideo {
            published_at: Some(t(-age)),
            views: Some(views),
            format: Some(format),
            history: vec![(t(0), views)],
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5, 1, 3]), Some(3.0));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2.5));
    }

    #[test]
    fn format_from_live_status_then_short_flag_then_media_type_tab_and_long_duration() {
        let mut item = ContentItem::new("youtube_channel", "a", "t");
        assert_eq!(format_of(&item), None);
        item.duration_secs = Some(181);
        assert_eq!(format_of(&item), Some(VideoFormat::Long));
        item.duration_secs = Some(180);
        assert_eq!(
            format_of(&item),
            None,
            "a short duration alone is not a Short"
        );
        item.extra.insert("tab".into(), json!("shorts"));
        assert_eq!(format_of(&item), Some(VideoFormat::Short));
        item.extra.insert("media_type".into(), json!("video"));
        assert_eq!(format_of(&item), Some(VideoFormat::Long));
        item.extra.insert("media_type".into(), json!("short"));
        assert_eq!(format_of(&item), Some(VideoFormat::Short));
        item.extra.insert("is_short".into(), json!(false));
        assert_eq!(format_of(&item), Some(VideoFormat::Long));
        item.extra.insert("live_status".into(), json!("none"));
        assert_eq!(format_of(&item), Some(VideoFormat::Long));
        item.extra.insert("live_status".into(), json!("was_live"));
        assert_eq!(format_of(&item), Some(VideoFormat::Stream));
        item.extra.remove("live_status");
        item.extra.insert("tab".into(), json!("streams"));
        assert_eq!(format_of(&item), Some(VideoFormat::Stream));
        item.extra.remove("tab");
        item.extra.insert("media_type".into(), json!("livestream"));
        assert_eq!(format_of(&item), Some(VideoFormat::Stream));
    }

    #[test]
    fn format_parses_and_refuses_with_what_is_accepted() {
        assert_eq!("Short".parse::<VideoFormat>().unwrap(), VideoFormat::Short);
        let e = "tall".parse::<VideoFormat>().unwrap_err();
        assert_eq!(e.accepted, "long, short or stream");
        assert!(e.problem.contains("tall"));
    }

    #[test]
    fn planted_three_times_video_scores_two() {
        let mut videos: Vec<ChannelVideo> = (0..11)
            .map(|i| video(40 + i, 1_000, VideoFormat::Long))
            .collect();
        videos.push(video(35, 3_000, VideoFormat::Long));
        let out = score_channel(&videos, t(0), &OutlierSettings::default());
        let s = out.scores[11].unwrap();
        assert_eq!(
            (s.score, s.basis, s.baseline, s.sample),
            (2.0, AgeBasis::Total, 1_000.0, 12)
        );
        assert_eq!(out.scores[0].unwrap().score, 0.0);
        // No histories: no age baselines.
        let b = out
            .baselines
            .iter()
            .find(|b| b.basis == AgeBasis::Age7d)
            .unwrap();
        assert_eq!((b.median, b.sample), (None, 0));
    }

    #[test]
    fn below_minimum_sample_there_is_no_baseline_and_no_score() {
        let videos: Vec<ChannelVideo> = (0..9)
            .map(|i| video(40 + i, 1_000 * (i + 1), VideoFormat::Long))
            .collect();
        let out = score_channel(&videos, t(0), &OutlierSettings::default());
        assert!(out.scores.iter().all(Option::is_none));
        let total = out
            .baselines
            .iter()
            .find(|b| b.basis == AgeBasis::Total)
            .unwrap();
        assert_eq!((total.median, total.sample), (None, 9));
    }

    #[test]
    fn each_format_against_its_own_median() {
        let mut videos: Vec<ChannelVideo> = (0..10)
            .map(|i| video(40 + i, 1_000, VideoFormat::Long))
            .chain((0..10).map(|i| video(40 + i, 10_000, VideoFormat::Short)))
            .collect();
        videos.push(video(31, 2_000, VideoFormat::Long));
        videos.push(video(31, 10_000, VideoFormat::Short));
        let mut unknown = video(31, 5_000, VideoFormat::Long);
        unknown.format = None;
        videos.push(unknown);
        let out = score_channel(&videos, t(0), &OutlierSettings::default());
        assert_eq!(out.scores[20].unwrap().score, 1.0);
        assert_eq!(out.scores[21].unwrap().score, 0.0);
        assert_eq!(out.scores[21].unwrap().baseline, 10_000.0);
        assert_eq!(out.scores[22], None);
        assert_eq!(out.baselines.len(), 6);
    }

    #[test]
    fn young_video_without_history_gets_no_score() {
        let mut videos: Vec<ChannelVideo> = (0..10)
            .map(|i| video(40 + i, 1_000, VideoFormat::Long))
            .collect();
        videos.push(video(3, 9_000, VideoFormat::Long));
        videos.push(video(20, 9_000, VideoFormat::Long));
        let out = score_channel(&videos, t(0), &OutlierSettings::default());
        assert_eq!(out.scores[10], None);
        assert_eq!(out.scores[11], None);
        // The 20-day-old one is in the total baseline's sample, the 3-day-old one is not.
        let total = out
            .baselines
            .iter()
            .find(|b| b.basis == AgeBasis::Total)
            .unwrap();
        assert_eq!(total.sample, 11);
    }

    #[test]
    fn age_basis_is_preferred_where_histories_allow() {
        // Ten uploads observed at 7 days of age with 100 views, now at 10,000 each.
        let mut videos: Vec<ChannelVideo> = (0..10)
            .map(|i| {
                let mut v = video(60 + i, 10_000, VideoFormat::Long);
                v.history.push((t(-60 - i + 7), 100));
                v
            })
            .collect();
        // A 12-day-old video with 400 views at 7 days (observed 20 hours late): 3× the
        // channel's 7-day median, though its total is below the channel's median total.
        let mut young = video(12, 500, VideoFormat::Long);
        young.history.push((
            Timestamp::from_millisecond(t(-5).as_millisecond() + 20 * 3_600_000).unwrap(),
            400,
        ));
        videos.push(young);
        let out = score_channel(&videos, t(0), &OutlierSettings::default());
        let s = out.scores[10].unwrap();
        assert_eq!(
            (s.basis, s.views, s.baseline, s.sample),
            (AgeBasis::Age7d, 400, 100.0, 11)
        );
        assert_eq!(s.score, 3.0);
        // The old ones have 7-day values too: scored at that age (no 30-day ones).
        assert_eq!(out.scores[0].unwrap().basis, AgeBasis::Age7d);
    }

    #[test]
    fn views_at_age_takes_the_nearest_observation_within_tolerance() {
        let h = [(t(5), 50), (t(8), 80), (t(9), 90)];
        assert_eq!(views_at_age(t(0), &h, 7), Some(80));
        assert_eq!(views_at_age(t(0), &[(t(5), 50)], 7), None);
        // Equidistant: the earlier one.
        assert_eq!(views_at_age(t(0), &[(t(8), 80), (t(6), 60)], 7), Some(60));
    }

    #[test]
    fn window_keeps_the_most_recent_uploads() {
        // 30 recent uploads at 1,000 and 30 older ones at 50,000: the old ones are outside
        // the window of 30.
        let videos: Vec<ChannelVideo> = (0..30)
            .map(|i| video(40 + i, 1_000, VideoFormat::Long))
            .chain((0..30).map(|i| video(100 + i, 50_000, VideoFormat::Long)))
            .collect();
        let out = score_channel(&videos, t(0), &OutlierSettings::default());
        assert_eq!(out.scores[59].unwrap().score, 49.0);
        let small = OutlierSettings {
            window: 60,
            ..OutlierSettings::default()
        };
        let out = score_channel(&videos, t(0), &small);
        assert_eq!(out.scores[59].unwrap().baseline, 25_500.0);
    }

    #[test]
    fn zero_median_gives_no_baseline() {
        let videos: Vec<ChannelVideo> = (0..10)
            .map(|i| video(40 + i, 0, VideoFormat::Long))
            .collect();
        let out = score_channel(&videos, t(0), &OutlierSettings::default());
        assert!(out.scores.iter().all(Option::is_none));
    }

    #[test]
    fn settings_are_range_checked() {
        assert!(OutlierSettings::default().validate().is_ok());
        let bad = OutlierSettings {
            min_sample: 31,
            ..OutlierSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "min_sample");
        let bad = OutlierSettings {
            window: 0,
            ..OutlierSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "window");
    }
}
