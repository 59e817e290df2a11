//! The command line, declared with clap's derive API: the flags every command takes and the
//! list of commands. Each command declares its own arguments in its file under `commands/`.
//! Only shapes and help text live in these declarations: values are checked by the app
//! (configuration, the plugin registry, the domain types) so that every refusal names the
//! accepted values the same way everywhere.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The result order `collect --order` takes, which `results` declares.
pub use crate::commands::results::OrderArg;
use crate::exit::EXIT_CODES_HELP;
use crate::global_args::GlobalArgs;

/// PrismQ: a durable task queue that collects YouTube videos as content ideas.
#[derive(Debug, Parser)]
#[command(
    name = "prismq",
    version,
    after_help = EXIT_CODES_HELP,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enqueue a task, run workers in this process until it finishes, and print its results.
    Collect(CollectArgs),
    /// Create the database (if needed), apply migrations and print its path.
    Init,
    /// Show, apply or revert schema migrations.
    #[command(subcommand)]
    Migrate(crate::commands::migrate::MigrateCommand),
    /// Put tasks on the queue.
    Enqueue(EnqueueArgs),
    /// Run worker loops that claim and run tasks.
    Work(crate::commands::work::WorkArgs),
    /// List, show, cancel and retry tasks.
    #[command(subcommand)]
    Tasks(crate::commands::tasks::TasksCommand),
    /// The dead-letter queue: failed tasks.
    #[command(subcommand)]
    Dlq(crate::commands::dlq::DlqCommand),
    /// Collected videos: list, show, export.
    #[command(subcommand)]
    Results(crate::commands::results::ResultsCommand),
    /// Registered worker loops and their health.
    Workers(crate::commands::workers::WorkersArgs),
    /// Queue depth by type and status.
    Stats(crate::commands::stats::StatsArgs),
    /// Tasks enqueued on a timetable: add, list, show, pause, resume, remove, run-now.
    #[command(subcommand)]
    Schedule(crate::commands::schedule::ScheduleCommand),
    /// Configuration.
    #[command(subcommand)]
    Config(crate::commands::config::ConfigCommand),
    /// Print a shell completion script.
    Completions(crate::commands::completions::CompletionsArgs),
    /// Run the eight infrastructure checks and a short benchmark (exit 1 if any fails).
    Validate(crate::commands::validate::ValidateArgs),
    /// Prune, checkpoint, optimize or vacuum the database.
    #[command(subcommand)]
    Maintenance(crate::commands::maintenance::MaintenanceCommand),
    /// Copy the live database to a file (online, consistent while workers run).
    Backup(crate::commands::backup::BackupArgs),
    /// Import from elsewhere: `import legacy OLD.db` reads a Python-era database.
    #[command(subcommand)]
    Import(crate::commands::import::ImportCommand),
    /// Move a queue between SQLite and PostgreSQL: `db copy --from sqlite:PATH --to postgres://…`.
    #[command(subcommand)]
    Db(crate::commands::db::DbCommand),
    /// Serve the queue over HTTP (API v1, OpenAPI, Prometheus metrics).
    Serve(crate::commands::serve::ServeArgs),
    /// API keys for `prismq serve`: create, list, revoke.
    #[command(subcommand)]
    Keys(crate::commands::keys::KeysCommand),
    /// The task types this build's plugins handle, with their parameters (`--json`: each
    /// with its parameters' JSON Schema).
    Types,
}

/// Flags every way of enqueueing takes.
#[derive(Debug, Clone, Default, Args)]
pub struct TaskOptions {
    /// 1 (lowest) to 10 (highest); default 5.
    #[arg(long, value_name = "1-10", allow_negative_numbers = true)]
    pub priority: Option<i64>,
    /// Not before this long from now (30s, 5m, 1h30m, 1d).
    #[arg(long, value_name = "DURATION", conflicts_with = "run_at")]
    pub delay: Option<String>,
    /// Not before this instant (RFC 3339, e.g. 2026-01-31T08:00:00Z).
    #[arg(long, value_name = "TIMESTAMP")]
    pub run_at: Option<String>,
    /// Enqueueing the same key again creates nothing and prints the existing task's id.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Attempts before the task is dead-lettered (1-100; default from retry.max_attempts).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_attempts: Option<i64>,
    /// Only workers serving this region (ISO 3166-1 alpha-2) may claim the task.
    #[arg(long, value_name = "CC")]
    pub region: Option<String>,
}

/// `prismq enqueue …`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_required = false)]
pub struct EnqueueArgs {
    /// Enqueue every line of a JSONL file (- for stdin; at most 32 MiB), all or nothing
    /// ({"type", "params", "priority", "run_after", "idempotency_key", "max_attempts",
    /// "region"} per line).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// The task to enqueue.
    #[command(subcommand)]
    pub kind: Option<TaskKind>,
}

/// A task described by flags, for `enqueue` and `collect`.
#[derive(Debug, Clone, Subcommand)]
pub enum TaskKind {
    /// channel_scrape: a channel's newest videos.
    Channel(ChannelArgs),
    /// trending_scrape: a region's most popular videos.
    Trending(TrendingArgs),
    /// keyword_search: videos matching a search query.
    Keyword(KeywordArgs),
    /// api_scrape: specific videos by id or URL.
    Videos(VideosArgs),
    /// refresh_stats: new metrics for tracked videos (seen within, of a channel, a schedule's).
    RefreshStats(RefreshStatsArgs),
    /// Any registered task type with JSON parameters.
    Raw(RawArgs),
}

