//! Validate checks 2 to 4: the database opens and is local, the schema is what the
//! migrations make (objects, checksums, integrity, foreign keys), and the PRAGMAs are what
//! the configuration asks.

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::collections::BTreeMap;

use crate::codec::status_word;
use crate::error::StoreError;
use crate::{connection, migrations, pragmas, SqliteOptions};
use prismq_domain::ports::validation::{CheckResult, Outcome};

/// How many problem lines a check lists before summarising.
const MAX_LISTED: usize = 10;

/// Check 2: the path is local, the file exists and is a SQLite database that opens for
/// writing. Returns the connection (busy timeout set, nothing else) for the other checks.
pub(crate) fn open(options: &SqliteOptions) -> Result<(Connection, CheckResult), CheckResult> {
    let path = &options.path;
    let fail = |reason: String| CheckResult::new(2, Outcome::Fail, reason);
    connection::check_path(path).map_err(|e| fail(e.to_string()))?;
    connection::check_local(path).map_err(|e| fail(e.to_string()))?;
    // Looked at read-only first: another application's database, or a damaged one, is
    // reported without its journal mode (check 4 sets WAL) or anything else changed.
    match connection::inspect(path, options.busy_timeout).map_err(|e| fail(e.to_string()))? {
        connection::Found::Missing => {
            return Err(fail(
                StoreError::Missing {
                    path: path.to_path_buf(),
                }
                .to_string(),
            ))
        }
        connection::Found::Empty => {
            return Err(fail(
                StoreError::Uninitialised {
                    path: path.to_path_buf(),
                }
                .to_string(),
            ))
        }
        connection::Found::Prismq => {}
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| fail(connection::classify_open_error(e, path).to_string()))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(|e| fail(e.to_string()))?;
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Err(fail(
            StoreError::ReadOnly {
                path: path.to_path_buf(),
            }
            .to_string(),
        ));
    }
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| fail(connection::classify_open_error(e, path).to_string()))?;
    let mut details = vec![format!("path: {}", path.display())];
    if let Ok(meta) = std::fs::metadata(path) {
        details.push(format!("file size: {} bytes", meta.len()));
    }
    if let Ok(v) = conn.query_row("SELECT sqlite_version()", [], |r| r.get::<_, String>(0)) {
        details.push(format!("SQLite {v}"));
    }
    details.push(format!("{objects} schema objects"));
    let result = CheckResult::new(2, Outcome::Pass, "opens for writing on a local disk")
        .with_details(details);
    Ok((conn, result))
}

/// One object of the schema: (type, name) → normalised SQL.
type Objects = BTreeMap<(String, String), String>;

fn normalise(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn objects(conn: &Connection) -> rusqlite::Result<Objects> {
    let mut stmt = conn.prepare(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            normalise(&r.get::<_, String>(2)?),
        ))
    })?;
    rows.collect()
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_xinfo(?1) ORDER BY cid")?;
    let rows = stmt.query_map([table], |r| r.get(0))?;
    rows.collect()
}

