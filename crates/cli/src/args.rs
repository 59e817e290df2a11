//! The command line, declared with clap's derive API. Only shapes and help text live here:
//! values are checked by the app (configuration, the plugin registry, the domain types) so
//! that every refusal names the accepted values the same way everywhere.

use prismq_domain::growth::GrowthWindow;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_CODES_HELP;

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

/// Flags every command takes.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// The SQLite database file (overrides database.path; default: PRISMQ_QUEUE_DB_PATH or
    /// the platform's data directory).
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Read this configuration file instead of ./prismq.toml (also PRISMQ_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Machine-readable JSON on stdout for every command that prints data.
    #[arg(long, global = true)]
    pub json: bool,

    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr; no progress or status line.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// No colour (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enqueue a task, run workers in this process until it finishes, and print its results.
    Collect(crate::commands::collect::CollectArgs),
    /// Create the database (if needed), apply migrations and print its path.
    Init,
    /// Show, apply or revert schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Put tasks on the queue.
    Enqueue(crate::commands::enqueue::EnqueueArgs),
    /// Run worker loops that claim and run tasks.
    Work(WorkArgs),
    /// List, show, cancel and retry tasks.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// The dead-letter queue: failed tasks.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Collected videos: list, show, export.
    #[command(subcommand)]
    Results(ResultsCommand),
    /// Registered worker loops and their health.
    Workers(WorkersArgs),
    /// Queue depth by type and status.
    Stats(StatsArgs),
    /// Tasks enqueued on a timetable: add, list, show, pause, resume, remove, run-now.
    #[command(subcommand)]
    Schedule(crate::commands::schedule::ScheduleCommand),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
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

/// `prismq migrate …`.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Every known migration and whether it is applied.
    Status,
    /// Apply pending migrations (up to --to).
    Up {
        /// Stop at this version (default: the latest).
        #[arg(long, value_name = "N")]
        to: Option<i64>,
    },
    /// Revert migrations down to --to (0 empties the database). Deletes data: needs --yes.
    Down {
        /// The version to go down to.
        #[arg(long, value_name = "N")]
        to: i64,
        /// Confirm that the reverted migrations' data is deleted.
        #[arg(long)]
        yes: bool,
    },
}

/// `prismq work`.
#[derive(Debug, Args)]
pub struct WorkArgs {
    /// Concurrent worker loops (default worker.concurrency: the number of CPUs).
    #[arg(long, short = 'c', value_name = "N")]
    pub concurrency: Option<usize>,
    /// fifo, lifo, priority or weighted_random (default worker.strategy).
    #[arg(long, value_name = "STRATEGY")]
    pub strategy: Option<String>,
    /// Only these task types (comma-separated or repeated; default all registered).
    #[arg(long, value_name = "TYPE", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Stop when no eligible task is left.
    #[arg(long)]
    pub drain: bool,
    /// Claim at most this many tasks, then stop once they are finished.
    #[arg(long, value_name = "N")]
    pub max_tasks: Option<u64>,
    /// Work for the queue of the `prismq serve` at this URL, over its API: no database file
    /// and no database password here. The key (scope work) comes from --api-key-file or
    /// PRISMQ_API_KEY.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The file holding the API key for --server (instead of PRISMQ_API_KEY).
    #[arg(long, value_name = "FILE", requires = "server")]
    pub api_key_file: Option<std::path::PathBuf>,
    /// Trust the certificates in this PEM file for an https:// --server, besides the
    /// bundled web roots: a private CA, or the server's self-signed certificate
    /// [worker.server_ca_cert].
    #[arg(long, value_name = "FILE", requires = "server")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Serve this worker's Prometheus metrics at http://ADDR/metrics (a loopback address
    /// unless --metrics-insecure-bind).
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<String>,
    /// Serve the metrics on an address other machines can reach (no key protects them).
    #[arg(long, requires = "metrics_bind")]
    pub metrics_insecure_bind: bool,
}

/// `prismq tasks …`.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Tasks, newest first.
    List(TaskListArgs),
    /// One task with its log.
    Show {
        /// The task id.
        id: i64,
    },
    /// Cancel a queued, claimed or running task.
    Cancel {
        /// The task id.
        id: i64,
    },
    /// Send a failed (dead-lettered) task back to the queue.
    Retry {
        /// The task id.
        id: i64,
    },
}

/// Filters of `tasks list`.
#[derive(Debug, Args)]
pub struct TaskListArgs {
    /// queued, claimed, running, completed, failed or cancelled.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only this task type.
    #[arg(long = "type", value_name = "TYPE")]
    pub task_type: Option<String>,
    /// At most this many (1-10000).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: u32,
    /// Only tasks with a smaller id (the next page: pass the last id shown).
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
    /// Only tasks the schedule with this name enqueued (its slots and run-nows).
    #[arg(long, value_name = "NAME")]
    pub schedule: Option<String>,
}

/// `prismq dlq …`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Failed tasks, newest first.
    List {
        /// Only this task type.
        #[arg(long = "type", value_name = "TYPE")]
        task_type: Option<String>,
        /// At most this many (1-10000).
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
    },
    /// Send failed tasks back to the queue (attempts reset).
    Retry {
        /// The task ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<i64>,
        /// Every failed task (of --type, if given).
        #[arg(long)]
        all: bool,
        /// With --all: only this task type.
        #[arg(long = "type", value_name = "TYPE", requires = "all")]
        task_type: Option<String>,
    },
    /// Delete failed tasks (and their logs) that failed longer ago than --older-than.
    Purge {
        /// An age such as 7d or 12h.
        #[arg(long, value_name = "DURATION")]
        older_than: String,
    },
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

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
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

/// `prismq workers`.
#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// `prune`: remove stopped and stale workers.
    #[command(subcommand)]
    pub action: Option<crate::commands::workers_prune::WorkersCommand>,
    /// A worker silent for longer than this is shown as stale (default: 3 heartbeats).
    #[arg(long, value_name = "DURATION")]
    pub stale_after: Option<String>,
}

/// `prismq stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Refresh every 2 seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
}

/// `prismq config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every setting's effective value and where it came from (secrets redacted).
    Show,
}

/// Shells with completion scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// PowerShell.
    Powershell,
}

/// `prismq completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: ShellArg,
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
