//! Running yt-dlp: a subprocess started without a shell, stdout read up to a cap, stderr
//! drained while it runs (so a chatty child never stalls) and kept up to a cap, and a time
//! limit or cancellation that kills and reaps the child.

use prismq_domain::CancelSignal;
use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::task::JoinHandle;

use crate::youtube::source::SourceError;

/// The most stdout kept (a 500-entry flat listing is well under 2 MB).
pub const MAX_STDOUT_BYTES: usize = 64 * 1024 * 1024;
/// The most stderr kept; the rest is read and dropped.
pub const MAX_STDERR_BYTES: usize = 64 * 1024;

/// What a finished run left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// The exit code; `None` when a signal ended the child.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error, at most [`MAX_STDERR_BYTES`].
    pub stderr: String,
}

/// Reads `reader` to its end, keeping at most `cap` bytes; `true` when it had more.
async fn drain<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut overflow = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                overflow |= n > room;
            }
        }
    }
    (kept, overflow)
}

/// Runs `program args…`, never through a shell, within `timeout`.
///
/// # Errors
/// `ToolPermanent` when the program cannot be started, `Timeout` (child killed and reaped)
/// past `timeout`, `Cancelled` (likewise) when `cancel` is raised, `TooLarge` when stdout
/// exceeds [`MAX_STDOUT_BYTES`].
pub async fn run(
    program: &Path,
    args: &[OsString],
    timeout: Duration,
    cancel: &CancelSignal,
) -> Result<RunOutput, SourceError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            SourceError::ToolPermanent(format!(
                "cannot start {}: {e}; install yt-dlp or set youtube.ytdlp_path to its location",
                program.display()
            ))
        })?;
    let stdout = child
        .stdout
        .take()
        .map(|s| tokio::spawn(drain(s, MAX_STDOUT_BYTES)));
    let stderr = child
        .stderr
        .take()
        .map(|s| tokio::spawn(drain(s, MAX_STDERR_BYTES)));
    let deadline = tokio::time::Instant::now() + timeout;
    let outcome = tokio::select! {
        status = child.wait() => Ok(status),
        () = tokio::time::sleep_until(deadline) => Err(SourceError::Timeout),
        () = cancel.cancelled() => Err(SourceError::Cancelled),
    };
    let mut readers = [stdout, stderr];
    let status = match outcome {
        Ok(status) => {
            status.map_err(|e| SourceError::ToolRetryable(format!("waiting for yt-dlp: {e}")))?
        }
        Err(e) => {
            // kill() sends SIGKILL and waits, so the child is reaped: no zombie is left.
            let _ = child.kill().await;
            // A grandchild could still hold the pipes open: do not wait for the readers.
            readers.iter().flatten().for_each(JoinHandle::abort);
            return Err(e);
        }
    };
    // The child has exited, but a background process it left may still hold the pipes
    // open: the readers get what is left of the time limit, no more.
    let read_all = async {
        let mut outs = Vec::with_capacity(2);
        for h in readers.iter_mut() {
            outs.push(match h {
                Some(h) => h.await.unwrap_or_default(),
                None => (Vec::new(), false),
            });
        }
        outs
    };
    let read = tokio::select! {
        outs = read_all => Ok(outs),
        () = tokio::time::sleep_until(deadline) => Err(SourceError::Timeout),
        () = cancel.cancelled() => Err(SourceError::Cancelled),
    };
    let mut outs = match read {
        Ok(outs) => outs.into_iter(),
        Err(e) => {
            readers.iter().flatten().for_each(JoinHandle::abort);
            return Err(e);
        }
    };
    let (out, out_overflow) = outs.next().unwrap_or_default();
    let (err, _) = outs.next().unwrap_or_default();
    if out_overflow {
        return Err(SourceError::TooLarge {
            limit: MAX_STDOUT_BYTES as u64,
        });
    }
    Ok(RunOutput {
        code: status.code(),
        stdout: out,
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}
