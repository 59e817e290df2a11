//! Errors of opening and migrating a store, and the mapping of driver and pool errors to the
//! domain's port errors at the boundary: no `tokio_postgres` type ever leaves this crate.

use prismq_domain::{PortError, ValidationError};
use tokio_postgres::error::SqlState;

/// Why a store could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The connection URL could not be parsed.
    #[error("database.url is not a usable PostgreSQL URL ({0}); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")]
    InvalidUrl(String),
    /// A TLS setting of the URL (`sslrootcert`, `sslcert`, `sslkey`) names a file that is
    /// missing or holds nothing usable.
    #[error("database.url's TLS settings are not usable: {0}")]
    Tls(String),
    /// The schema name is not a plain identifier.
    #[error("{0:?} is not a usable schema name; use 1 to 63 characters of a-z, 0-9 and _, starting with a letter or _")]
    InvalidSchema(String),
    /// The schema is newer than this binary, was altered, or a migration target is unknown.
    #[error(transparent)]
    Migration(#[from] prismq_domain::schema::MigrationError),
    /// Any other database error, already mapped to the domain.
    #[error(transparent)]
    Port(#[from] PortError),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Port(map_err(e))
    }
}

impl From<StoreError> for PortError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Port(p) => p,
            other => PortError::Unavailable(other.to_string()),
        }
    }
}

const RESTARTING: &str = "PostgreSQL is shutting down, restarting or refusing connections";

/// Maps a driver error to the domain's port error.
///
/// Lock conflicts (deadlock, serialization failure, lock timeout) are `Busy`; connection
/// loss, a server shutting down and any other server error are `Unavailable` — both
/// transient, so the runtime backs off and retries. A unique violation is `Duplicate`.
/// Damaged data or index pages (SQLSTATE XX001, XX002) are `Corrupt`: fatal, never retried.
pub(crate) fn map_err(e: tokio_postgres::Error) -> PortError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let msg = db.message().to_owned();
        if *code == SqlState::UNIQUE_VIOLATION {
            return PortError::Duplicate(msg);
        }
        if *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::LOCK_NOT_AVAILABLE
        {
            return PortError::Busy(msg);
        }
        if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
            // The server read damaged pages: no retry fixes that, so the runtime stops.
            return PortError::Corrupt(format!(
                "PostgreSQL reports damaged data ({msg}, SQLSTATE {}); stop the workers, run \
                 `prismq validate`, and repair the database (REINDEX for a damaged index) or \
                 restore it from a backup",
                code.code()
            ));
        }
        if *code == SqlState::UNTRANSLATABLE_CHARACTER
            || *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
        {
            return PortError::Invalid(ValidationError::new(
                "value",
                format!("PostgreSQL cannot store it: {msg}"),
                "text without NUL (\\u0000) characters",
            ));
        }
        if *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || code.code().starts_with("08")
        {
            return PortError::Unavailable(format!(
                "{RESTARTING} ({msg}); workers back off and resume when it is back"
            ));
        }
        return PortError::Unavailable(format!("PostgreSQL error {}: {msg}", code.code()));
    }
    if e.is_closed() {
        return PortError::Unavailable(
            "the connection to PostgreSQL was lost; workers back off and resume when it is back (a claim whose commit was lost is resolved by its lease)".into(),
        );
    }
    let msg = with_causes(&e);
    PortError::Unavailable(format!("{CANNOT_USE}{msg}{}", tls_hint(&msg)))
}

const CANNOT_USE: &str = "cannot use PostgreSQL: ";

/// `e` and its causes, `: `-joined: the driver's own text is only the kind of failure
/// ("error performing TLS handshake"), the cause says which ("invalid peer certificate: …").
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = cause.source();
    }
    msg
}

/// What to do about a failed TLS handshake, from the driver's message (rustls' error text).
fn tls_hint(msg: &str) -> &'static str {
    if msg.contains("invalid peer certificate") {
        "; the server's certificate is not trusted for this host: name the CA that signed it \
         with sslrootcert=FILE in database.url, connect to a host name the certificate names \
         (sslmode=verify-ca skips that check), or use sslmode=disable on a network you trust"
    } else if msg.contains("server does not support TLS") {
        "; the server has TLS turned off: turn on ssl in postgresql.conf, or use \
         sslmode=prefer or sslmode=disable in database.url"
    } else {
        ""
    }
}

/// Maps a pool error (no connection could be had) to `Unavailable`.
pub(crate) fn map_pool_err(e: deadpool_postgres::PoolError) -> PortError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => match map_err(e) {
            PortError::Unavailable(m) => PortError::Unavailable(format!(
                "cannot connect to PostgreSQL: {}",
                m.strip_prefix(CANNOT_USE).unwrap_or(&m)
            )),
            other => other,
        },
        deadpool_postgres::PoolError::Timeout(_) => PortError::Unavailable(
            "timed out waiting for a PostgreSQL connection (server unreachable, or the pool is exhausted)".into(),
        ),
        other => PortError::Unavailable(format!("cannot connect to PostgreSQL: {other}")),
    }
}

/// A row value that does not convert to the domain (a corrupt or hand-edited row).
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> PortError {
    PortError::Unavailable(format!("a stored {what} is not valid: {e}"))
}
