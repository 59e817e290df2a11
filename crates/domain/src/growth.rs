//! Growth over real windows: the views, likes and comments a video gained over the last
//! hour, day, week or month of its observations, with the span its history really covers.
//!
//! A window ends at the video's latest observation. When the history reaches back past the
//! window's start, the counters at the start are interpolated linearly between the two
//! observations around it, so the span is the whole window; when it does not, the growth is
//! measured from the oldest observation and the span says how much of the window that is.
//! A span shorter than the configured minimum gives no growth at all: two collects a minute
//! apart say nothing about a rate per hour.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::content::Metrics;
use crate::error::ValidationError;
use crate::Timestamp;

/// The windows growth is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GrowthWindow {
    /// The last hour.
    #[serde(rename = "1h")]
    Hour,
    /// The last 24 hours.
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days.
    #[serde(rename = "7d")]
    Week,
    /// The last 30 days.
    #[serde(rename = "30d")]
    Month,
}

/// What `--window` accepts, for error messages.
pub const WINDOWS_ACCEPTED: &str = "one of 1h, 24h (or 1d), 7d, 30d";

impl GrowthWindow {
    /// Every window, shortest first.
    pub const ALL: [GrowthWindow; 4] = [
        GrowthWindow::Hour,
        GrowthWindow::Day,
        GrowthWindow::Week,
        GrowthWindow::Month,
    ];

    /// The window's name: `1h`, `24h`, `7d` or `30d`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrowthWindow::Hour => "1h",
            GrowthWindow::Day => "24h",
            GrowthWindow::Week => "7d",
            GrowthWindow::Month => "30d",
        }
    }

    /// Its length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            GrowthWindow::Hour => 3_600,
            GrowthWindow::Day => 86_400,
            GrowthWindow::Week => 7 * 86_400,
            GrowthWindow::Month => 30 * 86_400,
        }
    }

    /// Its position in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for GrowthWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrowthWindow {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1h" | "60m" => Ok(GrowthWindow::Hour),
            "24h" | "1d" => Ok(GrowthWindow::Day),
            "7d" | "1w" => Ok(GrowthWindow::Week),
            "30d" => Ok(GrowthWindow::Month),
            _ => Err(ValidationError::new(
                "window",
                format!(
                    "{:?} is not a growth window",
                    crate::task::truncate_for_message(s)
                ),
                WINDOWS_ACCEPTED,
            )),
        }
    }
}

/// A video's growth over one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowGrowth {
    /// How many seconds of the window the history covers (the whole window when it reaches
    /// back past the start).
    pub span_secs: i64,
    /// Views gained over the span; absent when the source hid the counter.
    pub views: Option<i64>,
    /// Likes gained over the span.
    pub likes: Option<i64>,
    /// Comments gained over the span.
    pub comments: Option<i64>,
    /// Views gained per hour of the span.
    pub views_per_hour: Option<f64>,
}

/// The stored growth rate of one window: what listings show and sort by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowRate {
    /// Views gained per hour over the span.
    pub views_per_hour: f64,
    /// How many seconds of the window the history covers.
    pub span_secs: i64,
}

/// A video's stored growth rates, one per window; absent where the history is too short.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    /// The last hour.
    #[serde(rename = "1h", default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<WindowRate>,
    /// The last 24 hours.
    #[serde(rename = "24h", default, skip_serializing_if = "Option::is_none")]
    pub day: Option<WindowRate>,
    /// The last 7 days.
    #[serde(rename = "7d", default, skip_serializing_if = "Option::is_none")]
    pub week: Option<WindowRate>,
    /// The last 30 days.
    #[serde(rename = "30d", default, skip_serializing_if = "Option::is_none")]
    pub month: Option<WindowRate>,
}

impl Growth {
    /// The rate of one window.
    pub fn get(&self, window: GrowthWindow) -> Option<WindowRate> {
        match window {
            GrowthWindow::Hour => self.hour,
            GrowthWindow::Day => self.day,
            GrowthWindow::Week => self.week,
            GrowthWindow::Month => self.month,
        }
    }

    /// Sets the rate of one window.
    pub fn set(&mut self, window: GrowthWindow, rate: Option<WindowRate>) {
        match window {
            GrowthWindow::Hour => self.hour = rate,
            GrowthWindow::Day => self.day = rate,
            GrowthWindow::Week => self.week = rate,
            GrowthWindow::Month => self.month = rate,
        }
    }

