//! One module per command. Each parses nothing (clap did), calls the app, and renders:
//! a table or short sentences for people, stable JSON with `--json`.

pub mod collect;
pub mod completions;
pub mod config;
pub mod dlq;
pub mod enqueue;
pub mod forms;
pub mod migrate;
pub mod results;
pub mod schedule;
pub mod stats;
pub mod tasks;
pub mod types;
pub mod work;
pub mod workers;

pub mod backup;
pub mod db;
pub mod import;
pub mod keys;
pub mod maintenance;
pub mod serve;
pub mod validate;
pub mod workers_prune;

mod ops_error;
mod parse;

use clap::CommandFactory;

use crate::args::{Cli, Command};
use crate::context::Ctx;
use crate::exit::{CliResult, Exit};

/// Runs `command`, returning the exit code of a command that finished.
///
/// # Errors
/// The command's error.
pub async fn run(ctx: &Ctx, command: Command) -> CliResult<Exit> {
    match command {
        Command::Collect(a) => return collect::run(ctx, a).await,
        Command::Init => migrate::init(ctx).await?,
        Command::Migrate(m) => migrate::run(ctx, m).await?,
        Command::Enqueue(a) => enqueue::run(ctx, a).await?,
        Command::Work(a) => return work::run(ctx, a).await,
        Command::Tasks(t) => tasks::run(ctx, t).await?,
        Command::Dlq(d) => dlq::run(ctx, d).await?,
        Command::Results(r) => results::run(ctx, r).await?,
        Command::Workers(mut a) => match a.action.take() {
            Some(w) => workers_prune::run(ctx, w).await?,
            None => workers::run(ctx, a).await?,
        },
        Command::Stats(a) => return stats::run(ctx, a).await,
        Command::Schedule(s) => schedule::run(ctx, s).await?,
        Command::Config(c) => config::run(ctx, c)?,
        Command::Completions(a) => completions::run(a.shell, &mut Cli::command())?,
        Command::Validate(a) => return validate::run(&ctx.global, &a),
        Command::Maintenance(m) => maintenance::run(ctx, m).await?,
        Command::Backup(a) => backup::run(ctx, a).await?,
        Command::Db(d) => db::run(ctx, d).await?,
        Command::Import(i) => import::run(ctx, i)?,
        Command::Serve(a) => serve::run(ctx, a).await?,
        Command::Keys(k) => keys::run(ctx, k).await?,
        Command::Types => types::run(ctx)?,
    }
    Ok(Exit::Ok)
}
