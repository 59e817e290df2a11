//! `prismq init` and `prismq migrate status|up|down`, through the configured engine's
//! schema administration port (a SQLite file, or the PostgreSQL server `database.url` names),
//! which never migrates on its own (the app always migrates on open, which `status` and
//! `down` must not do).

use clap::Subcommand;
use serde_json::json;

use prismq_domain::ports::StorageProblem;
use prismq_domain::schema::MigrationStatus;
use prismq_domain::Timestamp;

use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
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

/// `prismq init`: creates the database (a SQLite file, or the schema's tables on PostgreSQL)
/// if needed, applies every migration, prints where it is.
///
/// # Errors
/// The store's error.
pub async fn init(ctx: &Ctx) -> CliResult {
    let admin = prismq_app::storage::schema_admin(&ctx.config)?;
    // Created when no migration had been applied: a new or empty database (another
    // application's database is refused when the store opens).
    let before = match admin.migration_status().await {
        Ok(rows) => current(&rows),
        Err(e) if e.problem() == StorageProblem::NotFound => 0,
        Err(e) => return Err(e.into()),
    };
    admin.migrate_up(None).await?;
    let rows = admin.migration_status().await?;
    let created = before == 0;
    let version = current(&rows);
    let at = prismq_app::storage::location(&ctx.config)?;
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
    let admin = prismq_app::storage::schema_admin(&ctx.config)?;
    match cmd {
        MigrateCommand::Status => status(ctx, admin.migration_status().await?),
        MigrateCommand::Up { to } => {
            let applied = admin.migrate_up(to).await?;
            let version = current(&admin.migration_status().await?);
            report(ctx, "applied", &applied, version)
        }
        MigrateCommand::Down { to, .. } => {
            let reverted = admin.migrate_down(to).await?;
            let version = current(&admin.migration_status().await?);
            report(ctx, "reverted", &reverted, version)
        }
    }
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