/// The highest version recorded, read directly (so a checksum mismatch does not hide it).
fn recorded_version(conn: &Connection) -> rusqlite::Result<i64> {
    let has_table: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if has_table.is_none() {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
}

/// The schema the migrations make at `version`, built in memory.
fn expected_objects(version: i64) -> Result<(Connection, Objects), String> {
    let mut mem = Connection::open_in_memory().map_err(|e| e.to_string())?;
    migrations::up(&mut mem, Some(version), 0).map_err(|e| e.to_string())?;
    let objs = objects(&mem).map_err(|e| e.to_string())?;
    Ok((mem, objs))
}

struct Findings {
    fails: Vec<String>,
    warns: Vec<String>,
    facts: Vec<String>,
}

impl Findings {
    fn into_result(self, number: u8, pass: &str) -> CheckResult {
        let (outcome, reason) = if let Some(first) = self.fails.first() {
            let more = self.fails.len() - 1;
            let reason = if more > 0 {
                format!("{first} (and {more} more problems)")
            } else {
                first.clone()
            };
            (Outcome::Fail, reason)
        } else if let Some(first) = self.warns.first() {
            (Outcome::Warn, first.clone())
        } else {
            (Outcome::Pass, pass.to_owned())
        };
        let mut details: Vec<String> = self
            .fails
            .iter()
            .map(|f| format!("FAIL {f}"))
            .chain(self.warns.iter().map(|w| format!("WARN {w}")))
            .collect();
        details.extend(self.facts);
        CheckResult::new(number, outcome, reason).with_details(details)
    }
}

/// Check 3: every expected table, column, index, trigger and view exists as the migrations
/// define it; the recorded migrations match this binary's; integrity and foreign keys are clean.
pub(crate) fn schema(conn: &Connection, quick: bool) -> CheckResult {
    let mut f = Findings {
        fails: Vec::new(),
        warns: Vec::new(),
        facts: Vec::new(),
    };
    match migrations::check(conn) {
        Ok(v) => f.facts.push(format!(
            "schema version {v} of {}; migration checksums match",
            migrations::latest_version()
        )),
        Err(e) => f.fails.push(format!(
            "{e}. Restore a backup, or if the change was deliberate, re-create the database with `prismq init` and `prismq import`"
        )),
    }
    let version = match recorded_version(conn) {
        Ok(v) => v.min(migrations::latest_version()),
        Err(e) => {
            f.fails.push(format!("cannot read schema_migrations: {e}"));
            0
        }
    };
    if version == 0 {
        f.fails.push(
            "the database has no PrismQ schema; run `prismq init` (or `prismq migrate up`)".into(),
        );
    } else if version < migrations::latest_version() {
        f.warns.push(format!(
            "schema version {version} is behind this binary's {}; run `prismq migrate up`",
            migrations::latest_version()
        ));
    }
    if version > 0 {
        compare_objects(conn, version, &mut f);
    }
    integrity(conn, quick, &mut f);
    if version > 0 && !quick {
        counts(conn, &mut f);
        task_rows(conn, &mut f);
    }
    f.into_result(3, "every table, column, index, trigger and view is present; checksums match; integrity and foreign keys are clean; queue_counts and the task rows are as PrismQ writes them")
}

fn compare_objects(conn: &Connection, version: i64, f: &mut Findings) {
    let (mem, expected) = match expected_objects(version) {
        Ok(x) => x,
        Err(e) => {
            f.fails
                .push(format!("cannot build the expected schema: {e}"));
            return;
        }
    };
    let actual = match objects(conn) {
        Ok(a) => a,
        Err(e) => {
            f.fails.push(format!("cannot read the schema: {e}"));
            return;
        }
    };
    let mut problems = Vec::new();
    for ((kind, name), sql) in &expected {
        match actual.get(&(kind.clone(), name.clone())) {
            None => problems.push(format!(
                "{kind} {name} is missing; restore a backup, or revert and re-apply the migration (`prismq migrate down` then `up`) on a copy"
            )),
            Some(found) if found != sql => {
                let detail = if kind == "table" {
                    column_difference(conn, &mem, name)
                } else {
                    String::new()
                };
                problems.push(format!(
                    "{kind} {name} differs from migration {version}'s definition{detail}"
                ));
            }
            Some(_) => {}
        }
    }
    for (kind, name) in actual.keys() {
        if !expected.contains_key(&(kind.clone(), name.clone())) {
            f.warns.push(format!(
                "{kind} {name} is not part of PrismQ's schema (added by hand?); it is left alone"
            ));
        }
    }
    f.facts.push(format!(
        "{} schema objects expected, {} found",
        expected.len(),
        actual.len()
    ));
    f.fails.extend(problems);
}

fn column_difference(conn: &Connection, mem: &Connection, table: &str) -> String {
    let (Ok(want), Ok(have)) = (columns(mem, table), columns(conn, table)) else {
        return String::new();
    };
    let missing: Vec<_> = want.iter().filter(|c| !have.contains(c)).collect();
    let extra: Vec<_> = have.iter().filter(|c| !want.contains(c)).collect();
    let mut out = String::new();
    if !missing.is_empty() {
        out.push_str(&format!("; missing columns {missing:?}"));
    }
    if !extra.is_empty() {
        out.push_str(&format!("; extra columns {extra:?}"));
    }
    out
}

fn integrity(conn: &Connection, quick: bool, f: &mut Findings) {
    let pragma = if quick {
        "quick_check"
    } else {
        "integrity_check"
    };
    let rows: rusqlite::Result<Vec<String>> = conn
        .prepare(&format!("PRAGMA {pragma}"))
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => {
            f.facts.push(format!("{pragma}: ok"));
        }
        Ok(rows) => {
            f.fails.push(format!(
                "{pragma} found {} problems, first: {}; the file is damaged: stop the workers and restore a backup (see docs/operations.md)",
                rows.len(),
                rows.first().map_or("?", String::as_str)
            ));
            f.facts
                .extend(rows.into_iter().take(MAX_LISTED).map(|r| format!("{pragma}: {r}")));
        }
        Err(e) => f.fails.push(format!(
            "{pragma} could not run ({e}); the file is damaged: stop the workers and restore a backup"
        )),
    }
    let fk: rusqlite::Result<Vec<(String, Option<i64>, String)>> =
        conn.prepare("PRAGMA foreign_key_check").and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        });
    match fk {
        Ok(rows) if rows.is_empty() => f.facts.push("foreign_key_check: clean".into()),
        Ok(rows) => {
            f.fails.push(format!(
                "foreign_key_check found {} rows pointing at missing parents (first: {} row {} → {}); they were written with foreign keys off: restore a backup or delete the orphans",
                rows.len(),
                rows[0].0,
                rows[0].1.map_or("?".into(), |r| r.to_string()),
                rows[0].2
            ));
        }
        Err(e) => f
            .fails
            .push(format!("foreign_key_check could not run: {e}")),
    }
}

