//! The exit code and message of an operations error (validate, maintenance, backup,
//! import): the store's and port's errors keep their own mapping, file errors are not found
//! or failures, refusals of the input are usage errors, a corrupt backup is "unavailable".

use prismq_storage_sqlite::ops::OpsError;

use crate::exit::{CliError, Exit};

/// Maps `e` to the CLI's error.
pub fn ops_error(e: OpsError) -> CliError {
    let exit = match e {
        OpsError::Store(s) => return CliError::from(s),
        OpsError::Port(p) => return CliError::from(p),
        OpsError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Exit::NotFound
        }
        OpsError::Io { .. } => Exit::Failure,
        OpsError::Exists { .. }
        | OpsError::NotLegacy { .. }
        | OpsError::SameFile { .. }
        | OpsError::Invalid { .. } => Exit::Usage,
        OpsError::BackupCorrupt { .. } | OpsError::InUse { .. } => Exit::Unavailable,
    };
    CliError::new(exit, e.to_string()).with_sources(&e)
}
