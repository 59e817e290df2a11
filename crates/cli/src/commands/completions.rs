//! `prismq completions SHELL`: the completion script on stdout.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::{Cli, ShellArg};
use crate::exit::CliResult;

/// Prints the script for `shell`.
///
/// # Errors
/// stdout is closed.
pub fn run(shell: ShellArg) -> CliResult {
    let shell = match shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
        ShellArg::Powershell => Shell::PowerShell,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "prismq", &mut buf);
    crate::render::print(&String::from_utf8_lossy(&buf))
}
