//! Exit codes and the CLI's one error type. Every error the app, the store or the domain
//! returns is mapped here, and only here, to an exit code and a one-line message (with its
//! cause chain when it adds anything).

use std::fmt;
use std::process::ExitCode;

use prismq_app::{AppError, ConfigError, RuntimeError};
use prismq_domain::ports::{StorageError, StorageProblem};
use prismq_domain::{PortError, ValidationError};
use prismq_storage_sqlite::StoreError;

/// The process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok,
    /// 1: the command ran and failed (a task failed, `collect --no-wait` left it deferred, a
    /// file could not be written, …).
    Failure,
    /// 2: usage or invalid input; nothing was written.
    Usage,
    /// 3: a task, result or file named on the command line does not exist.
    NotFound,
    /// 4: the database is busy, locked or unusable (read-only, corrupt, deleted, too new or
    /// too old for a command that only reads, another application's).
    Unavailable,
    /// 5: the configuration is invalid (a file, an environment variable, a missing key).
    Config,
    /// 130: interrupted (Ctrl-C, or a second signal during shutdown).
    Interrupted,
}

impl Exit {
    /// The numeric code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::NotFound => 3,
            Exit::Unavailable => 4,
            Exit::Config => 5,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The exit codes as `--help` prints them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    the command failed (e.g. the collected task failed, or --no-wait left it queued)
  2    usage error or invalid input; nothing was written
  3    not found (task, result, database or file)
  4    database busy, locked or unusable
  5    configuration error
  130  interrupted

Docs: docs/cli.md. Configuration: docs/configuration.md.";

/// An error on its way to stderr: a message, the causes behind it, and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The exit code it ends the process with.
    pub exit: Exit,
    /// One line: what went wrong and what to do.
    pub message: String,
    /// The cause chain, outermost first.
    pub causes: Vec<String>,
}

impl CliError {
    /// An error with `exit` and `message`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
            causes: Vec::new(),
        }
    }

    /// Usage or invalid input (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new(Exit::Usage, message)
    }

    /// A failure (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        CliError::new(Exit::Failure, message)
    }

    /// Not found (exit 3).
    pub fn not_found(message: impl Into<String>) -> Self {
        CliError::new(Exit::NotFound, message)
    }

    /// Adds the sources of `e` as causes.
    pub fn with_sources(mut self, e: &dyn std::error::Error) -> Self {
        let mut next = e.source();
        while let Some(s) = next {
            self.causes.push(s.to_string());
            next = s.source();
        }
        self
    }

    /// Puts `context` in front of the message ("reading tasks.jsonl: …").
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The lines printed on stderr: `error: message`, then each cause not already said.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("error: {}", self.message)];
        let mut said = self.message.clone();
        for c in &self.causes {
            if !said.contains(c.as_str()) {
                out.push(format!("  caused by: {c}"));
                said.push_str(c);
            }
        }
        out
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ValidationError> for CliError {
    fn from(e: ValidationError) -> Self {
        CliError::usage(e.to_string())
    }
}

impl From<PortError> for CliError {
    fn from(e: PortError) -> Self {
        let exit = match &e {
            PortError::NotFound(_) => Exit::NotFound,
            PortError::Invalid(_) | PortError::InvalidState { .. } => Exit::Usage,
            PortError::Busy(_)
            | PortError::Unavailable(_)
            | PortError::Corrupt(_)
            | PortError::Gone(_) => Exit::Unavailable,
            PortError::LeaseLost { .. } | PortError::Duplicate(_) => Exit::Failure,
        };
        let hint = match &e {
            PortError::Busy(_) => {
                "; other processes hold the database: retry, or raise database.busy_timeout"
            }
            _ => "",
        };
        CliError::new(exit, format!("{e}{hint}"))
    }
}

impl From<StoreError> for CliError {
    /// The SQLite adapter's own error (the SQLite-only `import legacy`), read as the neutral
    /// [`StorageError`] every other command gets.
    fn from(e: StoreError) -> Self {
        CliError::from(StorageError::from(e))
    }
}

