//! `prismq init` and `prismq migrate status|up|down`, on the bare SQLite store (the app
//! always migrates on open, which `status` and `down` must not do).

use serde_json::json;

use prismq_domain::Timestamp;

use crate::args::MigrateCommand;
use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::render::{self, Table};

/// `prismq init`: creates the database if needed, applies every migration, prints its path.
///
/// # Errors
/// The store's error.
pub fn init(ctx: &Ctx) -> CliResult {
    let path = ctx.db_path()?;
    let existed = path.exists();
    let store = ctx.sqlite(true)?;
    let version = current(&store.migration_status()?);
    if ctx.json() {
        return render::json(&json!({
            "path": path,
            "created": !existed,
            "schema_version": version,
        }));
    }
    let verb = if existed { "ready" } else { "created" };
    render::print(&format!(
        "database {verb} at {} (schema version {version})\n",
        path.display()
    ))
}

/// Runs a `migrate` subcommand.
///
/// # Errors
/// The store's error; `down` without `--yes` (exit 2); no database for `status` (exit 3).
pub fn run(ctx: &Ctx, cmd: MigrateCommand) -> CliResult {
    match cmd {
        MigrateCommand::Status => {
            ctx.require_db()?;
            let rows = ctx.sqlite(false)?.migration_status()?;
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
        MigrateCommand::Up { to } => {
            let store = ctx.sqlite(false)?;
            let applied = store.migrate_up(to)?;
            let version = current(&store.migration_status()?);
            report(ctx, "applied", &applied, version)
        }
        MigrateCommand::Down { to, yes } => {
            if !yes {
                return Err(CliError::usage(format!(
                    "migrating down to version {to} deletes the tables of the reverted migrations and their data; back up the database, then repeat with --yes"
                )));
            }
            ctx.require_db()?;
            let store = ctx.sqlite(false)?;
            let reverted = store.migrate_down(to)?;
            let version = current(&store.migration_status()?);
            report(ctx, "reverted", &reverted, version)
        }
    }
}

fn current(rows: &[prismq_storage_sqlite::MigrationStatus]) -> i64 {
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
