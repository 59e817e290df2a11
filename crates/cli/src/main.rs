//! `prismq`: parses the command line, loads the configuration, installs the log subscriber,
//! runs one command module and turns its error into one line on stderr and an exit code.
//! No business logic lives in this crate: the commands call `prismq-app` and render.

mod args;
mod commands;
mod context;
mod exit;
mod files;
mod global_args;
mod progress;
mod render;
mod signals;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use prismq_app::config::{LoggingConfig, Origin};

use crate::args::{Cli, Command};
use crate::context::Ctx;
use crate::exit::{CliError, Exit};

/// mimalloc instead of the system allocator: a worker's loops allocate on one thread and
/// free on another, which glibc's allocator serialises on its arena locks (measured in
/// `docs/performance.md`, item 11 of issue 20's changes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = use_color(cli.global.no_color);
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(e) => {
            report(&e, color);
            e.exit.into()
        }
    }
}

fn run(cli: Cli) -> Result<Exit, CliError> {
    // Completions need neither configuration nor a database.
    if let Command::Completions(a) = &cli.command {
        commands::completions::run(a.shell, &mut Cli::command())?;
        return Ok(Exit::Ok);
    }
    // Validate reports a configuration that does not load as its check 1.
    if let Command::Validate(a) = &cli.command {
        return commands::validate::run(&cli.global, a);
    }
    let ctx = Ctx::load(cli.global)?;
    install_logging(&ctx, &cli.command);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Work(a) = &cli.command {
        // One thread a loop, up to the cores (a bad --concurrency is refused later, with
        // its message).
        let loops = a.concurrency.unwrap_or(ctx.config.worker.concurrency);
        builder.worker_threads(prismq_app::runtime::async_threads(loops));
    }
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        signals::survive_file_size_limit();
        commands::run(&ctx, cli.command).await
    })
}

/// Installs the subscriber. Commands other than `work` log warnings only, unless a level was
/// configured (file, environment, `-v`/`-q`) or `RUST_LOG` is set; so does `work` while it
/// draws its live status line.
fn install_logging(ctx: &Ctx, command: &Command) {
    let mut logging: LoggingConfig = ctx.config.logging.clone();
    let configured = ctx.config.origin("logging.level") != Origin::Default
        || std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
    let chatty = matches!(command, Command::Work(_) | Command::Serve(_)) && !ctx.interactive();
    if !configured && !chatty {
        logging.level = "warn".to_owned();
    }
    if let Err(e) = prismq_app::logging::init(&logging, !ctx.global.no_color) {
        eprintln!("warning: {e}");
    }
}

fn use_color(no_color_flag: bool) -> bool {
    !no_color_flag
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stderr().is_terminal()
}

fn report(e: &CliError, color: bool) {
    for (i, line) in e.lines().into_iter().enumerate() {
        if i == 0 && color {
            if let Some(rest) = line.strip_prefix("error:") {
                eprintln!("\x1b[1;31merror:\x1b[0m{rest}");
                continue;
            }
        }
        eprintln!("{line}");
    }
}
