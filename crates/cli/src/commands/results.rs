//! `prismq results list|show|export`: the collected videos, deduplicated by the store.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use prismq_app::{export, App};
use prismq_domain::growth::{self, GrowthWindow};
use prismq_domain::outlier::{AgeBasis, VideoFormat};
use prismq_domain::ports::{ChannelBaseline, ResultOrder, ResultQuery, StoredResult};

use super::parse;
use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::files::{self, Output, Target};
use crate::progress;
use crate::render::{self, Table};

/// `prismq results …`.
#[derive(Debug, Subcommand)]
pub enum ResultsCommand {
    /// Stored videos.
    List {
        /// Filters.
        #[command(flatten)]
        filter: ResultFilter,
        /// Only videos of this format.
        #[arg(
            long,
            value_enum,
            value_name = "FORMAT",
            visible_alias = "video-format"
        )]
        format: Option<VideoFormatArg>,
        /// At most this many (1-10000).
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: u32,
    },
    /// One video with its metrics history and where it was seen.
    Show {
        /// The video's id, or a YouTube video URL (watch?v=, youtu.be/, /shorts/).
        #[arg(value_name = "ID_OR_URL")]
        source_id: String,
        /// Its platform (default: every platform that has the id).
        #[arg(long, value_name = "PLATFORM")]
        platform: Option<String>,
    },
    /// Write stored videos to a file, page by page.
    Export {
        /// csv or jsonl.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// The file to write, or - for stdout; an existing regular file is replaced only with
        /// --force, a FIFO or character device is written through, anything else is refused.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace an existing regular file.
        #[arg(long)]
        force: bool,
        /// Only videos of this format (`--format` names the file format here).
        #[arg(long, value_enum, value_name = "FORMAT")]
        video_format: Option<VideoFormatArg>,
        /// Filters.
        #[command(flatten)]
        filter: ResultFilter,
    },
    /// Recompute every video's outlier values and score and the channels' baselines from
    /// scratch, one channel per transaction (after an upgrade, a change of `[ideas]`, or
    /// for scores that time alone changes).
    Rescore {
        /// Only this channel id.
        #[arg(long, value_name = "CHANNEL_ID")]
        channel: Option<String>,
    },
}

/// Filters shared by `results list` and `results export`.
#[derive(Debug, Clone, Args)]
pub struct ResultFilter {
    /// Only videos this kind of source found (youtube_channel, youtube_trending,
    /// youtube_keyword, youtube_api).
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Only items seen within this long (7d) or since this instant (RFC 3339).
    #[arg(long, value_name = "DURATION|TIMESTAMP")]
    pub since: Option<String>,
    /// Only items first seen within this long (1d) or since this instant (RFC 3339).
    #[arg(long, value_name = "DURATION|TIMESTAMP")]
    pub new_since: Option<String>,
    /// Only this channel's items.
    #[arg(long, value_name = "CHANNEL_ID")]
    pub channel: Option<String>,
    /// Only items the task with this id saved last.
    #[arg(long, value_name = "TASK_ID")]
    pub task: Option<i64>,
    /// Sort order.
    #[arg(long, value_enum, default_value_t = OrderArg::Views)]
    pub order: OrderArg,
    /// The growth window: what `--order growth` sorts by and the VIEWS/H column shows
    /// (1h, 24h, 7d, 30d).
    #[arg(long, value_name = "WINDOW", value_parser = growth_window, default_value = "24h")]
    pub window: GrowthWindow,
    /// Only items whose outlier score is at least this (unscored items are left out).
    #[arg(long, value_name = "SCORE", value_parser = score_bound, allow_negative_numbers = true)]
    pub min_score: Option<f64>,
    /// Only items whose outlier score is at most this (unscored items are left out).
    #[arg(long, value_name = "SCORE", value_parser = score_bound, allow_negative_numbers = true)]
    pub max_score: Option<f64>,
}

