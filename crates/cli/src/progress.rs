//! Progress bars and the live status line (indicatif, on stderr), drawn only on a terminal
//! and never with `--json`, `-q` or `-v`; elsewhere they are hidden and cost nothing.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::context::Ctx;

/// A bar counting to `len`, labelled `what`.
pub fn bar(ctx: &Ctx, len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target(ctx));
    let style = ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} ({per_sec}, {eta})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb
}

/// A bar counting bytes to `len` (a file read whose size is known), labelled `what`.
pub fn bytes(ctx: &Ctx, len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target(ctx));
    let style = ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb
}

/// A running count of `unit` with no known total (a read from a pipe), labelled `what`.
pub fn counter(ctx: &Ctx, what: &str, unit: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target(ctx));
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} {{msg:>12}} {{human_pos}} {unit} ({{elapsed}})"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_spinner());
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb
}

/// A spinner with a message (a status line), ticking on its own.
pub fn status(ctx: &Ctx, message: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target(ctx));
    let style = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    pb.set_style(style);
    pb.set_message(message.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

fn target(ctx: &Ctx) -> ProgressDrawTarget {
    if ctx.interactive() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}
