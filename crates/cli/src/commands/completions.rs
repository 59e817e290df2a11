//! `prismq completions SHELL`: the completion script on stdout.

use clap::{Args, ValueEnum};
use clap_complete::Shell;

use crate::exit::CliResult;

/// `prismq completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: ShellArg,
}

/// Shells with completion scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// PowerShell.
    Powershell,
}

/// Prints the script for `shell` that completes `cli` (the whole command line, which
/// `args` declares).
///
/// # Errors
/// stdout is closed.
pub fn run(shell: ShellArg, cli: &mut clap::Command) -> CliResult {
    let shell = match shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
        ShellArg::Powershell => Shell::PowerShell,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, cli, "prismq", &mut buf);
    crate::render::print(&String::from_utf8_lossy(&buf))
}