/// Result orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    /// Most views first.
    Views,
    /// Most recently published first.
    Recent,
    /// Fastest growing (views per hour) first.
    Growth,
    /// Highest outlier score (views against the channel's own median) first; unscored last.
    Outlier,
}

/// Video formats, as `--format` of `results list` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VideoFormatArg {
    /// Regular uploads.
    Long,
    /// YouTube Shorts.
    Short,
    /// Live streams (live, upcoming or past broadcasts).
    Stream,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// An outlier score bound: a finite number (2 means three times the channel's median).
///
/// # Errors
/// Text that is not a finite number, saying what is accepted.
pub fn score_bound(text: &str) -> Result<f64, String> {
    const ACCEPTED: &str = "a number such as 0.5, 2 or -0.25 (a score of 2 is three times the channel's median, 0 is typical, -0.5 is half)";
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("not a finite number; accepted: {ACCEPTED}")),
    }
}

/// A growth window, as `--window` takes it.
///
/// # Errors
/// Anything but 1h, 24h (1d), 7d or 30d, saying what is accepted.
pub fn growth_window(text: &str) -> Result<GrowthWindow, String> {
    text.parse::<GrowthWindow>()
        .map_err(|e| format!("{}; accepted: {}", e.problem, e.accepted))
}

/// Runs a `results` subcommand.
///
/// # Errors
/// Invalid flags (exit 2), an unknown item (exit 3), an output path that may not be written
/// (exit 2; see [`Target::classify`]), write errors (exit 1).
pub async fn run(ctx: &Ctx, cmd: ResultsCommand) -> CliResult {
    ctx.require_db()?;
    let app = ctx.store_app()?;
    match cmd {
        ResultsCommand::List {
            filter,
            format,
            limit,
        } => {
            let mut q = query(&app, &filter, format)?;
            q.limit = limit;
            let items = app.results.query(&q).await?;
            print_items(ctx, &items, q.window)
        }
        ResultsCommand::Show {
            source_id,
            platform,
        } => show(ctx, &app, &source_id, platform).await,
        ResultsCommand::Export {
            format,
            out,
            force,
            video_format,
            filter,
        } => export(ctx, &app, format, &out, force, &filter, video_format).await,
        ResultsCommand::Rescore { channel } => {
            let all = channel.is_none();
            let report = app.results.rescore(channel).await?;
            if ctx.json() {
                return render::json(&report);
            }
            let mut line = format!(
                "rescored {} video(s) of {} channel(s)",
                report.videos, report.channels
            );
            if all {
                line.push_str(&format!(
                    "; recomputed the growth of {} item(s)",
                    report.growth
                ));
            }
            println!("{line}");
            Ok(())
        }
    }
}

fn video_format(f: VideoFormatArg) -> VideoFormat {
    match f {
        VideoFormatArg::Long => VideoFormat::Long,
        VideoFormatArg::Short => VideoFormat::Short,
        VideoFormatArg::Stream => VideoFormat::Stream,
    }
}

/// The store's order for `--order`.
pub fn order(o: OrderArg) -> ResultOrder {
    match o {
        OrderArg::Views => ResultOrder::Views,
        OrderArg::Recent => ResultOrder::Recent,
        OrderArg::Growth => ResultOrder::Growth,
        OrderArg::Outlier => ResultOrder::Outlier,
    }
}

fn query(app: &App, f: &ResultFilter, format: Option<VideoFormatArg>) -> CliResult<ResultQuery> {
    if let (Some(lo), Some(hi)) = (f.min_score, f.max_score) {
        if lo > hi {
            return Err(CliError::usage(format!(
                "--min-score {lo} is above --max-score {hi}; accepted: a minimum at most the maximum"
            )));
        }
    }
    Ok(ResultQuery {
        source: f.source.clone(),
        since: f
            .since
            .as_deref()
            .map(|s| parse::since("since", s, app.clock.now()))
            .transpose()?,
        new_since: f
            .new_since
            .as_deref()
            .map(|s| parse::since("new-since", s, app.clock.now()))
            .transpose()?,
        channel_id: f.channel.clone(),
        task: f.task.map(parse::task_id).transpose()?,
        window: f.window,
        order: order(f.order),
        min_score: f.min_score,
        max_score: f.max_score,
        format: format.map(video_format),
        after: None,
        limit: export::EXPORT_PAGE,
    })
}

