//! Moving a queue between stores: `prismq db copy --from sqlite:PATH --to postgres://…` and
//! the reverse, on the PostgreSQL adapter's verified copy.

use std::path::PathBuf;
use std::sync::Arc;

use prismq_domain::ports::SystemClock;
use prismq_storage_postgres::{
    copy_postgres_to_sqlite, copy_sqlite_to_postgres, CopyReport, PostgresOptions, PostgresStore,
};

use crate::config::redact_url_password;

/// One end of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server URL.
    Postgres(String),
}

/// Why a copy was refused or failed; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// An endpoint could not be parsed.
    #[error("{which} {given:?} is not a store: expected sqlite:PATH, or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")]
    Endpoint {
        /// `--from` or `--to`.
        which: &'static str,
        /// What was given (password redacted).
        given: String,
    },
    /// `--schema` is not a plain identifier.
    #[error("--schema {0:?} is not a usable schema name; use 1 to 63 characters of a-z, 0-9 and _, starting with a letter or _")]
    Schema(String),
    /// Both ends are the same kind; only SQLite ↔ PostgreSQL copies are supported.
    #[error("copy from {0} to {1} is not supported: copy between SQLite and PostgreSQL (use `prismq backup` for SQLite to SQLite)")]
    Unsupported(&'static str, &'static str),
    /// The PostgreSQL store could not be opened.
    #[error(transparent)]
    Postgres(#[from] prismq_storage_postgres::StoreError),
    /// The copy itself failed; nothing was committed to the target.
    #[error(transparent)]
    Copy(#[from] prismq_storage_postgres::CopyError),
}

impl CopyError {
    /// True when the request itself was refused (bad endpoint, unsupported pair, non-empty
    /// target without force) rather than a store failing.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            CopyError::Endpoint { .. }
                | CopyError::Schema(_)
                | CopyError::Unsupported(..)
                | CopyError::Copy(prismq_storage_postgres::CopyError::TargetNotEmpty { .. })
        )
    }
}

impl Endpoint {
    /// Parses `sqlite:PATH` (also `sqlite://PATH`) or a `postgres://`/`postgresql://` URL.
    ///
    /// # Errors
    /// Anything else, naming `which` end it was.
    pub fn parse(which: &'static str, given: &str) -> Result<Endpoint, CopyError> {
        let given = given.trim();
        if prismq_storage_postgres::is_postgres_url(given) {
            return Ok(Endpoint::Postgres(given.to_owned()));
        }
        let path = given
            .strip_prefix("sqlite://")
            .or_else(|| given.strip_prefix("sqlite:"));
        match path {
            Some(p) if !p.is_empty() => Ok(Endpoint::Sqlite(PathBuf::from(p))),
            _ => Err(CopyError::Endpoint {
                which,
                given: redact_url_password(given).into_owned(),
            }),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Endpoint::Sqlite(_) => "SQLite",
            Endpoint::Postgres(_) => "PostgreSQL",
        }
    }
}

async fn postgres(url: &str, schema: Option<&str>) -> Result<PostgresStore, CopyError> {
    let mut options = PostgresOptions::new(url);
    options.schema = schema.map(str::to_owned);
    Ok(PostgresStore::open(options, Arc::new(SystemClock)).await?)
}

/// Copies tasks, logs, workers, results, metric history, quota and schedules from `from` to
/// `to`, in one
/// transaction on the target, verifying every table's count; refuses a non-empty target
/// unless `force` (which replaces its contents). The PostgreSQL end's tables are in `schema`
/// (created if missing) when given, else in the connection's default schema.
///
/// # Errors
/// See [`CopyError`].
pub async fn copy_database(
    from: &Endpoint,
    to: &Endpoint,
    force: bool,
    schema: Option<&str>,
) -> Result<CopyReport, CopyError> {
    if let Some(s) = schema.filter(|s| !prismq_storage_postgres::is_valid_schema_name(s)) {
        return Err(CopyError::Schema(s.to_owned()));
    }
    match (from, to) {
        (Endpoint::Sqlite(path), Endpoint::Postgres(url)) => {
            Ok(copy_sqlite_to_postgres(path, &postgres(url, schema).await?, force).await?)
        }
        (Endpoint::Postgres(url), Endpoint::Sqlite(path)) => {
            Ok(copy_postgres_to_sqlite(&postgres(url, schema).await?, path, force).await?)
        }
        (a, b) => Err(CopyError::Unsupported(a.kind(), b.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_bad_ones_are_named_without_passwords() {
        assert_eq!(
            Endpoint::parse("--from", "sqlite:q.db").unwrap(),
            Endpoint::Sqlite("q.db".into())
        );
        assert_eq!(
            Endpoint::parse("--from", "sqlite:///tmp/q.db").unwrap(),
            Endpoint::Sqlite("/tmp/q.db".into())
        );
        assert!(matches!(
            Endpoint::parse("--to", "postgres://u@h/d").unwrap(),
            Endpoint::Postgres(_)
        ));
        let e = Endpoint::parse("--to", "mysql://u:hunter2@h/d")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--to") && e.contains("expected sqlite:PATH"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        assert!(Endpoint::parse("--from", "sqlite:").is_err());
    }

    #[tokio::test]
    async fn same_kind_copies_are_refused() {
        let a = Endpoint::Sqlite("a.db".into());
        let e = copy_database(&a, &a, false, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("not supported"), "{e}");
    }
}
