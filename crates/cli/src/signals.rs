//! Shutdown signals: the first SIGINT or SIGTERM (Ctrl-C or Ctrl-Break on Windows) asks
//! for a graceful stop by cancelling a token; a second one exits at once with code 130 (the
//! leases of unfinished tasks then lapse and other workers take them over).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::exit::Exit;

/// A token cancelled by the first signal, and whether a signal arrived.
#[derive(Debug, Clone)]
pub struct Shutdown {
    /// Cancelled on the first signal.
    pub token: CancellationToken,
    signalled: Arc<AtomicBool>,
}

impl Shutdown {
    /// True once a signal arrived.
    pub fn signalled(&self) -> bool {
        self.signalled.load(Ordering::SeqCst)
    }
}

/// Starts listening. `what` completes "stopping: …" in the message printed on the first
/// signal. Must be called inside the tokio runtime.
pub fn listen(what: &'static str) -> Shutdown {
    let token = CancellationToken::new();
    let signalled = Arc::new(AtomicBool::new(false));
    let shutdown = Shutdown {
        token: token.clone(),
        signalled: signalled.clone(),
    };
    tokio::spawn(async move {
        let Ok(mut signals) = Signals::new() else {
            return;
        };
        if signals.next().await.is_err() {
            return;
        }
        signalled.store(true, Ordering::SeqCst);
        eprintln!("\nstopping: {what}; send the signal again (Ctrl-C) to exit at once");
        token.cancel();
        if signals.next().await.is_ok() {
            eprintln!(
                "exiting at once; unfinished tasks are claimed again when their leases lapse"
            );
            // exit() runs no destructor: the plugins stop what would outlive the process
            // (external tools in their own process groups, out of the signal's reach).
            prismq_app::abort_all();
            std::process::exit(i32::from(Exit::Interrupted.code()));
        }
    });
    shutdown
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> std::io::Result<()> {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
        Ok(())
    }
}

#[cfg(windows)]
struct Signals {
    brk: tokio::signal::windows::CtrlBreak,
}

#[cfg(windows)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            brk: tokio::signal::windows::ctrl_break()?,
        })
    }

    async fn next(&mut self) -> std::io::Result<()> {
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = self.brk.recv() => Ok(()),
        }
    }
}

#[cfg(not(any(unix, windows)))]
struct Signals;

#[cfg(not(any(unix, windows)))]
impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals)
    }

    async fn next(&mut self) -> std::io::Result<()> {
        tokio::signal::ctrl_c().await
    }
}

/// Makes a write past the file size limit (`ulimit -f`, RLIMIT_FSIZE) fail with EFBIG, which
/// the store reports like a full disk, instead of SIGXFSZ killing the process silently in
/// the middle of a transaction. A handler that does nothing is installed (tokio keeps it
/// for the life of the process). Must be called inside the tokio runtime.
pub fn survive_file_size_limit() {
    #[cfg(unix)]
    {
        // SIGXFSZ is 25 on Linux (x86, ARM, RISC-V), macOS and the BSDs.
        const SIGXFSZ: i32 = 25;
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut s) = signal(SignalKind::from_raw(SIGXFSZ)) {
            tokio::spawn(async move { while s.recv().await.is_some() {} });
        }
    }
}