/// Prints items as a table (or JSON).
///
/// # Errors
/// stdout is closed.
pub fn print_items(ctx: &Ctx, items: &[StoredResult], window: GrowthWindow) -> CliResult {
    if ctx.json() {
        return render::json(items);
    }
    if items.is_empty() {
        return render::print("no results\n");
    }
    render::print(&table(items, false, window).render())
}

/// An item's rank in its latest sighting's own order (chart rank, search rank, position
/// among the channel's uploads, position in the request), if it has one.
pub fn rank(r: &StoredResult) -> Option<u64> {
    r.item.rank.map(u64::from)
}

/// Views gained per hour over `window`, with the span in brackets when the history covers
/// less than the window (`1,234 (2h)`); `-` when unknown (no views, or a history shorter
/// than the minimum span).
fn views_per_hour_cell(r: &StoredResult, window: GrowthWindow) -> String {
    match r.growth.get(window) {
        None => "-".to_owned(),
        Some(g) if g.span_secs >= window.seconds() => {
            render::count(g.views_per_hour.round() as i64)
        }
        Some(g) => format!(
            "{} ({})",
            render::count(g.views_per_hour.round() as i64),
            span_words(g.span_secs)
        ),
    }
}

/// A span as its largest whole unit: `45m`, `2h`, `3d`.
fn span_words(secs: i64) -> String {
    if secs >= 86_400 {
        format!("{}d", secs / 86_400)
    } else if secs >= 3_600 {
        format!("{}h", secs / 3_600)
    } else {
        format!("{}m", secs / 60)
    }
}

/// What the video is: `live` or `upcoming` (a broadcast), `stream` (a past one), `short` or
/// `long` (when the source knew), `-` when unknown. Never guessed from the duration.
pub fn kind_cell(r: &StoredResult) -> &'static str {
    let extra = &r.item.extra;
    let text = |k: &str| {
        extra
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_ascii_lowercase)
    };
    match text("live_status").as_deref() {
        Some("live" | "is_live") => return "live",
        Some("upcoming" | "is_upcoming") => return "upcoming",
        Some("was_live" | "post_live" | "completed") => return "stream",
        _ => {}
    }
    if text("tab").as_deref() == Some("streams")
        || text("media_type").as_deref() == Some("livestream")
    {
        return "stream";
    }
    match extra.get("is_short").and_then(serde_json::Value::as_bool) {
        Some(true) => "short",
        Some(false) => "long",
        None => "-",
    }
}

/// The results table; `ranked` puts the RANK column first (a collect's own order); the
/// VIEWS/H column is the growth over `window`.
pub fn table(items: &[StoredResult], ranked: bool, window: GrowthWindow) -> Table {
    const HEADERS: [&str; 11] = [
        "VIDEO",
        "VIEWS",
        "LIKES",
        "VIEWS/H",
        "SCORE",
        "BASIS",
        "DUR",
        "TYPE",
        "PUBLISHED",
        "CHANNEL",
        "TITLE",
    ];
    let mut headers: Vec<&'static str> = Vec::new();
    if ranked {
        headers.push("RANK");
    }
    headers.extend(HEADERS);
    let at = |name: &str| {
        headers
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| unreachable!("{name} is a header"))
    };
    let mut right: Vec<usize> = ["VIEWS", "LIKES", "VIEWS/H", "SCORE", "DUR"]
        .iter()
        .map(|h| at(h))
        .collect();
    if ranked {
        right.push(0);
    }
    let optional: Vec<usize> = [
        "BASIS",
        "SCORE",
        "VIEWS/H",
        "LIKES",
        "CHANNEL",
        "PUBLISHED",
        "DUR",
    ]
    .iter()
    .map(|h| at(h))
    .collect();
    let mut t = Table::new(&headers)
        .right_align(&right)
        .flexible(&[(at("TITLE"), 16), (at("CHANNEL"), 8)])
        .optional(&optional);
    for r in items {
        let i = &r.item;
        let mut row = Vec::with_capacity(headers.len());
        if ranked {
            row.push(render::opt(rank(r)));
        }
        row.extend([
            i.source_id.clone(),
            render::opt_count(i.metrics.views),
            render::opt_count(i.metrics.likes),
            views_per_hour_cell(r, window),
            r.outlier
                .map_or_else(|| "-".into(), |o| format!("{:.2}", o.score)),
            basis_cell(r),
            i.duration_secs.map_or_else(|| "-".into(), render::duration),
            kind_cell(r).to_owned(),
            i.published_at
                .map_or_else(|| "-".into(), |t| render::time(t)[..10].to_owned()),
            render::cut(i.channel.as_deref().unwrap_or("-"), 30),
            render::cut(&i.title, 100),
        ]);
        t.row(row);
    }
    t
}

