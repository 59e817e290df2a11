//! `prismq config show`: the effective configuration with each value's origin, secrets
//! redacted (the app builds it; this only prints it).

use crate::args::ConfigCommand;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::render;

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
