//! The command line, declared with clap's derive API: the flags every command takes and the
//! list of commands. Each command declares its own arguments in its file under `commands/`.
//! Only shapes and help text live in these declarations: values are checked by the app
//! (configuration, the plugin registry, the domain types) so that every refusal names the
//! accepted values the same way everywhere.

use clap::{Parser, Subcommand};

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
    Collect(crate::commands::collect::CollectArgs),
    /// Create the database (if needed), apply migrations and print its path.
    Init,
    /// Show, apply or revert schema migrations.
    #[command(subcommand)]
    Migrate(crate::commands::migrate::MigrateCommand),
    /// Put tasks on the queue.
    Enqueue(crate::commands::enqueue::EnqueueArgs),
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
    /// Move a queue between SQLite and PostgreSQL (`db copy --from sqlite:PATH --to postgres://…`), or change a SQLite file's page size (`db page-size BYTES`).
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