/// The table's basis cell: `total/long n=12`, the format alone when unscored, `-` when the
/// format is unknown too.
fn basis_cell(r: &StoredResult) -> String {
    match (r.outlier, r.format) {
        (Some(o), f) => format!(
            "{}/{} n={}",
            o.basis,
            f.map_or("?", VideoFormat::as_str),
            o.sample
        ),
        (None, Some(f)) => f.as_str().to_owned(),
        (None, None) => "-".to_owned(),
    }
}

fn basis_words(b: AgeBasis) -> &'static str {
    match b {
        AgeBasis::Age7d => "views at 7 days of age",
        AgeBasis::Age30d => "views at 30 days of age",
        AgeBasis::Total => "total views",
    }
}

/// `results show`'s explanation of the score, and the channel's baselines for its format.
fn explain(r: &StoredResult, baselines: &[ChannelBaseline]) -> Vec<(&'static str, String)> {
    let format = r
        .format
        .map_or_else(|| "unknown".to_owned(), |f| f.as_str().to_owned());
    let score = match (r.outlier, r.format) {
        (Some(o), _) => format!(
            "{:.2}: {} {} against the channel's median of {} over {} {} uploads ({:.1}x typical)",
            o.score,
            basis_words(o.basis),
            render::count(o.views),
            render::count(o.baseline.round() as i64),
            o.sample,
            format,
            o.score + 1.0
        ),
        (None, None) => {
            "none: the format is unknown (no live status, Shorts flag or duration)".to_owned()
        }
        (None, Some(_)) if r.item.channel_id.is_none() => {
            "none: the item has no channel id".to_owned()
        }
        (None, Some(_)) => "none: no baseline of its format and age fits it (see the baselines;              a video younger than the total-views age needs its views at 7 or 30 days of age)"
            .to_owned(),
    };
    let mut out = vec![("format", format), ("outlier score", score)];
    let mine: Vec<String> = baselines
        .iter()
        .filter(|b| Some(b.baseline.format) == r.format)
        .map(|b| {
            format!(
                "{} median {} (n={})",
                b.baseline.basis,
                b.baseline
                    .median
                    .map_or_else(|| "-".into(), |m| render::count(m.round() as i64)),
                b.baseline.sample
            )
        })
        .collect();
    if !mine.is_empty() {
        let at = baselines
            .iter()
            .map(|b| b.computed_at)
            .max()
            .map_or_else(String::new, |t| format!("; as of {}", render::time(t)));
        out.push(("channel baselines", format!("{}{at}", mine.join(", "))));
    }
    out
}

/// A stored item's observations: its snapshots and its current metrics when last seen.
fn observations(
    r: &StoredResult,
    history: &[prismq_domain::ports::MetricSnapshot],
) -> Vec<(prismq_domain::Timestamp, prismq_domain::Metrics)> {
    let mut out: Vec<_> = history.iter().map(|s| (s.captured_at, s.metrics)).collect();
    out.push((r.last_seen_at, r.item.metrics));
    out
}

