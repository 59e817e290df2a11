//! The flags every command takes (`--db`, `--config`, `--json`, `-v`, `-q`, `--no-color`),
//! in a file of their own so that the commands that read them and the command line that
//! declares them (`args`) need not import each other.

use std::path::PathBuf;

use clap::Args;

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