    /// Whether every window is whole and gained nothing: the growth of a video whose counters
    /// have not moved for 30 days. Seeing it again with the same counters cannot change
    /// that (each window still ends at an observation with those counters and starts where
    /// they already held), so a store may skip recomputing it.
    pub fn is_settled(&self) -> bool {
        GrowthWindow::ALL.iter().all(|w| {
            self.get(*w)
                .is_some_and(|r| r.views_per_hour == 0.0 && r.span_secs >= w.seconds())
        })
    }

    /// Every window's rate from a history ([`growth_over`] for each).
    pub fn of(observations: &[(Timestamp, Metrics)], min_span_secs: i64) -> Growth {
        let mut g = Growth::default();
        for w in GrowthWindow::ALL {
            let rate = growth_over(observations, w, min_span_secs).and_then(|wg| {
                wg.views_per_hour.map(|views_per_hour| WindowRate {
                    views_per_hour,
                    span_secs: wg.span_secs,
                })
            });
            g.set(w, rate);
        }
        g
    }
}

/// The default shortest span a growth is reported over: 30 minutes.
pub const DEFAULT_MIN_SPAN_SECS: i64 = 30 * 60;

/// The growth over `window` ending at the latest of `observations` (each an instant and
/// the counters seen then, in any order). `None` when the history spans less than
/// `min_span_secs` within the window, or has fewer than two observations.
pub fn growth_over(
    observations: &[(Timestamp, Metrics)],
    window: GrowthWindow,
    min_span_secs: i64,
) -> Option<WindowGrowth> {
    let mut obs: Vec<(i64, Metrics)> = observations
        .iter()
        .map(|(t, m)| (t.as_millisecond(), *m))
        .collect();
    obs.sort_by_key(|(t, _)| *t);
    let &(end_ms, end) = obs.last()?;
    let start_ms = end_ms - window.seconds() * 1_000;
    // The last observation at or before the window's start, and the one after it (there is
    // one: the latest observation is after the start).
    let before = obs.iter().rposition(|(t, _)| *t <= start_ms);
    let (base_ms, base): (i64, [Option<f64>; 3]) = match before {
        Some(i) => {
            let (ta, a) = obs[i];
            let (tb, b) = obs[i + 1];
            let f = if tb > ta {
                (start_ms - ta) as f64 / (tb - ta) as f64
            } else {
                1.0
            };
            let lerp = |x: Option<i64>, y: Option<i64>| match (x, y) {
                (Some(x), Some(y)) => Some(x as f64 + (y - x) as f64 * f),
                _ => None,
            };
            (
                start_ms,
                [
                    lerp(a.views, b.views),
                    lerp(a.likes, b.likes),
                    lerp(a.comments, b.comments),
                ],
            )
        }
        None => {
            let (t0, m0) = obs[0];
            (t0, counters(&m0))
        }
    };
    let span_ms = end_ms - base_ms;
    if span_ms <= 0 || span_ms < min_span_secs * 1_000 {
        return None;
    }
    let end = counters(&end);
    let gained = |k: usize| match (end[k], base[k]) {
        (Some(e), Some(b)) => Some((e - b).round() as i64),
        _ => None,
    };
    let views = gained(0);
    Some(WindowGrowth {
        span_secs: span_ms / 1_000,
        views,
        likes: gained(1),
        comments: gained(2),
        views_per_hour: match (end[0], base[0]) {
            (Some(e), Some(b)) => Some((e - b) * 3_600_000.0 / span_ms as f64),
            _ => None,
        },
    })
}