/// `results show`'s growth fields, one per window: what was gained over the span the
/// history covers, or why there is no figure.
fn growth_lines(
    observations: &[(prismq_domain::Timestamp, prismq_domain::Metrics)],
    min_span_secs: i64,
) -> Vec<(&'static str, String)> {
    GrowthWindow::ALL
        .iter()
        .map(|w| {
            let label = match w {
                GrowthWindow::Hour => "growth 1h",
                GrowthWindow::Day => "growth 24h",
                GrowthWindow::Week => "growth 7d",
                GrowthWindow::Month => "growth 30d",
            };
            let line = match growth::growth_over(observations, *w, min_span_secs) {
                None => format!(
                    "- (the history covers less than {} of it)",
                    span_words(min_span_secs)
                ),
                Some(g) => {
                    let c = |v: Option<i64>| v.map_or_else(|| "-".into(), signed_count);
                    let over = if g.span_secs >= w.seconds() {
                        "the whole window".to_owned()
                    } else {
                        format!(
                            "the last {} (all the history there is)",
                            span_words(g.span_secs)
                        )
                    };
                    format!(
                        "{} views, {} likes, {} comments over {over}; {} views/h",
                        c(g.views),
                        c(g.likes),
                        c(g.comments),
                        g.views_per_hour
                            .map_or_else(|| "-".into(), |v| render::count(v.round() as i64)),
                    )
                }
            };
            (label, line)
        })
        .collect()
}

/// A gain with its sign: `+1,234`, `-5`, `0`.
fn signed_count(n: i64) -> String {
    if n > 0 {
        format!("+{}", render::count(n))
    } else {
        render::count(n)
    }
}

/// The views history drawn in the terminal (braille dots, by textplots); `None` with fewer
/// than two observations with views or no time between them.
fn views_chart(
    observations: &[(prismq_domain::Timestamp, prismq_domain::Metrics)],
) -> Option<String> {
    use textplots::{Chart, LabelBuilder, LabelFormat, Plot, Shape};
    let mut points: Vec<(i64, i64)> = observations
        .iter()
        .filter_map(|(t, m)| m.views.map(|v| (t.as_millisecond(), v)))
        .collect();
    points.sort_unstable();
    let (&(t0, _), &(t1, _)) = (points.first()?, points.last()?);
    if t1 <= t0 {
        return None;
    }
    let hours: Vec<(f32, f32)> = points
        .iter()
        .map(|(t, v)| (((t - t0) as f64 / 3_600_000.0) as f32, *v as f32))
        .collect();
    let xmax = ((t1 - t0) as f64 / 3_600_000.0) as f32;
    let start = prismq_domain::Timestamp::from_millisecond(t0).ok()?;
    let shape = Shape::Lines(&hours);
    let mut chart = Chart::new(120, 40, 0.0, xmax);
    let chart = chart
        .lineplot(&shape)
        .x_label_format(LabelFormat::Custom(Box::new(move |x| {
            let at = start
                .checked_add(jiff::SignedDuration::from_secs_f64(f64::from(x) * 3_600.0))
                .unwrap_or(start);
            render::time(at)[..16].to_owned()
        })))
        .y_label_format(LabelFormat::Custom(Box::new(|y| {
            render::count(y.round() as i64)
        })));
    chart.axis();
    chart.figures();
    Some(chart.to_string())
}

/// The id `results show` looks up: a YouTube video URL (`watch?v=`, `youtu.be/`, `/shorts/`,
/// `/live/`) gives its video id; anything else is taken as the id itself.
fn video_id(given: &str) -> String {
    let given = given.trim();
    if given.contains('/') {
        if let Ok(id) = prismq_plugins::youtube::ids::parse_video(given) {
            return id.as_str().to_owned();
        }
    }
    given.to_owned()
}

/// How many sightings `results show` lists.
const SIGHTINGS_SHOWN: u32 = 50;

