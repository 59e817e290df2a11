//! This engine's side of the schema migrations (`prismq_domain::schema` plans and checks
//! them): the embedded steps, listing what is applied, and applying or reverting each step in its
//! own transaction, recorded with a checksum in `schema_migrations`.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use serde_json::json;

pub use prismq_domain::schema::MigrationStatus;
use prismq_domain::schema::{Applied, Migration, Migrations};

use crate::error::{map_err, StoreError};

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
        name: "derived_attempt_log",
        up: include_str!("../migrations/0002_derived_attempt_log.up.sql"),
        down: include_str!("../migrations/0002_derived_attempt_log.down.sql"),
    },
    Migration {
        version: 3,
        name: "lapses_and_holds",
        up: include_str!("../migrations/0003_lapses_and_holds.up.sql"),
        down: include_str!("../migrations/0003_lapses_and_holds.down.sql"),
    },
    Migration {
        version: 4,
        name: "outlier_scores",
        up: include_str!("../migrations/0004_outlier_scores.up.sql"),
        down: include_str!("../migrations/0004_outlier_scores.down.sql"),
    },
    Migration {
        version: 5,
        name: "schedules",
        up: include_str!("../migrations/0005_schedules.up.sql"),
        down: include_str!("../migrations/0005_schedules.down.sql"),
    },
    Migration {
        version: 6,
        name: "api_keys",
        up: include_str!("../migrations/0006_api_keys.up.sql"),
        down: include_str!("../migrations/0006_api_keys.down.sql"),
    },
    Migration {
        version: 7,
        name: "growth_windows",
        up: include_str!("../migrations/0007_growth_windows.up.sql"),
        down: include_str!("../migrations/0007_growth_windows.down.sql"),
    },
    Migration {
        version: 8,
        name: "one_record_per_video",
        up: include_str!("../migrations/0008_one_record_per_video.up.sql"),
        down: include_str!("../migrations/0008_one_record_per_video.down.sql"),
    },
    Migration {
        version: 9,
        name: "growth_catch_up",
        up: include_str!("../migrations/0009_growth_catch_up.up.sql"),
        down: include_str!("../migrations/0009_growth_catch_up.down.sql"),
    },
    Migration {
        version: 10,
        name: "region_claim_indexes",
        up: include_str!("../migrations/0010_region_claim_indexes.up.sql"),
        down: include_str!("../migrations/0010_region_claim_indexes.down.sql"),
    },
    Migration {
        version: 11,
        name: "lighter_writes",
        up: include_str!("../migrations/0011_lighter_writes.up.sql"),
        down: include_str!("../migrations/0011_lighter_writes.down.sql"),
    },
    Migration {
        version: 12,
        name: "compact_rows",
        up: include_str!("../migrations/0012_compact_rows.up.sql"),
        down: include_str!("../migrations/0012_compact_rows.down.sql"),
    },
    Migration {
        version: 13,
        name: "cheaper_checks",
        up: include_str!("../migrations/0013_cheaper_checks.up.sql"),
        down: include_str!("../migrations/0013_cheaper_checks.down.sql"),
    },
    Migration {
        version: 14,
        name: "counts_in_code",
        up: include_str!("../migrations/0014_counts_in_code.up.sql"),
        down: include_str!("../migrations/0014_counts_in_code.down.sql"),
    },
    Migration {
        version: 15,
        name: "updated_on_change",
        up: include_str!("../migrations/0015_updated_on_change.up.sql"),
        down: include_str!("../migrations/0015_updated_on_change.down.sql"),
    },
];

/// Migrations that rebuild a table other tables reference (SQLite's twelve-step procedure:
/// copy aside, drop, create anew, copy back). They run with foreign keys off, or dropping the
/// parent table would delete its children's rows through `ON DELETE CASCADE`; before each
/// commits, `PRAGMA foreign_key_check` must find nothing, or the step rolls back.
const REBUILDS_WITH_FOREIGN_KEYS_OFF: &[i64] = &[11, 12, 13, 15];

/// The version that adds `growth_pending`, which the store empties after migrating.
pub const GROWTH_CATCH_UP_VERSION: i64 = 9;

/// [`MIGRATIONS`] with the plans and checks the engines share.
pub const SCHEMA: Migrations = Migrations::new(MIGRATIONS);

/// The newest version this binary knows.
pub fn latest_version() -> i64 {
    SCHEMA.latest()
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    checksum   TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
)";