fn counters(m: &Metrics) -> [Option<f64>; 3] {
    [
        m.views.map(|v| v as f64),
        m.likes.map(|v| v as f64),
        m.comments.map(|v| v as f64),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, views: i64) -> (Timestamp, Metrics) {
        (
            Timestamp::from_second(1_700_000_000 + secs).unwrap(),
            Metrics {
                views: Some(views),
                likes: Some(views / 10),
                comments: None,
            },
        )
    }

    #[test]
    fn a_history_shorter_than_the_window_reports_the_span_it_covers() {
        // Two hours of history, 24 h window: 1,000 views over 7,200 s.
        let h = [at(0, 1_000), at(3_600, 1_500), at(7_200, 2_000)];
        let g = growth_over(&h, GrowthWindow::Day, 1_800).unwrap();
        assert_eq!(g.span_secs, 7_200);
        assert_eq!(g.views, Some(1_000));
        assert_eq!(g.likes, Some(100));
        assert_eq!(g.comments, None);
        assert_eq!(g.views_per_hour, Some(500.0));
    }

    #[test]
    fn a_history_past_the_window_interpolates_at_its_start() {
        // 0 → 10,000 views over 10 h, then 10,000 → 10,600 over the last 2 h.
        let h = [at(0, 0), at(36_000, 10_000), at(43_200, 10_600)];
        let g = growth_over(&h, GrowthWindow::Hour, 60).unwrap();
        assert_eq!(g.span_secs, 3_600);
        assert_eq!(g.views, Some(300));
        assert_eq!(g.views_per_hour, Some(300.0));
        // The window starts 1 h into the first segment (1,000 views per hour there).
        let h = [at(0, 0), at(36_000, 10_000)];
        let g = growth_over(&h, GrowthWindow::Hour, 60).unwrap();
        assert_eq!(g.views, Some(1_000));
    }

    #[test]
    fn observations_in_any_order_give_the_same_growth() {
        let a = [at(0, 0), at(36_000, 10_000), at(43_200, 10_600)];
        let b = [a[2], a[0], a[1]];
        assert_eq!(
            growth_over(&a, GrowthWindow::Day, 60),
            growth_over(&b, GrowthWindow::Day, 60)
        );
    }

    #[test]
    fn too_short_a_span_or_a_single_observation_gives_nothing() {
        // Two collects 47 s apart: no rate, however many views.
        let h = [at(0, 0), at(47, 3_000_000)];
        assert_eq!(growth_over(&h, GrowthWindow::Hour, 1_800), None);
        assert_eq!(growth_over(&h[..1], GrowthWindow::Hour, 0), None);
        assert_eq!(growth_over(&[], GrowthWindow::Hour, 0), None);
        assert_eq!(Growth::of(&h, 1_800), Growth::default());
    }

    #[test]
    fn a_video_seen_unchanged_for_the_whole_window_grew_by_zero() {
        let h = [at(0, 500), at(100_000, 500)];
        let g = growth_over(&h, GrowthWindow::Hour, 60).unwrap();
        assert_eq!((g.views, g.span_secs), (Some(0), 3_600));
    }

    #[test]
    fn a_flat_month_is_settled_and_stays_so_when_seen_again() {
        let flat = [at(0, 500), at(31 * 86_400, 500)];
        let g = Growth::of(&flat, 1_800);
        assert!(g.is_settled(), "{g:?}");
        let again = [flat[0], flat[1], at(40 * 86_400, 500)];
        assert_eq!(Growth::of(&again, 1_800), g);
        let moved = [at(0, 500), at(20 * 86_400, 600), at(31 * 86_400, 600)];
        assert!(!Growth::of(&moved, 1_800).is_settled());
        assert!(!Growth::default().is_settled());
    }

    #[test]
    fn hidden_counters_stay_unknown() {
        let mut h = vec![at(0, 100), at(7_200, 300)];
        h[0].1.views = None;
        let g = growth_over(&h, GrowthWindow::Day, 60).unwrap();
        assert_eq!(g.views, None);
        assert_eq!(g.views_per_hour, None);
        assert_eq!(Growth::of(&h, 60).day, None);
    }

    #[test]
    fn every_window_is_stored_with_its_rate_and_span() {
        let h = [at(0, 0), at(2 * 86_400, 48_000)];
        let g = Growth::of(&h, 1_800);
        assert_eq!(g.get(GrowthWindow::Hour).unwrap().views_per_hour, 1_000.0);
        assert_eq!(g.get(GrowthWindow::Day).unwrap().span_secs, 86_400);
        assert_eq!(g.get(GrowthWindow::Week).unwrap().span_secs, 2 * 86_400);
        assert_eq!(g.get(GrowthWindow::Month).unwrap().views_per_hour, 1_000.0);
    }

    #[test]
    fn windows_parse_and_refuse_with_what_is_accepted() {
        assert_eq!("24h".parse::<GrowthWindow>().unwrap(), GrowthWindow::Day);
        assert_eq!("1d".parse::<GrowthWindow>().unwrap(), GrowthWindow::Day);
        assert_eq!(" 7D ".parse::<GrowthWindow>().unwrap(), GrowthWindow::Week);
        for bad in ["0h", "", "2h", "yesterday-ish", "-1h"] {
            let e = bad.parse::<GrowthWindow>().unwrap_err();
            assert_eq!(e.field, "window");
            assert_eq!(e.accepted, WINDOWS_ACCEPTED, "{bad}");
        }
        for w in GrowthWindow::ALL {
            assert_eq!(w.as_str().parse::<GrowthWindow>().unwrap(), w);
            assert_eq!(GrowthWindow::ALL[w.index()], w);
        }
    }
}
