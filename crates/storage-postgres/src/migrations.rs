//! Versioned schema migrations embedded in the binary: status, up and down, each step in its
//! own transaction under `pg_advisory_xact_lock`, recorded with a checksum in
//! `schema_migrations`. Two processes starting at once wait for each other on the lock and
//! apply each migration once.

use deadpool_postgres::GenericClient;

use crate::error::StoreError;

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version, from 1, consecutive.
    pub version: i64,
    /// Short name.
    pub name: &'static str,
    /// SQL applying it.
    pub up: &'static str,
    /// SQL undoing it.
    pub down: &'static str,
}

/// Every migration this binary knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        up: include_str!("../migrations/0001_initial.up.sql"),
        down: include_str!("../migrations/0001_initial.down.sql"),
    },
    Migration {
        version: 2,
        name: "lapses_and_holds",
        up: include_str!("../migrations/0002_lapses_and_holds.up.sql"),
        down: include_str!("../migrations/0002_lapses_and_holds.down.sql"),
    },
    Migration {
        version: 3,
        name: "outlier_scores",
        up: include_str!("../migrations/0003_outlier_scores.up.sql"),
        down: include_str!("../migrations/0003_outlier_scores.down.sql"),
    },
];

/// The advisory lock key every migration (and schema creation) takes: "PrismQ" in ASCII.
pub const LOCK_KEY: i64 = 0x5072_6973_6d51;

/// The newest version this binary knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

impl Migration {
    /// FNV-1a (64-bit) of the up SQL, as 16 hex digits: detects edits, not attacks.
    pub fn checksum(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.up.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// One migration's state in a database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationStatus {
    /// Version.
    pub version: i64,
    /// Name.
    pub name: String,
    /// When it was applied (ms since the epoch), if it was.
    pub applied_at: Option<i64>,
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT   NOT NULL,
    checksum   TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)";

async fn applied(c: &impl GenericClient) -> Result<Vec<(i64, String, String, i64)>, StoreError> {
    let exists: bool = c
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// Refuses a database migrated by a newer binary, or whose applied migrations differ from
/// the embedded ones; returns the current version. Reads only.
///
/// # Errors
/// `SchemaTooNew`, `ChecksumMismatch`, or a database error.
pub async fn check(c: &impl GenericClient) -> Result<i64, StoreError> {
    let mut current = 0;
    for (version, name, checksum, _) in applied(c).await? {
        let Some(m) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(StoreError::SchemaTooNew {
                found: version,
                known: latest_version(),
            });
        };
        let embedded = m.checksum();
        if checksum != embedded {
            return Err(StoreError::ChecksumMismatch {
                version,
                name,
                applied: checksum,
                embedded,
            });
        }
        current = current.max(version);
    }
    Ok(current)
}

/// Every known migration and whether it is applied.
///
/// # Errors
/// As [`check`].
pub async fn status(c: &impl GenericClient) -> Result<Vec<MigrationStatus>, StoreError> {
    check(c).await?;
    let at: std::collections::HashMap<i64, i64> = applied(c)
        .await?
        .into_iter()
        .map(|(v, _, _, a)| (v, a))
        .collect();
    Ok(MIGRATIONS
        .iter()
        .map(|m| MigrationStatus {
            version: m.version,
            name: m.name.to_owned(),
            applied_at: at.get(&m.version).copied(),
        })
        .collect())
}

/// A transaction holding the migration lock, with `schema_migrations` in place. Creating
/// the table (a no-op when it exists) also makes this session take in the catalog changes
/// committed while it waited for the lock — a bare `SELECT` after the lock could still see
/// the schema as it was before, and apply a migration twice.
async fn locked(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(&format!(
        "SET LOCAL client_min_messages = warning; {CREATE_TABLE}"
    ))
    .await?;
    Ok(tx)
}

/// Applies pending migrations up to `target` (default: the latest), each in its own
/// transaction that takes the advisory lock and re-checks the version. Returns the versions
/// applied; none when already there.
///
/// # Errors
/// As [`check`]; `UnknownVersion` for a target beyond the latest; a failing step is rolled
/// back whole.
pub async fn up(
    client: &mut deadpool_postgres::Object,
    target: Option<i64>,
    now_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    let target = target.unwrap_or_else(latest_version);
    if !(0..=latest_version()).contains(&target) {
        return Err(StoreError::UnknownVersion(target, latest_version()));
    }
    let mut done = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version <= target) {
        let tx = locked(client).await?;
        if check(&tx).await? >= m.version {
            continue;
        }
        tx.batch_execute(m.up).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
            &[&m.version, &m.name, &m.checksum(), &now_ms],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        done.push(m.version);
    }
    Ok(done)
}

/// Reverts applied migrations down to `target` (0 reverts everything), newest first, each
/// in its own transaction under the advisory lock. Returns the versions reverted.
///
/// # Errors
/// As [`check`]; `UnknownVersion` for a negative target or one beyond the latest.
pub async fn down(
    client: &mut deadpool_postgres::Object,
    target: i64,
) -> Result<Vec<i64>, StoreError> {
    if !(0..=latest_version()).contains(&target) {
        return Err(StoreError::UnknownVersion(target, latest_version()));
    }
    let mut done = Vec::new();
    for m in MIGRATIONS.iter().rev().filter(|m| m.version > target) {
        let tx = locked(client).await?;
        if check(&tx).await? < m.version {
            continue;
        }
        tx.batch_execute(m.down).await?;
        tx.execute(
            "DELETE FROM schema_migrations WHERE version = $1",
            &[&m.version],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "migration reverted");
        done.push(m.version);
    }
    Ok(done)
}
