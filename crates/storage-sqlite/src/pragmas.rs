//! The PRAGMAs every connection runs with, and their verification after opening.

use rusqlite::config::DbConfig;
use rusqlite::Connection;

use crate::error::StoreError;
use crate::{SqliteOptions, Synchronous};

/// Page cache per connection, in KiB (negative means KiB to SQLite).
const CACHE_SIZE_KIB: i64 = 20_000;
/// Memory-mapped I/O window.
const MMAP_SIZE: i64 = 128 * 1024 * 1024;

/// Applies the connection settings: the query planner stability guarantee (below), then the
/// PRAGMAs: the page size of a new file, WAL, synchronous, busy_timeout, foreign keys, temp
/// store in memory, mmap, cache size, WAL autocheckpoint.
///
/// **QPSG.** Without it SQLite may plan a statement around the values bound to it (a `LIMIT
/// ?`, a `column = ?` it weighs by whether the value is 0 or 1, STAT4 samples), and marks such
/// a statement to be compiled again whenever its bindings are cleared or changed. rusqlite's
/// statement cache clears the bindings of every statement it takes back, so every claim probe
/// was compiled afresh on every claim (counted: 2,999 re-preparations in 3,000 uses of the
/// priority probe). Every query here is written for one plan whatever its values (the claim
/// probes name their index, listings are checked by the plan tests), so nothing is lost by
/// planning once.
pub(crate) fn apply(conn: &Connection, options: &SqliteOptions) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.busy_timeout(options.busy_timeout)?;
    // The page size of a new file, before WAL, which writes its first page. SQLite takes it
    // only while the file holds no table: an existing file keeps its own.
    conn.execute_batch(&format!("PRAGMA page_size = {}", options.page_size.get()))?;
    // journal_mode returns a row; WAL persists in the file once set.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Surfaced by verify() with the actual mode.
        tracing::warn!(mode, "journal_mode could not be set to WAL");
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {};
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA mmap_size = {MMAP_SIZE};
         PRAGMA cache_size = -{CACHE_SIZE_KIB};
         PRAGMA wal_autocheckpoint = 1000;",
        options.synchronous.as_sql()
    ))
}

/// Reads the PRAGMAs back and fails if any did not take.
pub(crate) fn verify(conn: &Connection, options: &SqliteOptions) -> Result<(), StoreError> {
    let read = |name: &'static str| -> Result<String, StoreError> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t.to_ascii_lowercase(),
            other => format!("{other:?}"),
        })
        .map_err(|e| StoreError::Port(crate::error::map_err(e)))
    };
    let expect = |pragma: &'static str, expected: String| -> Result<(), StoreError> {
        let actual = read(pragma)?;
        if actual == expected {
            Ok(())
        } else {
            Err(StoreError::Pragma {
                pragma,
                expected,
                actual,
            })
        }
    };
    expect("journal_mode", "wal".into())?;
    expect("foreign_keys", "1".into())?;
    expect("synchronous", options.synchronous.level().to_string())?;
    expect("temp_store", "2".into())?;
    expect("busy_timeout", options.busy_timeout.as_millis().to_string())?;
    let qpsg = conn
        .db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG)
        .map_err(|e| StoreError::Port(crate::error::map_err(e)))?;
    if !qpsg {
        return Err(StoreError::Pragma {
            pragma: "query planner stability guarantee",
            expected: "on".into(),
            actual: "off".into(),
        });
    }
    Ok(())
}

impl Synchronous {
    pub(crate) const fn as_sql(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }

    pub(crate) const fn level(self) -> u8 {
        match self {
            Synchronous::Normal => 1,
            Synchronous::Full => 2,
        }
    }
}
