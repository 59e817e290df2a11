//! `prismq init` and `prismq migrate status|up|down`, on the bare store: a SQLite file, or the
//! PostgreSQL server `database.url` names (the app always migrates on open, which `status`
//! and `down` must not do).

use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;

use prismq_domain::ports::SystemClock;
use prismq_domain::schema::{MigrationError, MigrationStatus};
use prismq_domain::Timestamp;
use prismq_storage_postgres::PostgresStore;

use crate::context::Ctx;
use crate::exit::{CliError, CliResult, Exit};
use crate::render::{self, Table};

/// `prismq migrate …`.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Every known migration and whether it is applied.
    Status,
    /// Apply pending migrations (up to --to).
    Up {
        /// Stop at this version (default: the latest).
        #[arg(long, value_name = "N")]
        to: Option<i64>,
    },
    /// Revert migrations down to --to (0 empties the database). Deletes data: needs --yes.
    Down {
        /// The version to go down to.
        #[arg(long, value_name = "N")]
        to: i64,
        /// Confirm that the reverted migrations' data is deleted.
        #[arg(long)]
        yes: bool,
    },
}

/// The bare PostgreSQL store when `database.url` names one (`migrate` as in
/// [`prismq_storage_postgres::PostgresOptions::migrate`]); `None` for a SQLite queue.
fn postgres(ctx: &Ctx, migrate: bool) -> CliResult<Option<PostgresStore>> {
    let Some(url) = ctx.config.database.postgres_url() else {
        return Ok(None);
    };
    let mut o = prismq_app::wiring::postgres_options(url, &ctx.config);
    o.migrate = migrate;
    PostgresStore::connect_lazy(o, Arc::new(SystemClock))
        .map(Some)
        .map_err(pg_error)
}

/// A PostgreSQL store error as the CLI reports it: an unknown target version is a usage
/// error (exit 2), the rest mean the database cannot be used (exit 4).
fn pg_error(e: prismq_storage_postgres::StoreError) -> CliError {
    match e {
        prismq_storage_postgres::StoreError::Port(p) => CliError::from(p),
        e @ prismq_storage_postgres::StoreError::Migration(MigrationError::UnknownVersion(..)) => {
            CliError::new(Exit::Usage, e.to_string())
        }
        e => CliError::new(Exit::Unavailable, e.to_string()),
    }
}

/// Where the queue is, for messages: the file, or the server's URL without its password.
fn location(ctx: &Ctx) -> CliResult<String> {
    match ctx.config.database.postgres_url() {
        Some(url) => Ok(prismq_app::config::redact_url_password(url).into_owned()),
        None => Ok(ctx.db_path()?.display().to_string()),
    }
}

/// `prismq init`: creates the database (a SQLite file, or the schema's tables on PostgreSQL)
/// if needed, applies every migration, prints where it is.
///
/// # Errors
/// The store's error.
pub async fn init(ctx: &Ctx) -> CliResult {
    let (created, rows) = match postgres(ctx, false)? {
        Some(pg) => {
            let before = current(&pg.migration_status().await.map_err(pg_error)?);
            pg.migrate_up(None).await.map_err(pg_error)?;
            let after = pg.migration_status().await.map_err(pg_error)?;
            (before == 0, after)
        }
        None => {
            // Created when no migration had been applied: a new or empty file (another
            // application's database is refused when the store opens).
            let store = checked(ctx, true)?;
            let before = current(&store.migration_status()?);
            store.migrate_up(None)?;
            (before == 0, store.migration_status()?)
        }
    };
    let version = current(&rows);
    let at = location(ctx)?;
    if ctx.json() {
        return render::json(&json!({
            "path": at,
            "created": created,
            "schema_version": version,
        }));
    }
    let verb = if created { "created" } else { "ready" };
    render::print(&format!(
        "database {verb} at {at} (schema version {version})\n"
    ))
}

/// Runs a `migrate` subcommand.
///
/// # Errors
/// The store's error; `down` without `--yes` (exit 2); no database for `status` (exit 3).
pub async fn run(ctx: &Ctx, cmd: MigrateCommand) -> CliResult {
    if let MigrateCommand::Down { to, yes: false } = cmd {
        return Err(CliError::usage(format!(
            "migrating down to version {to} deletes the tables of the reverted migrations and their data; back up the database, then repeat with --yes"
        )));
    }
    if let Some(pg) = postgres(ctx, false)? {
        return match cmd {
            MigrateCommand::Status => status(ctx, pg.migration_status().await.map_err(pg_error)?),
            MigrateCommand::Up { to } => {
                let applied = pg.migrate_up(to).await.map_err(pg_error)?;
                let version = current(&pg.migration_status().await.map_err(pg_error)?);
                report(ctx, "applied", &applied, version)
            }
            MigrateCommand::Down { to, .. } => {
                let reverted = pg.migrate_down(to).await.map_err(pg_error)?;
                let version = current(&pg.migration_status().await.map_err(pg_error)?);
                report(ctx, "reverted", &reverted, version)
            }
        };
    }
    match cmd {
        MigrateCommand::Status => {
            ctx.require_db()?;
            status(ctx, ctx.sqlite(false)?.migration_status()?)
        }
        MigrateCommand::Up { to } => {
            let store = checked(ctx, true)?;
            let applied = store.migrate_up(to)?;
            let version = current(&store.migration_status()?);
            report(ctx, "applied", &applied, version)
        }
        MigrateCommand::Down { to, .. } => {
            ctx.require_db()?;
            let store = checked(ctx, false)?;
            let reverted = store.migrate_down(to)?;
            let version = current(&store.migration_status()?);
            report(ctx, "reverted", &reverted, version)
        }
    }
}

/// The bare SQLite store (`create`: a missing or empty file may become a new queue), its
/// every page checked with `quick_check` before a migration writes to it: a damaged file is
/// refused (exit 4), not reported ready.
///
/// # Errors
/// The store's error; `Corrupt` for a damaged file.
fn checked(ctx: &Ctx, create: bool) -> CliResult<prismq_storage_sqlite::SqliteStore> {
    let store = ctx.sqlite(create)?;
    store.quick_check()?;
    Ok(store)
}

fn status(ctx: &Ctx, rows: Vec<MigrationStatus>) -> CliResult {
    if ctx.json() {
        return render::json(&json!({
            "current": current(&rows),
            "migrations": rows,
        }));
    }
    let mut t = Table::new(&["VERSION", "NAME", "APPLIED"]).right_align(&[0]);
    for m in &rows {
        t.row(vec![
            m.version.to_string(),
            m.name.clone(),
            m.applied_at
                .and_then(|ms| Timestamp::from_millisecond(ms).ok())
                .map_or_else(|| "pending".to_owned(), render::time),
        ]);
    }
    render::print(&t.render())
}

fn current(rows: &[MigrationStatus]) -> i64 {
    rows.iter()
        .filter(|m| m.applied_at.is_some())
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

fn report(ctx: &Ctx, verb: &str, versions: &[i64], current: i64) -> CliResult {
    if ctx.json() {
        return render::json(&json!({ verb: versions, "current": current }));
    }
    let text = if versions.is_empty() {
        format!("nothing to do; schema version {current}\n")
    } else {
        let list: Vec<String> = versions.iter().map(ToString::to_string).collect();
        format!(
            "{verb} migration{} {}; schema version {current}\n",
            if versions.len() == 1 { "" } else { "s" },
            list.join(", ")
        )
    };
    render::print(&text)
}
