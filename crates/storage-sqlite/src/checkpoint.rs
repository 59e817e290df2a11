//! WAL checkpoints off the request path: a background thread per store copies the WAL back
//! into the database file every few dozen writes, so no claim or completion pays for it.

use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{connection, SqliteOptions};

/// A checkpoint after this many committed writes: a claim or a completion dirties about
/// five pages, so the WAL is checkpointed every few hundred frames, before SQLite's own
/// threshold (the writer's autocheckpoint, the backstop).
const EVERY_WRITES: u64 = 64;
/// WAL frames (pages) past which a checkpoint waits for readers and writers and truncates
/// the WAL instead of copying what it can (~8 MB with 4 KiB pages).
const TRUNCATE_FRAMES: i64 = 2_000;
/// How long a TRUNCATE checkpoint waits for readers and writers to step aside; writers wait
/// that long at most behind it.
const TRUNCATE_WAIT: Duration = Duration::from_millis(100);
/// WAL frames (~32 MB) past which the background thread is losing the race (a loaded
/// machine, where it gets little CPU): the writer itself truncates the WAL before its next
/// transaction, with up to half its busy budget, so writers cannot outrun the checkpoints.
const WRITER_TRUNCATE_FRAMES: i64 = 8_000;
/// The same limit in bytes of the WAL file, which the writer looks at itself every
/// [`WRITER_LOOK_EVERY`] writes: the background thread's count can be a whole failed
/// truncation old (hundreds of milliseconds of writes), and two processes' checkpoints
/// contending leave it with no count at all.
const WRITER_TRUNCATE_BYTES: u64 = 32 << 20;
/// How often, in writes, the writer looks at the WAL file's length (one `stat`).
const WRITER_LOOK_EVERY: u64 = 16;

/// The store's checkpointer: counts commits and wakes its thread every [`EVERY_WRITES`].
///
/// A passive checkpoint never waits, so under a steady stream of writers from several
/// processes it may never find the moment when the whole WAL is copied and nobody reads it,
/// which is when the next writer starts the WAL over: the WAL would grow without bound
/// (SQLite's "checkpoint starvation"; a disk-full test found it). Past [`TRUNCATE_FRAMES`]
/// the checkpoint escalates to TRUNCATE, which waits (at most [`TRUNCATE_WAIT`]) for
/// writers and readers to step aside, copies everything and truncates the file, so the WAL
/// stays bounded and its disk space is given back.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    writes: AtomicU64,
    /// WAL frames the last checkpoint saw.
    frames: Arc<AtomicI64>,
    /// `None` when the thread could not be started (SQLite's own autocheckpoint remains).
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; it opens its own connection to `options.path` when first woken.
    pub(crate) fn spawn(options: &SqliteOptions) -> Self {
        let (wake, rx) = sync_channel(1);
        let options = options.clone();
        let frames = Arc::new(AtomicI64::new(0));
        let seen = frames.clone();
        let thread = std::thread::Builder::new()
            .name("prismq-checkpoint".into())
            .spawn(move || run(&options, &rx, &seen))
            .map_err(|e| tracing::warn!(error = %e, "no checkpoint thread; SQLite's own autocheckpoint remains"))
            .ok();
        Checkpointer {
            writes: AtomicU64::new(0),
            frames,
            wake: thread.as_ref().map(|_| wake),
            thread,
        }
    }

    /// Counts a committed write; every [`EVERY_WRITES`]th wakes the thread (never blocks:
    /// if it is still busy with the last one, this one is skipped).
    pub(crate) fn committed(&self) {
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        if n % EVERY_WRITES != EVERY_WRITES - 1 {
            return;
        }
        if let Some(wake) = &self.wake {
            match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    tracing::debug!("the checkpoint thread has stopped");
                }
            }
        }
    }
}

impl Checkpointer {
    /// Whether the writer should truncate the WAL (`wal`, the `-wal` file) itself before
    /// its next transaction: the background thread saw it past the limit, or, every
    /// [`WRITER_LOOK_EVERY`] writes, the file itself is. The file only shrinks when a
    /// checkpoint truncates it, so its length is the most the WAL has held since.
    pub(crate) fn writer_must_truncate(&self, wal: &Path) -> bool {
        if self.frames.load(Ordering::Relaxed) > WRITER_TRUNCATE_FRAMES {
            return true;
        }
        self.writes.load(Ordering::Relaxed) % WRITER_LOOK_EVERY == 0
            && std::fs::metadata(wal).is_ok_and(|m| m.len() > WRITER_TRUNCATE_BYTES)
    }

    /// Truncates the WAL on the writer's connection (outside any transaction), trying for at
    /// most `budget`, then restores its timeout.
    ///
    /// The caller holds the process's writer lock, so this process's writers wait. A
    /// checkpoint already running elsewhere (this store's thread, another process's) makes
    /// SQLite answer busy at once, without waiting: the loop tries again until the budget is
    /// spent, so the truncation happens as soon as that one ends rather than never.
    pub(crate) fn truncate_on(&self, conn: &Connection, budget: Duration, restore: Duration) {
        let deadline = std::time::Instant::now() + budget;
        let mut outcome;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            outcome = conn.busy_timeout(left.min(TRUNCATE_WAIT)).and_then(|()| {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
            });
            if !matches!(outcome, Ok(1)) || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Err(e) = conn.busy_timeout(restore) {
            tracing::debug!(error = %e, "the writer's busy timeout was not restored");
        }
        match outcome {
            Ok(0) => self.frames.store(0, Ordering::Relaxed),
            Ok(_) => tracing::debug!("the writer's WAL truncation was blocked; it tries again"),
            Err(e) => tracing::debug!(error = %e, "the writer's WAL truncation failed"),
        }
    }
}

impl Drop for Checkpointer {
    /// Stops the thread and waits for it, so its connection is closed when the store is.
    fn drop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(options: &SqliteOptions, rx: &Receiver<()>, frames: &AtomicI64) {
    let mut conn: Option<Connection> = None;
    while rx.recv().is_ok() {
        if conn.is_none() {
            conn = connection::open_connection(options)
                .map_err(|e| tracing::debug!(error = %e, "checkpoint connection did not open"))
                .ok();
        }
        let Some(c) = conn.as_ref() else { continue };
        if let Err(e) = checkpoint(c, options.busy_timeout, frames) {
            // Another checkpoint running, or readers and writers that did not step aside in
            // time: the next one catches up, and the writer's backstop runs meanwhile. A
            // connection that met a storage fault is replaced.
            tracing::debug!(error = %e, "checkpoint did not run");
            conn = None;
        }
    }
}

fn checkpoint(c: &Connection, busy_timeout: Duration, seen: &AtomicI64) -> rusqlite::Result<()> {
    let frames: i64 = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    if frames < 0 {
        // Another connection's checkpoint is running, so SQLite reports no length (-1).
        // Keep the last one seen: overwriting it would hide a long WAL from the writer's
        // backstop exactly when checkpoints contend (two processes on one file).
        return Ok(());
    }
    seen.store(frames, Ordering::Relaxed);
    if frames > TRUNCATE_FRAMES {
        c.busy_timeout(TRUNCATE_WAIT)?;
        let truncated = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        });
        c.busy_timeout(busy_timeout)?;
        if truncated? == 0 {
            seen.store(0, Ordering::Relaxed);
        }
    }
    Ok(())
}
