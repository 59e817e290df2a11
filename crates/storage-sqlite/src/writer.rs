//! The store's writer thread: one long-lived thread per store that runs the writes the async
//! ports queue (claims, starts, completions), in order and in one transaction per turn (group
//! commit), so an async call costs a wake-up of the same warm thread instead of a trip to
//! tokio's blocking pool, which hands each call to whichever of its threads wakes first.
//!
//! The thread holds the store only weakly: it ends when the store is dropped. It takes the
//! same writer lock as the blocking methods, so writes from both keep one order per process.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock, Weak};

use crate::combine::Ran;
use crate::{connection, Inner, SqliteStore};

/// Wakes the thread; started on first use, so a store that only serves blocking calls (the
/// CLI's commands) never starts one.
#[derive(Debug, Default)]
pub(crate) struct WriterThread {
    signal: OnceLock<Arc<Signal>>,
}

/// Whether there is work (or the store is gone), and the condition the thread sleeps on.
#[derive(Debug, Default)]
struct Signal {
    state: parking_lot::Mutex<State>,
    wake: parking_lot::Condvar,
}

#[derive(Debug, Default)]
struct State {
    pending: bool,
    stop: bool,
}

impl Signal {
    fn notify(&self) {
        let mut s = self.state.lock();
        if !s.pending {
            s.pending = true;
            self.wake.notify_one();
        }
    }

    /// Waits for work; false once the store is gone.
    fn wait(&self) -> bool {
        let mut s = self.state.lock();
        while !s.pending && !s.stop {
            self.wake.wait(&mut s);
        }
        s.pending = false;
        !s.stop
    }
}

impl Drop for WriterThread {
    /// Tells the thread to end. Not joined: the store may be dropped on that very thread.
    fn drop(&mut self) {
        if let Some(signal) = self.signal.get() {
            signal.state.lock().stop = true;
            signal.wake.notify_one();
        }
    }
}

impl SqliteStore {
    /// Wakes the writer thread, starting it first if needed. When the thread cannot be
    /// started, the waiting writes are run here, as a blocking caller would.
    pub(crate) fn wake_writer(&self) {
        let signal = self.inner.thread.signal.get_or_init(|| {
            let signal = Arc::new(Signal::default());
            let weak = Arc::downgrade(&self.inner);
            let theirs = signal.clone();
            let started = std::thread::Builder::new()
                .name("prismq-writer".into())
                .spawn(move || run(&weak, &theirs));
            if let Err(e) = started {
                tracing::warn!(error = %e, "no writer thread; async writes run on the caller's thread");
                signal.state.lock().stop = true;
            }
            signal
        });
        if signal.state.lock().stop {
            self.drain_waiting();
            return;
        }
        signal.notify();
    }

    /// Wakes the writer thread if it was started (writes queued again after a busy turn).
    pub(crate) fn wake_writer_if_running(&self) {
        if let Some(signal) = self.inner.thread.signal.get() {
            signal.notify();
        }
    }

    /// Runs waiting writes until none is left, backing off while the database is busy.
    fn drain_waiting(&self) {
        let mut attempt = 0;
        loop {
            let ran = {
                let mut slot = self.inner.writer.lock();
                self.run_waiting(&mut slot)
            };
            match ran {
                Ran::Nothing => return,
                Ran::Batch => attempt = 0,
                Ran::Busy => {
                    std::thread::sleep(connection::busy_backoff(attempt));
                    attempt += 1;
                }
            }
        }
    }
}

fn run(store: &Weak<Inner>, signal: &Signal) {
    while signal.wait() {
        let Some(inner) = store.upgrade() else { return };
        let store = SqliteStore { inner };
        // A panic outside any write (a write's own panic goes back to its caller) drops the
        // batch, whose writes then answer `Unavailable`; the thread carries on.
        if std::panic::catch_unwind(AssertUnwindSafe(|| store.drain_waiting())).is_err() {
            tracing::error!(
                "the writer thread recovered from a panic; the batch it ran was not committed"
            );
        }
    }
}