/// What the rows of `sql` (type, status, n) say, zero counts left out.
fn count_map(conn: &Connection, sql: &str) -> rusqlite::Result<BTreeMap<(String, String), i64>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
    rows.filter(|r| !matches!(r, Ok((_, 0)))).collect()
}

/// `queue_counts` against the rows (a scan of the queue): the claim's list of queued types
/// and `stats` read it. Since schema v11 the code that inserts tasks counts them, so a row
/// inserted behind PrismQ's back shows here.
fn counts(conn: &Connection, f: &mut Findings) {
    // Schema v12 interns types and stores statuses as codes; older files store the words.
    let compact = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'task_types'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(false);
    let (kept, real) = if compact {
        (
            concat!(
                "SELECT coalesce(t.name, '#' || c.type_id), ",
                status_word!("c.status"),
                ", c.n FROM queue_counts c LEFT JOIN task_types t ON t.id = c.type_id"
            ),
            concat!(
                "SELECT t.name, ",
                status_word!("q.status"),
                ", count(*) FROM task_queue q JOIN task_types t ON t.id = q.type_id GROUP BY q.type_id, q.status"
            ),
        )
    } else {
        (
            "SELECT type, status, n FROM queue_counts",
            "SELECT type, status, count(*) FROM task_queue GROUP BY type, status",
        )
    };
    let (kept, real) = (count_map(conn, kept), count_map(conn, real));
    let (kept, real) = match (kept, real) {
        (Ok(k), Ok(r)) => (k, r),
        (Err(e), _) | (_, Err(e)) => {
            f.fails
                .push(format!("cannot compare queue_counts with the rows: {e}"));
            return;
        }
    };
    let mut wrong: Vec<String> = Vec::new();
    for key in kept
        .keys()
        .chain(real.keys().filter(|k| !kept.contains_key(*k)))
    {
        let (k, r) = (
            kept.get(key).copied().unwrap_or(0),
            real.get(key).copied().unwrap_or(0),
        );
        if k != r {
            wrong.push(format!("{} {}: kept {k}, rows {r}", key.0, key.1));
        }
    }
    match wrong.first() {
        None => f.facts.push(format!(
            "queue_counts: {} (type, status) counts, each equal to the rows'",
            kept.len()
        )),
        Some(first) => {
            f.fails.push(format!(
                "queue_counts disagrees with the rows for {} (type, status) pairs, first {first}: tasks were written, deleted or given another status behind PrismQ's back, and workers that take every type may not see the ones not counted. With the workers stopped, recount in sqlite3: DELETE FROM queue_counts; INSERT INTO queue_counts (type_id, status, n) SELECT type_id, status, count(*) FROM task_queue GROUP BY 1, 2",
                wrong.len()
            ));
            f.facts.extend(
                wrong
                    .iter()
                    .skip(1)
                    .take(MAX_LISTED)
                    .map(|w| format!("queue_counts {w}")),
            );
        }
    }
}