async fn show(ctx: &Ctx, app: &App, source_id: &str, platform: Option<String>) -> CliResult {
    let source_id = &video_id(source_id);
    let found: Vec<StoredResult> = match platform {
        Some(p) => vec![app.results.get(&p, source_id).await?],
        None => app.results.find(source_id).await?,
    };
    if found.is_empty() {
        return Err(CliError::not_found(format!(
            "no stored result has the id {source_id:?}; list them with `prismq results list`"
        )));
    }
    let mut shown = Vec::new();
    let mut text = String::new();
    for r in found {
        let history = app
            .results
            .history(&r.item.platform, &r.item.source_id)
            .await?;
        let sightings = app
            .results
            .sightings(&r.item.platform, &r.item.source_id, SIGHTINGS_SHOWN)
            .await?;
        let baselines = match r.item.channel_id.as_deref() {
            Some(c) => app.results.baselines(c).await?,
            None => Vec::new(),
        };
        if ctx.json() {
            let min_span = app.config.ideas.settings().growth_min_span_secs();
            let obs = observations(&r, &history);
            let windows: serde_json::Map<String, serde_json::Value> = GrowthWindow::ALL
                .iter()
                .map(|w| {
                    let g = growth::growth_over(&obs, *w, min_span);
                    (w.as_str().to_owned(), json!(g))
                })
                .collect();
            shown.push(json!({
                "result": r,
                "history": history,
                "sightings": sightings,
                "growth": windows,
                "baselines": baselines,
            }));
            continue;
        }
        let i = &r.item;
        let mut fields = vec![
            ("platform", i.platform.clone()),
            ("id", i.source_id.clone()),
            ("title", i.title.clone()),
            ("channel", render::opt(i.channel.as_deref())),
            ("url", render::opt(i.url.as_deref())),
            ("published", render::opt_time(i.published_at)),
            (
                "duration",
                render::opt(i.duration_secs.map(|s| format!("{s}s"))),
            ),
            ("tags", i.tags.join(", ")),
            ("first seen", render::time(r.first_seen_at)),
            ("last seen", render::time(r.last_seen_at)),
            ("last task", render::opt(r.last_task_id)),
        ];
        let observations = observations(&r, &history);
        let min_span = app.config.ideas.settings().growth_min_span_secs();
        for (w, line) in growth_lines(&observations, min_span) {
            fields.push((w, line));
        }
        fields.extend(explain(&r, &baselines));
        text.push_str(&render::fields(&fields));
        if let Some(chart) = views_chart(&observations) {
            text.push_str("\nviews over time:\n");
            text.push_str(&chart);
        }
        let mut t = Table::new(&["CAPTURED", "VIEWS", "LIKES", "COMMENTS"]).right_align(&[1, 2, 3]);
        for h in &history {
            let m = h.metrics;
            let c = |v: Option<i64>| v.map_or_else(|| "-".into(), render::count);
            t.row(vec![
                render::time(h.captured_at),
                c(m.views),
                c(m.likes),
                c(m.comments),
            ]);
        }
        text.push_str("\nmetrics history:\n");
        text.push_str(&t.render());
        text.push('\n');
        text.push_str(&sightings_table(&sightings));
    }
    if ctx.json() {
        render::json(&shown)
    } else {
        render::print(text.trim_end_matches('\n')).and_then(|()| render::print("\n"))
    }
}

/// Where the video was seen, newest first, under a heading; says when the list was cut.
fn sightings_table(sightings: &[prismq_domain::Sighting]) -> String {
    let mut t = Table::new(&["SEEN", "SOURCE", "RANK", "TASK"]).right_align(&[2, 3]);
    for s in sightings {
        t.row(vec![
            render::time(s.seen_at),
            s.source.clone(),
            render::opt(s.rank),
            render::opt(s.task_id),
        ]);
    }
    let mut out = String::from("\nseen by:\n");
    out.push_str(&t.render());
    if sightings.len() >= SIGHTINGS_SHOWN as usize {
        out.push_str(&format!(
            "(the latest {SIGHTINGS_SHOWN}; --json has the same, the API's /v1/results/{{id}} pages them)\n"
        ));
    }
    out
}

