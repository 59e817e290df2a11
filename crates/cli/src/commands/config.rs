//! `prismq config show`: the effective configuration with each value's origin, secrets
//! redacted (the app builds it; this only prints it).

use clap::Subcommand;

use crate::context::Ctx;
use crate::exit::CliResult;
use crate::render;

/// `prismq config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every setting's effective value and where it came from (secrets redacted).
    Show,
}

/// Runs a `config` subcommand.
///
/// # Errors
/// stdout is closed.
pub fn run(ctx: &Ctx, cmd: ConfigCommand) -> CliResult {
    match cmd {
        ConfigCommand::Show => {
            let effective = ctx.config.effective();
            if ctx.json() {
                render::json(&effective)
            } else {
                render::print(&effective.to_string())
            }
        }
    }
}
