//! Running yt-dlp: a subprocess started without a shell, stdout read up to a cap, stderr
//! drained while it runs (so a chatty child never stalls) and kept up to a cap, and a time
//! limit or cancellation that kills and reaps the child.
//!
//! On Unix the child leads a process group of its own, and the time limit, cancellation and
//! dropping the [`run`] future mid-run all send SIGKILL to that whole group, so processes
//! yt-dlp started itself (ffmpeg, a wrapper script's subprocess) go with it; the direct child
//! is then reaped (by [`run`], or by tokio's orphan reaper when the future was dropped).
//! Escaping it: a process that moved itself to another group or session (`setsid`), one
//! that closed its output and outlived a run that ended normally (the group is not
//! signalled then), and the whole group when PrismQ is killed outright (SIGKILL, SIGHUP).
//! An exit that skips destructors on purpose calls [`kill_running_groups`] first, as the
//! CLI's second Ctrl-C does. Being its own group, the child no longer receives a
//! terminal's Ctrl-C directly; the cancellation that follows it kills the group.
//!
//! On Windows only the direct child is killed: a process yt-dlp started survives it. A Job
//! object with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` would be the fix; it is not done.

use prismq_domain::CancelSignal;
use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
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

/// The groups of the runs in flight in this process, so an exit that skips destructors (a
/// second Ctrl-C) can still take them down: see [`kill_running_groups`].
#[cfg(unix)]
static LIVE: std::sync::Mutex<std::collections::BTreeSet<i32>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

#[cfg(unix)]
fn live() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<i32>> {
    // A panic while holding this lock leaves the set itself intact.
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Kills the process group of every yt-dlp run in flight in this process (SIGKILL, Unix).
/// For an exit that does not unwind, such as `std::process::exit` on a second Ctrl-C:
/// yt-dlp leads its own group, so the terminal's signal no longer reaches it, and the
/// guards that kill it on drop never run. Does nothing on other platforms.
pub fn kill_running_groups() {
    #[cfg(unix)]
    for id in std::mem::take(&mut *live()) {
        if let Some(pgid) = rustix::process::Pid::from_raw(id) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

/// The child's process group, sent SIGKILL when this guard is dropped while armed: a
/// [`run`] future dropped mid-run (the runtime cancelling its handler) still takes every
/// process yt-dlp started with it. A no-op off Unix.
#[derive(Debug)]
struct Group {
    /// The group's id (the child's pid); `None` once killed or disarmed.
    #[cfg(unix)]
    pgid: Option<rustix::process::Pid>,
}

impl Group {
    /// Makes the child that `command` starts the leader of a new process group.
    fn isolate(command: &mut Command) -> &mut Command {
        #[cfg(unix)]
        command.process_group(0);
        command
    }

    /// Guards the group led by `child`, which [`Group::isolate`] started.
    fn of(child: &Child) -> Self {
        #[cfg(not(unix))]
        let _ = child;
        #[cfg(unix)]
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            // Never 1: kill(-1) would signal every process this user may signal.
            .filter(|&id| id > 1)
            .and_then(rustix::process::Pid::from_raw);
        #[cfg(unix)]
        if let Some(p) = pgid {
            live().insert(p.as_raw_nonzero().get());
        }
        Group {
            #[cfg(unix)]
            pgid,
        }
    }

    /// Sends SIGKILL to every process in the group (once; later calls do nothing).
    ///
    /// Safe from pid reuse while the leader is not yet reaped, or while any process is still
    /// in the group: the system does not hand out an id its live group still uses.
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pgid) = self.pgid.take() {
            live().remove(&pgid.as_raw_nonzero().get());
            // ESRCH (the group is already gone) is the expected outcome, not an error.
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }

    /// Leaves the group alone from now on.
    fn disarm(&mut self) {
        #[cfg(unix)]
        if let Some(pgid) = self.pgid.take() {
            live().remove(&pgid.as_raw_nonzero().get());
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
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
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = Group::isolate(&mut command).spawn().map_err(|e| {
        SourceError::ToolPermanent(format!(
            "cannot start {}: {e}; install yt-dlp or set youtube.ytdlp_path to its location",
            program.display()
        ))
    })?;
    // Declared after `child`, so dropped before it: the group dies while its leader is
    // still unreaped, then the child's own kill_on_drop hands it to tokio's orphan reaper.
    let mut group = Group::of(&child);
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
            // The whole group first, while the unreaped leader still holds its id; then
            // kill() (SIGKILL again, harmless) waits, so the child is reaped: no zombie.
            group.kill();
            let _ = child.kill().await;
            // A process outside the group could still hold the pipes open: do not wait.
            readers.iter().flatten().for_each(JoinHandle::abort);
            return Err(e);
        }
    };
    // The child has exited, but a background process it left may still hold the pipes
    // open: the readers get what is left of the time limit, no more. The group stays
    // armed meanwhile: such a process is still in it, which keeps the id from reuse.
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
            group.kill();
            readers.iter().flatten().for_each(JoinHandle::abort);
            return Err(e);
        }
    };
    // Every writer closed the pipes. The group is likely empty now and its id free for
    // reuse, so it is not signalled after a normal end: a background process that closed
    // its output is left running.
    group.disarm();
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