impl From<StorageError> for CliError {
    fn from(e: StorageError) -> Self {
        if let StorageError::Port(p) = e {
            return CliError::from(p);
        }
        let exit = match e.problem() {
            StorageProblem::Config => Exit::Config,
            StorageProblem::Invalid => Exit::Usage,
            StorageProblem::NotFound => Exit::NotFound,
            StorageProblem::Failed => Exit::Failure,
            StorageProblem::Unavailable | StorageProblem::Unsupported => Exit::Unavailable,
        };
        CliError::new(exit, e.to_string()).with_sources(&e)
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::new(Exit::Config, e.to_string())
    }
}

impl From<AppError> for CliError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Store(s) => CliError::from(s),
            AppError::Plugin { .. } => CliError::new(
                Exit::Config,
                format!("{e}; fix the setting in prismq.toml or the environment"),
            ),
        }
    }
}

impl From<RuntimeError> for CliError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Port {
                worker,
                operation,
                source,
            } => {
                let inner = CliError::from(source);
                CliError::new(
                    inner.exit,
                    format!("worker {worker}: {operation} failed: {}", inner.message),
                )
            }
            RuntimeError::NoHandlers | RuntimeError::UnknownTaskType { .. } => {
                CliError::new(Exit::Config, e.to_string())
            }
            other => CliError::failure(other.to_string()),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        let exit = if e.kind() == std::io::ErrorKind::NotFound {
            Exit::NotFound
        } else {
            Exit::Failure
        };
        CliError::new(exit, e.to_string())
    }
}

/// The CLI's result type.
pub type CliResult<T = ()> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_documented() {
        let all = [
            Exit::Ok,
            Exit::Failure,
            Exit::Usage,
            Exit::NotFound,
            Exit::Unavailable,
            Exit::Config,
            Exit::Interrupted,
        ];
        for e in all {
            assert!(
                EXIT_CODES_HELP.contains(&format!("\n  {:<4} ", e.code())),
                "{e:?} is not in the help"
            );
        }
    }

    #[test]
    fn port_errors_map_to_codes() {
        assert_eq!(
            CliError::from(PortError::NotFound("task 9".into())).exit,
            Exit::NotFound
        );
        assert_eq!(
            CliError::from(PortError::Busy("locked".into())).exit,
            Exit::Unavailable
        );
        let v = ValidationError::new("priority", "11 is out of range", "1 to 10");
        assert_eq!(CliError::from(PortError::Invalid(v)).exit, Exit::Usage);
    }

    #[test]
    fn database_file_errors_map_to_codes() {
        use std::path::PathBuf;
        let path = PathBuf::from("q.db");
        let cases = [
            (
                StoreError::InvalidPath {
                    path: path.clone(),
                    problem: "it is a URI",
                },
                Exit::Usage,
            ),
            (
                StoreError::NotAFile {
                    path: path.clone(),
                    kind: "a FIFO",
                },
                Exit::Usage,
            ),
            (StoreError::Missing { path: path.clone() }, Exit::NotFound),
            (
                StoreError::Uninitialised { path: path.clone() },
                Exit::NotFound,
            ),
            (
                StoreError::Foreign {
                    path: path.clone(),
                    tables: "users".into(),
                },
                Exit::Unavailable,
            ),
            (
                StoreError::SchemaTooOld {
                    found: 1,
                    needed: 2,
                },
                Exit::Unavailable,
            ),
            (
                StoreError::Corrupt {
                    path,
                    detail: "malformed".into(),
                },
                Exit::Unavailable,
            ),
            (
                StoreError::Port(PortError::Corrupt("malformed".into())),
                Exit::Unavailable,
            ),
            (
                StoreError::Port(PortError::Gone("deleted".into())),
                Exit::Unavailable,
            ),
        ];
        for (e, exit) in cases {
            let text = e.to_string();
            assert_eq!(CliError::from(e).exit, exit, "{text}");
        }
    }

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let mut e = CliError::failure("writing x: disk full");
        e.causes = vec!["disk full".into(), "errno 28".into()];
        assert_eq!(
            e.lines(),
            ["error: writing x: disk full", "  caused by: errno 28"]
        );
    }
}
