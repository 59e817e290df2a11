//! This engine's side of the schema migrations (`prismq_domain::schema` plans and checks
//! them): the embedded steps, listing what is applied, and applying or reverting each step in its
//! own transaction under `pg_advisory_xact_lock`, recorded with a checksum in
//! `schema_migrations`. Two processes starting at once wait for each other on the lock and
//! apply each migration once.

use deadpool_postgres::GenericClient;

pub use prismq_domain::schema::MigrationStatus;
use prismq_domain::schema::{Applied, Migration, Migrations};

use crate::error::StoreError;

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
    Migration {
        version: 4,
        name: "schedules",
        up: include_str!("../migrations/0004_schedules.up.sql"),
        down: include_str!("../migrations/0004_schedules.down.sql"),
    },
    Migration {
        version: 5,
        name: "api_keys",
        up: include_str!("../migrations/0005_api_keys.up.sql"),
        down: include_str!("../migrations/0005_api_keys.down.sql"),
    },
    Migration {
        version: 6,
        name: "growth_windows",
        up: include_str!("../migrations/0006_growth_windows.up.sql"),
        down: include_str!("../migrations/0006_growth_windows.down.sql"),
    },
    Migration {
        version: 7,
        name: "one_record_per_video",
        up: include_str!("../migrations/0007_one_record_per_video.up.sql"),
        down: include_str!("../migrations/0007_one_record_per_video.down.sql"),
    },
    Migration {
        version: 8,
        name: "growth_catch_up",
        up: include_str!("../migrations/0008_growth_catch_up.up.sql"),
        down: include_str!("../migrations/0008_growth_catch_up.down.sql"),
    },
    Migration {
        version: 9,
        name: "fewer_result_indexes",
        up: include_str!("../migrations/0009_fewer_result_indexes.up.sql"),
        down: include_str!("../migrations/0009_fewer_result_indexes.down.sql"),
    },
    Migration {
        version: 10,
        name: "normalised_regions",
        up: include_str!("../migrations/0010_normalised_regions.up.sql"),
        down: include_str!("../migrations/0010_normalised_regions.down.sql"),
    },
];

/// The version that adds `growth_pending`, which the store empties after migrating.
pub const GROWTH_CATCH_UP_VERSION: i64 = 8;

/// The advisory lock key every migration (and schema creation) takes: "PrismQ" in ASCII.
pub const LOCK_KEY: i64 = 0x5072_6973_6d51;

/// [`MIGRATIONS`] with the plans and checks the engines share.
pub const SCHEMA: Migrations = Migrations::new(MIGRATIONS);

/// The newest version this binary knows.
pub fn latest_version() -> i64 {
    SCHEMA.latest()
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT   NOT NULL,
    checksum   TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)";

async fn applied(c: &impl GenericClient) -> Result<Vec<Applied>, StoreError> {
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
        .map(|r| Applied {
            version: r.get(0),
            name: r.get(1),
            checksum: r.get(2),
            applied_at: r.get(3),
        })
        .collect())
}

/// Refuses a database migrated by a newer binary, or whose applied migrations differ from
/// the embedded ones; returns the current version. Reads only.
///
/// # Errors
/// A [`prismq_domain::schema::MigrationError`], or a database error.
pub async fn check(c: &impl GenericClient) -> Result<i64, StoreError> {
    Ok(SCHEMA.check(&applied(c).await?)?)
}

/// Every known migration and whether it is applied.
///
/// # Errors
/// As [`check`].
pub async fn status(c: &impl GenericClient) -> Result<Vec<MigrationStatus>, StoreError> {
    Ok(SCHEMA.status(&applied(c).await?)?)
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
    let mut done = Vec::new();
    for m in SCHEMA.up_to(target)? {
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
    let mut done = Vec::new();
    for m in SCHEMA.down_to(target)? {
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
