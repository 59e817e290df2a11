//! The store's writer thread: one long-lived thread per store that runs the writes the async
//! ports queue (claims, starts, completions that found the writer taken or the database
//! locked), in order and in one transaction per turn (group commit), so such a call costs a
//! wake-up of the same warm thread instead of a trip to tokio's blocking pool, which hands
//! each call to whichever of its threads wakes first.
//!
//! The thread holds the store only weakly: it ends when the store is dropped. It takes the
//! same writer lock as the blocking methods, so writes from both keep one order per process.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock, Weak};

use crate::combine::{Ran, Waiter};
use crate::{Inner, SqliteStore};

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
        self.take_turns(Waiter::Parked, |ran| {
            (ran == Some(Ran::Nothing)).then_some(())
        });
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

#[cfg(test)]
mod tests {
    use crate::combine::tests::{store, values};
    use crate::error::map_err;
    use crate::SqliteStore;
    use prismq_domain::PortError;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// An async write of `v` to the scratch table; `"bad"` fails after writing, `"boom"`
    /// panics after writing. Returns the writer's thread name.
    async fn insert(s: &SqliteStore, v: &'static str) -> Result<String, PortError> {
        s.write_shared_async(move |tx| {
            tx.execute("INSERT INTO scratch (v) VALUES (?1)", [v])
                .map_err(map_err)?;
            let name = std::thread::current().name().unwrap_or("").to_owned();
            match v {
                "bad" => Err(PortError::NotFound("bad".into())),
                "boom" => panic!("boom"),
                _ => Ok(name),
            }
        })
        .await
    }

    /// Writes that find the writer taken wait for the writer thread, which runs them in one
    /// transaction: each caller gets its own outcome, a failed or panicking write is undone
    /// alone, and a panic reaches its caller as `Unavailable` (as a panicked blocking task
    /// did).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_async_writes_run_on_the_writer_thread_each_with_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(5));
        let held = s.inner.writer.lock();
        let calls: Vec<_> = ["a", "bad", "boom", "d"]
            .into_iter()
            .map(|v| {
                let s = s.clone();
                tokio::spawn(async move { insert(&s, v).await })
            })
            .collect();
        let until = Instant::now() + Duration::from_secs(10);
        while s.inner.waiting.len() < 4 {
            assert!(Instant::now() < until, "the writes never queued");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(held);
        let mut out = Vec::new();
        for c in calls {
            out.push(c.await.unwrap());
        }
        assert_eq!(out[0].as_deref(), Ok("prismq-writer"));
        assert_eq!(out[1], Err(PortError::NotFound("bad".into())));
        assert!(
            matches!(&out[2], Err(PortError::Unavailable(m)) if m.contains("panicked")),
            "{:?}",
            out[2]
        );
        assert_eq!(out[3].as_deref(), Ok("prismq-writer"));
        assert_eq!(values(&s), ["a", "d"]);
        assert!(s.inner.waiting.len() == 0);
    }

    /// With the writer free, the write runs at once on the caller's thread (no hand-off).
    #[tokio::test]
    async fn an_uncontended_async_write_runs_on_the_callers_thread() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(5));
        let me = std::thread::current().name().unwrap_or("").to_owned();
        assert_eq!(insert(&s, "x").await, Ok(me));
        assert_eq!(values(&s), ["x"]);
        assert!(
            s.inner.thread.signal.get().is_none(),
            "no writer thread was needed"
        );
    }

    /// Another connection holds SQLite's write lock (another process, in effect): the async
    /// write never waits for it on the runtime's thread (a ticker on the same single-thread
    /// runtime keeps ticking), commits once the lock is let go, and when the lock outlasts
    /// the busy budget the caller gets `Busy`, with nothing written and nothing left queued.
    #[tokio::test]
    async fn a_locked_database_is_waited_for_off_the_runtime_and_answers_busy_past_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_millis(1500));
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let path = dir.path().join("q.db");
        let hold = |ms: u64| {
            let path = path.clone();
            std::thread::spawn(move || {
                let other = rusqlite::Connection::open(path).unwrap();
                other.execute_batch("BEGIN IMMEDIATE").unwrap();
                std::thread::sleep(Duration::from_millis(ms));
                other.execute_batch("COMMIT").unwrap();
            })
        };
        let locked = hold(400);
        std::thread::sleep(Duration::from_millis(50));
        let before = ticks.load(Ordering::Relaxed);
        assert_eq!(insert(&s, "p").await.as_deref(), Ok("prismq-writer"));
        assert!(
            ticks.load(Ordering::Relaxed) >= before + 10,
            "the runtime's thread kept running while the write waited"
        );
        locked.join().unwrap();
        assert_eq!(values(&s), ["p"]);

        let locked = hold(4000);
        std::thread::sleep(Duration::from_millis(50));
        let e = insert(&s, "q").await.unwrap_err();
        assert!(matches!(e, PortError::Busy(_)), "{e:?}");
        assert!(s.inner.waiting.len() == 0, "nothing left to run later");
        locked.join().unwrap();
        assert_eq!(values(&s), ["p"], "nothing of the refused write");
        ticker.abort();
    }

    /// The thread holds the store only while it runs a batch: once the last clone is
    /// dropped, the store (and its connections) goes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_thread_does_not_keep_the_store_alive() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(5));
        let held = s.inner.writer.lock();
        let call = {
            let s = s.clone();
            tokio::spawn(async move { insert(&s, "z").await })
        };
        while s.inner.waiting.len() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(held);
        call.await.unwrap().unwrap();
        let weak = Arc::downgrade(&s.inner);
        drop(s);
        let until = Instant::now() + Duration::from_secs(5);
        while weak.upgrade().is_some() {
            assert!(Instant::now() < until, "the store outlived its last clone");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
