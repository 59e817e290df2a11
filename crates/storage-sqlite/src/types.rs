//! Interned task types (schema v12): `task_types` holds each type name once and the task
//! rows, claim indexes and counts its integer id. An id is handed out when a type is first
//! written and never changes or goes away.

use rusqlite::{OptionalExtension, Transaction};

/// The id of `name` in `task_types`, adding it there on its first use (inside `tx`, so a
/// type written by a transaction that rolls back leaves nothing behind).
pub(crate) fn intern(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<i64> {
    if let Some(id) = tx
        .prepare_cached("SELECT id FROM task_types WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO task_types (name) VALUES (?1)")?
        .execute([name])?;
    Ok(tx.last_insert_rowid())
}

/// A SQL expression for the name of the row's type (`type_id` of `task_queue`), as a
/// literal for `concat!`: one probe of `task_types` by its key.
macro_rules! type_name {
    () => {
        "(SELECT name FROM task_types WHERE task_types.id = type_id)"
    };
}
pub(crate) use type_name;