async fn export(
    ctx: &Ctx,
    app: &App,
    format: ExportFormat,
    out: &Path,
    force: bool,
    filter: &ResultFilter,
    format_filter: Option<VideoFormatArg>,
) -> CliResult {
    let protected = files::database_files(ctx.config.database.sqlite_path());
    let target = Target::classify("--out", out, force, &protected)?;
    let mut q = query(app, filter, format_filter)?;
    // The progress bar's total: every record (a filtered export stops short of it).
    let total = app.results.count(None).await?;
    let shown = target.describe();
    let to_stdout = target == Target::Stdout;
    let mut output = target.open()?;
    let bar = progress::bar(ctx, total, "exporting");
    let written = write_pages(app, &mut q, format, &mut output, &bar).await;
    bar.finish_and_clear();
    if output.reader_gone() {
        // `--out - | head`: the reader has what it wanted.
        return Ok(());
    }
    let written = written?;
    output.finish()?;
    if to_stdout {
        // stdout carries the export; the summary goes to stderr.
        eprintln!("wrote {written} results to stdout");
        return Ok(());
    }
    if ctx.json() {
        return render::json(&json!({ "path": out, "written": written }));
    }
    render::print(&format!("wrote {written} results to {shown}\n"))
}

async fn write_pages(
    app: &App,
    q: &mut ResultQuery,
    format: ExportFormat,
    out: &mut Output,
    bar: &indicatif::ProgressBar,
) -> CliResult<u64> {
    fn err(e: impl std::fmt::Display) -> CliError {
        CliError::failure(format!("writing the export: {e}"))
    }
    let encoder = export::Encoder::new(match format {
        ExportFormat::Csv => export::ExportFormat::Csv,
        ExportFormat::Jsonl => export::ExportFormat::Jsonl,
    });
    let mut w = BufWriter::new(out);
    w.write_all(&encoder.start()).map_err(err)?;
    let mut pages = export::Pages::new(app.results.clone(), q.clone());
    let mut written = 0u64;
    while let Some(page) = pages.next().await? {
        w.write_all(&encoder.page(&page)).map_err(err)?;
        written += page.len() as u64;
        bar.set_position(written);
    }
    w.flush().map_err(err)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::ContentItem;

    fn stored(extra: serde_json::Value, views: Option<i64>, saved_twice: bool) -> StoredResult {
        let mut item = ContentItem::new("youtube_channel", "Kq9MZLmFMHQ", "t");
        item.metrics.views = views;
        item.extra = extra.as_object().cloned().unwrap_or_default();
        let first: prismq_domain::Timestamp = "2026-11-20T12:00:00Z".parse().unwrap();
        let last = if saved_twice {
            "2026-11-20T13:00:00Z".parse().unwrap()
        } else {
            first
        };
        StoredResult {
            item,
            first_seen_at: first,
            last_seen_at: last,
            last_task_id: None,
            growth: if saved_twice && views.is_some() {
                prismq_domain::growth::Growth {
                    day: Some(prismq_domain::growth::WindowRate {
                        views_per_hour: 1234.4,
                        span_secs: 3_600,
                    }),
                    hour: Some(prismq_domain::growth::WindowRate {
                        views_per_hour: 99.0,
                        span_secs: 3_600,
                    }),
                    ..Default::default()
                }
            } else {
                Default::default()
            },
            format: None,
            outlier: None,
        }
    }

    #[test]
    fn the_type_cell_says_only_what_the_source_said() {
        let cell = |extra| kind_cell(&stored(extra, None, false));
        assert_eq!(cell(json!({"live_status": "is_live"})), "live");
        assert_eq!(cell(json!({"live_status": "upcoming"})), "upcoming");
        assert_eq!(
            cell(json!({"live_status": "was_live", "is_short": false})),
            "stream"
        );
        assert_eq!(
            cell(json!({"live_status": "none", "tab": "streams"})),
            "stream"
        );
        assert_eq!(cell(json!({"media_type": "livestream"})), "stream");
        assert_eq!(
            cell(json!({"live_status": "none", "is_short": true})),
            "short"
        );
        assert_eq!(
            cell(json!({"live_status": "not_live", "is_short": false})),
            "long"
        );
        assert_eq!(cell(json!({"live_status": "none"})), "-");
        // A duration never decides.
        let mut r = stored(json!({}), None, false);
        r.item.duration_secs = Some(30);
        assert_eq!(kind_cell(&r), "-");
    }

    #[test]
    fn views_per_hour_is_a_dash_until_the_history_has_a_span_and_names_a_short_span() {
        let day = GrowthWindow::Day;
        assert_eq!(
            views_per_hour_cell(&stored(json!({}), Some(10), false), day),
            "-"
        );
        assert_eq!(
            views_per_hour_cell(&stored(json!({}), None, true), day),
            "-"
        );
        assert_eq!(
            views_per_hour_cell(&stored(json!({}), Some(10), true), day),
            "1,234 (1h)",
            "an hour of history in a 24 h window"
        );
        assert_eq!(
            views_per_hour_cell(&stored(json!({}), Some(10), true), GrowthWindow::Hour),
            "99"
        );
        assert_eq!(
            views_per_hour_cell(&stored(json!({}), Some(10), true), GrowthWindow::Week),
            "-"
        );
    }

    #[test]
    fn show_explains_each_window_and_draws_the_history() {
        let t = |h: i64| -> prismq_domain::Timestamp {
            prismq_domain::Timestamp::from_second(1_800_000_000 + h * 3_600).unwrap()
        };
        let m = |v: i64| prismq_domain::Metrics {
            views: Some(v),
            likes: Some(v / 100),
            comments: None,
        };
        let obs = [(t(0), m(1_000)), (t(2), m(3_000)), (t(3), m(3_000))];
        let lines = growth_lines(&obs, 1_800);
        assert_eq!(lines[0].0, "growth 1h");
        assert_eq!(
            lines[0].1,
            "0 views, 0 likes, - comments over the whole window; 0 views/h"
        );
        assert_eq!(
            lines[1].1,
            "+2,000 views, +20 likes, - comments over the last 3h (all the history there is); 667 views/h"
        );
        let short = growth_lines(&obs[..1], 1_800);
        assert_eq!(short[3].1, "- (the history covers less than 30m of it)");
        let chart = views_chart(&obs).unwrap();
        assert!(chart.contains("3,000"), "{chart}");
        assert!(chart.contains("1,000"), "{chart}");
        assert!(
            chart
                .chars()
                .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
            "{chart}"
        );
        assert_eq!(
            views_chart(&obs[..1]),
            None,
            "one observation: nothing to draw"
        );
    }

    #[test]
    fn show_takes_a_video_url_or_an_id() {
        for url in [
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42",
            "https://youtu.be/dQw4w9WgXcQ",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ",
            " dQw4w9WgXcQ ",
        ] {
            assert_eq!(video_id(url), "dQw4w9WgXcQ", "{url}");
        }
        // Not a video URL: looked up as given (and not found, exit 3).
        assert_eq!(video_id("https://example.org/x"), "https://example.org/x");
        assert_eq!(video_id("post-17"), "post-17");
    }

    #[test]
    fn the_rank_is_the_latest_sightings() {
        let mut r = stored(json!({"trending_rank": 3}), Some(1_234_567), false);
        // A rank key another source left in the extra fields is not this sighting's rank.
        assert_eq!(rank(&r), None);
        r.item.rank = Some(7);
        assert_eq!(rank(&r), Some(7));
        let text = table(&[r], true, GrowthWindow::Day).render_width(None);
        assert!(text.starts_with("RANK  VIDEO"), "{text}");
        assert!(text.contains("1,234,567"), "{text}");
        let row = text.lines().nth(1).unwrap();
        assert!(row.trim_start().starts_with('7'), "{text}");
    }
}