fn applied(conn: &Connection) -> rusqlite::Result<Vec<Applied>> {
    let exists: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Applied {
            version: r.get(0)?,
            name: r.get(1)?,
            checksum: r.get(2)?,
            applied_at: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Refuses a database migrated by a newer binary, or whose applied migrations differ from
/// the embedded ones. Reads only.
pub fn check(conn: &Connection) -> Result<i64, StoreError> {
    Ok(SCHEMA.check(&applied(conn).map_err(map_err)?)?)
}

/// Every known migration and whether it is applied.
///
/// # Errors
/// As [`check`].
pub fn status(conn: &Connection) -> Result<Vec<MigrationStatus>, StoreError> {
    Ok(SCHEMA.status(&applied(conn).map_err(map_err)?)?)
}

/// The version a database is at (0 for an empty one).
///
/// # Errors
/// As [`check`].
pub fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    check(conn)
}

/// Applies pending migrations up to `target` (default: the latest), each in its own
/// IMMEDIATE transaction that re-checks the version, so two processes starting at once
/// apply each migration once. Returns the versions applied; none when already there.
///
/// # Errors
/// As [`check`]; `UnknownVersion` for a target beyond the latest; any SQL failure rolls the
/// failing step back.
pub fn up(conn: &mut Connection, target: Option<i64>, now_ms: i64) -> Result<Vec<i64>, StoreError> {
    let steps = SCHEMA.up_to(target)?;
    // Read first, without the write lock: a database already there (every `work` start on a
    // live queue) takes no lock at all, so starting a worker never waits behind the writers.
    let current = check(conn)?;
    let mut done = Vec::new();
    for m in steps.into_iter().filter(|m| m.version > current) {
        let applied = with_foreign_keys_for(conn, m.version, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let current = check(&tx)?;
            if current >= m.version {
                return Ok(false);
            }
            tx.execute_batch(CREATE_TABLE).map_err(map_err)?;
            tx.execute_batch(m.up).map_err(map_err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![m.version, m.name, m.checksum(), now_ms],
            )
            .map_err(map_err)?;
            check_foreign_keys(&tx, m.version)?;
            tx.commit().map_err(map_err)?;
            Ok(true)
        })?;
        if applied {
            tracing::info!(version = m.version, name = m.name, "migration applied");
            done.push(m.version);
        }
    }
    Ok(done)
}

/// Reverts applied migrations down to `target` (0 reverts everything), newest first, each
/// in its own transaction. Returns the versions reverted.
///
/// # Errors
/// As [`check`]; `UnknownVersion` for a negative target or one beyond the latest.
pub fn down(conn: &mut Connection, target: i64) -> Result<Vec<i64>, StoreError> {
    let mut done = Vec::new();
    for m in SCHEMA.down_to(target)? {
        let reverted = with_foreign_keys_for(conn, m.version, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            if check(&tx)? < m.version {
                return Ok(false);
            }
            tx.execute_batch(m.down).map_err(map_err)?;
            tx.execute(
                "DELETE FROM schema_migrations WHERE version = ?1",
                [m.version],
            )
            .map_err(map_err)?;
            check_foreign_keys(&tx, m.version)?;
            tx.commit().map_err(map_err)?;
            Ok(true)
        })?;
        if reverted {
            tracing::info!(version = m.version, name = m.name, "migration reverted");
            done.push(m.version);
        }
    }
    Ok(done)
}

/// Runs one migration step: for a table rebuild ([`REBUILDS_WITH_FOREIGN_KEYS_OFF`]) with
/// foreign keys off (the pragma is a no-op inside a transaction, so it is set around it), and
/// put back as it was whatever the step's outcome.
fn with_foreign_keys_for<T>(
    conn: &mut Connection,
    version: i64,
    step: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if !REBUILDS_WITH_FOREIGN_KEYS_OFF.contains(&version) {
        return step(conn);
    }
    let was_on: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(map_err)?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(map_err)?;
    let out = step(conn);
    if was_on {
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .map_err(map_err)?;
    }
    out
}

/// Refuses to commit a rebuild that left a row pointing at a missing parent.
fn check_foreign_keys(conn: &Connection, version: i64) -> Result<(), StoreError> {
    if !REBUILDS_WITH_FOREIGN_KEYS_OFF.contains(&version) {
        return Ok(());
    }
    let broken: Option<(String, Option<i64>, String)> = conn
        .query_row("PRAGMA foreign_key_check", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(map_err)?;
    match broken {
        None => Ok(()),
        Some((table, row, parent)) => Err(prismq_domain::PortError::Unavailable(format!(
            "migration {version} would leave {} pointing at a missing {parent} row (written with foreign keys off?; `prismq validate` lists them); nothing was changed: delete the orphans (PRAGMA foreign_key_check names them) or restore a backup, then migrate again",
            row.map_or_else(|| format!("a {table} row"), |r| format!("{table} row {r}"))
        ))
        .into()),
    }
}

/// The schema as text (every table, index, trigger and view, in a stable order), for
/// snapshots and `validate`.
///
/// # Errors
/// Database errors.
pub fn schema_dump(conn: &Connection) -> Result<String, StoreError> {
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .map_err(map_err)?;
    let rows = stmt
        .query_map([], |r| Ok(json!({"type": r.get::<_, String>(0)?, "name": r.get::<_, String>(1)?, "sql": r.get::<_, String>(2)?})))
        .map_err(map_err)?;
    let mut out = String::new();
    for row in rows {
        let v = row.map_err(map_err)?;
        out.push_str(&format!(
            "-- {} {}\n{};\n\n",
            v["type"].as_str().unwrap_or(""),
            v["name"].as_str().unwrap_or(""),
            v["sql"].as_str().unwrap_or("")
        ));
    }
    Ok(out)
}