/// Task rows as the adapter writes them (a scan of the queue). Since schema v11 the table
/// no longer parses JSON on insert: params must be a JSON object, compatibility and summary
/// JSON, and the stored region the one compatibility names.
const TASK_ROW_PROBLEMS: &str = "SELECT id, problem FROM (
    SELECT id, CASE
        WHEN NOT json_valid(params) THEN 'params is not JSON'
        WHEN json_type(params) <> 'object' THEN 'params is not a JSON object'
        WHEN NOT json_valid(compatibility) THEN 'compatibility is not JSON'
        WHEN summary IS NOT NULL AND NOT json_valid(summary) THEN 'summary is not JSON'
        WHEN region IS NOT json_extract(compatibility, '$.region')
            THEN 'region ' || quote(region) || ' is not the one compatibility names, ' || quote(json_extract(compatibility, '$.region'))
    END AS problem
    FROM task_queue)
WHERE problem IS NOT NULL";

fn task_rows(conn: &Connection, f: &mut Findings) {
    let found: rusqlite::Result<Vec<(i64, String)>> = conn
        .prepare(TASK_ROW_PROBLEMS)
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect());
    match found {
        Ok(rows) if rows.is_empty() => f.facts.push(
            "task rows: params JSON objects, compatibility and summary JSON, region as compatibility names it".into(),
        ),
        Ok(rows) => {
            f.fails.push(format!(
                "{} task rows hold what PrismQ never writes, first task {}: {}; they were written behind PrismQ's back and may fail to read or be claimed by the wrong workers: correct them, or cancel and purge them",
                rows.len(),
                rows[0].0,
                rows[0].1
            ));
            f.facts.extend(
                rows.iter()
                    .skip(1)
                    .take(MAX_LISTED)
                    .map(|(id, p)| format!("task {id}: {p}")),
            );
        }
        Err(e) => f.fails.push(format!("cannot read the task rows: {e}")),
    }
}

fn read_pragma(conn: &Connection, name: &str) -> String {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        r.get::<_, rusqlite::types::Value>(0)
    })
    .map(|v| match v {
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Text(t) => t.to_ascii_lowercase(),
        other => format!("{other:?}"),
    })
    .unwrap_or_else(|e| format!("unreadable ({e})"))
}

/// Check 4: applies the adapter's PRAGMAs to the connection and reads every one back
/// against what the configuration asks; reports the file's own settings.
pub(crate) fn pragmas(conn: &Connection, options: &SqliteOptions) -> CheckResult {
    let mut f = Findings {
        fails: Vec::new(),
        warns: Vec::new(),
        facts: Vec::new(),
    };
    let stored_mode = read_pragma(conn, "journal_mode");
    if let Err(e) = pragmas::apply(conn, options) {
        f.fails
            .push(format!("the PRAGMAs could not be applied: {e}"));
    }
    let expected = [
        ("journal_mode", "wal".to_owned()),
        ("synchronous", options.synchronous.level().to_string()),
        ("foreign_keys", "1".to_owned()),
        ("temp_store", "2".to_owned()),
        ("busy_timeout", options.busy_timeout.as_millis().to_string()),
    ];
    for (name, want) in expected {
        let got = read_pragma(conn, name);
        if got == want {
            f.facts.push(format!("{name} = {got}"));
        } else {
            f.fails.push(format!(
                "PRAGMA {name} is {got}, the configuration asks {want}{}",
                if name == "journal_mode" {
                    "; WAL needs a local disk that supports shared memory, and no other connection in another journal mode"
                } else {
                    ""
                }
            ));
        }
    }
    if stored_mode != "wal" {
        f.warns.push(format!(
            "the file was in journal_mode {stored_mode}; it is now WAL (PrismQ sets this on every open)"
        ));
    }
    let auto_vacuum = match read_pragma(conn, "auto_vacuum").as_str() {
        "0" => "none (maintenance vacuum --full reclaims space)",
        "1" => "full",
        "2" => "incremental",
        _ => "unknown",
    };
    f.facts.push(format!("auto_vacuum = {auto_vacuum}"));
    let page_size = read_pragma(conn, "page_size");
    let configured = options.page_size.get().to_string();
    f.facts.push(if page_size == configured {
        format!("page_size = {page_size}")
    } else {
        format!(
            "page_size = {page_size} (database.page_size is {configured}, which only a new file takes: with the workers stopped, `prismq db page-size {configured}` rewrites this one, operations.md#page-size)"
        )
    });
    for name in [
        "cache_size",
        "mmap_size",
        "wal_autocheckpoint",
        "freelist_count",
    ] {
        f.facts
            .push(format!("{name} = {}", read_pragma(conn, name)));
    }
    f.into_result(
        4,
        "WAL, synchronous, foreign keys, temp store and busy timeout are as configured",
    )
}