/// `refresh_stats` parameters: at least one filter, or --all.
#[derive(Debug, Clone, Args)]
pub struct RefreshStatsArgs {
    /// Only videos seen (saved by a task) within this window: 7d, 12h (1h to 3650d).
    #[arg(long, value_name = "WINDOW")]
    pub seen_within: Option<String>,
    /// Only videos of this channel id (UC…).
    #[arg(long, value_name = "UC_ID")]
    pub channel_id: Option<String>,
    /// Only videos whose last saving task this schedule enqueued.
    #[arg(long, value_name = "NAME")]
    pub schedule: Option<String>,
    /// Every tracked video (instead of a filter).
    #[arg(long)]
    pub all: bool,
    /// list (videos.list, the general bucket; default) or batch_get_stats
    /// (videos:batchGetStats, its own bucket; counters only).
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Queue options.
    #[command(flatten)]
    pub task: TaskOptions,
}

/// `channel_scrape` parameters.
#[derive(Debug, Clone, Args)]
pub struct ChannelArgs {
    /// A channel URL, @handle, handle or UC… id.
    pub channel: String,
    /// How many of its newest videos (1-500; default 10).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub top_n: Option<i64>,
    /// Only videos published within this many days.
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true)]
    pub max_age_days: Option<i64>,
    /// videos (long-form), shorts, streams (past live streams) or all uploads (default
    /// videos, or the tab the channel URL ends in).
    #[arg(long, value_name = "TAB")]
    pub tab: Option<String>,
    /// Queue options.
    #[command(flatten)]
    pub task: TaskOptions,
}

/// `trending_scrape` parameters.
#[derive(Debug, Clone, Args)]
pub struct TrendingArgs {
    /// The chart's country, ISO 3166-1 alpha-2 (default US).
    #[arg(long, value_name = "CC")]
    pub country: Option<String>,
    /// all, music, gaming, movies, … or a category id (default all).
    #[arg(long, value_name = "CATEGORY")]
    pub category: Option<String>,
    /// How many videos (1-200; default 50).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub top_n: Option<i64>,
    /// Enqueue a scrape of each found channel without a baseline, once per channel and day
    /// (default: `[youtube] baselines_on_demand`).
    #[arg(long, conflicts_with = "no_baselines")]
    pub baselines: bool,
    /// Do not, whatever `[youtube] baselines_on_demand` says.
    #[arg(long)]
    pub no_baselines: bool,
    /// Queue options.
    #[command(flatten)]
    pub task: TaskOptions,
}

/// `keyword_search` parameters.
#[derive(Debug, Clone, Args)]
pub struct KeywordArgs {
    /// The search query.
    pub query: String,
    /// How many videos (1-500; default 50).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub top_n: Option<i64>,
    /// day, week, month, year or all (default all).
    #[arg(long, value_name = "WINDOW")]
    pub published_within: Option<String>,
    /// short, medium, long or any (default any).
    #[arg(long, value_name = "LENGTH")]
    pub duration: Option<String>,
    /// relevance, date, views or rating (default relevance).
    #[arg(long, value_name = "ORDER")]
    pub sort_by: Option<String>,
    /// Search results for this country (ISO 3166-1 alpha-2).
    #[arg(long, value_name = "CC")]
    pub country: Option<String>,
    /// Prefer this language (ISO 639-1).
    #[arg(long, value_name = "LANG")]
    pub language: Option<String>,
    /// Enqueue a scrape of each found channel without a baseline, once per channel and day
    /// (default: `[youtube] baselines_on_demand`).
    #[arg(long, conflicts_with = "no_baselines")]
    pub baselines: bool,
    /// Do not, whatever `[youtube] baselines_on_demand` says.
    #[arg(long)]
    pub no_baselines: bool,
    /// Queue options.
    #[command(flatten)]
    pub task: TaskOptions,
}

/// `api_scrape` parameters.
#[derive(Debug, Clone, Args)]
pub struct VideosArgs {
    /// Video ids or URLs (watch?v=, youtu.be/, /shorts/).
    #[arg(required = true, value_name = "ID_OR_URL")]
    pub videos: Vec<String>,
    /// Queue options.
    #[command(flatten)]
    pub task: TaskOptions,
}

/// Any task type with JSON parameters.
#[derive(Debug, Clone, Args)]
pub struct RawArgs {
    /// The task type (e.g. channel_scrape).
    #[arg(long = "type", value_name = "TYPE")]
    pub task_type: String,
    /// The parameters as a JSON object (default {}).
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// Queue options.
    #[command(flatten)]
    pub task: TaskOptions,
}

/// `prismq collect …`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Show at most this many results (default: all the task found).
    #[arg(long, value_name = "N", global = true)]
    pub limit: Option<u32>,
    /// When the task is deferred (the quota is spent), exit 1 leaving it queued for
    /// `prismq work` instead of waiting until then.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Order of the printed table (default: the source's own order, by its RANK column:
    /// chart rank, search rank, newest upload first, or the order the videos were given).
    #[arg(long, value_enum, global = true)]
    pub order: Option<OrderArg>,
    /// What to collect.
    #[command(subcommand)]
    pub kind: CollectKind,
}

/// The tasks `collect` can run.
#[derive(Debug, Clone, Subcommand)]
pub enum CollectKind {
    /// A channel's newest videos.
    Channel(ChannelArgs),
    /// A region's most popular videos (needs YOUTUBE_API_KEY).
    Trending(TrendingArgs),
    /// Videos matching a search query.
    Keyword(KeywordArgs),
    /// Specific videos by id or URL.
    Videos(VideosArgs),
}

impl From<CollectKind> for TaskKind {
    fn from(k: CollectKind) -> TaskKind {
        match k {
            CollectKind::Channel(a) => TaskKind::Channel(a),
            CollectKind::Trending(a) => TaskKind::Trending(a),
            CollectKind::Keyword(a) => TaskKind::Keyword(a),
            CollectKind::Videos(a) => TaskKind::Videos(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
