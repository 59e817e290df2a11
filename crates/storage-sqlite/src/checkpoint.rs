//! WAL checkpoints: a background thread per store copies the WAL back into the database file
//! after a large write, and every few hundred frames while several threads write, so no
//! large save and none of several writers pays for it in its commit; a lone writer thread's
//! small writes leave it to SQLite's autocheckpoint, in the commit that reaches 1,000 frames.

use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{connection, SqliteOptions};

/// WAL frames (pages) written since the thread was last woken that wake it again while the
/// writer is shared: a claim or a completion dirties about five pages, so that is every
/// few dozen small writes, and at once after a large one (a 500-video save writes 200 to
/// 1,800).
const WAKE_FRAMES: i64 = 256;
/// The same for the small writes of a lone writer thread: past SQLite's autocheckpoint
/// ([`WRITER_AUTOCHECKPOINT`]), which copies the WAL in the commit that reaches it, so the
/// thread only wakes when that checkpoint could not empty the WAL (readers holding it).
const LONE_WAKE_FRAMES: i64 = 2_000;
/// Writes after the last one that found the writer shared (a write from another thread than
/// the one before it, or one that found the writer taken or writes queued for it) during
/// which it still counts as shared: about [`WAKE_FRAMES`] worth of small writes.
const SHARED_WITHIN: u64 = 64;
/// How often, in writes, the writer reads the WAL's length after a commit: a small write
/// adds a handful of frames, so the count is at most a few dozen frames stale.
const LOOK_EVERY: u64 = 8;
/// Rows changed by one write (or since the last look) after which the writer reads the
/// WAL's length at once: a large write wakes the thread as it commits.
const LOOK_AFTER_ROWS: u64 = 32;
/// Frames one passive checkpoint must have copied before the thread catches up with writes
/// committed meanwhile: after a large write, not after every few dozen claims, where the
/// extra checkpoints (and their fsyncs) would only compete with the writers.
const CATCH_UP_AFTER: i64 = 512;
/// Passive checkpoints one wake runs at most: a write that commits while a checkpoint copies
/// (the next small write after a large save) adds frames that checkpoint did not see, and
/// until they are copied too the next write cannot start the WAL over.
const CATCH_UP_ROUNDS: u32 = 3;
/// WAL frames (~4 MB with the default 2 KiB pages, ~8 MB with 4 KiB) past which a WAL that
/// has not started over is a sign of starvation (see [`Checkpointer`]).
const STARVED_FRAMES: i64 = 2_000;
/// Consecutive wakes that found the WAL past [`STARVED_FRAMES`] and not started over since
/// the previous wake, before the writer is asked to truncate it. One large write, or a few
/// back to back, make a long WAL that passive checkpoints still empty; only when the WAL
/// keeps growing across wakes are they starved.
const STARVED_WAKES: u32 = 3;
/// How long one TRUNCATE checkpoint on the writer waits for other processes' readers and
/// writers to step aside.
const TRUNCATE_WAIT: Duration = Duration::from_millis(100);
/// WAL frames (~32 MB) past which the background thread is losing the race (a loaded
/// machine, where it gets little CPU): the writer itself truncates the WAL before its next
/// transaction, with up to half its busy budget, so writers cannot outrun the checkpoints.
/// Also the writer connection's own autocheckpoint during a large write's commit (see
/// [`Checkpointer::before_commit`]).
const WRITER_TRUNCATE_FRAMES: i64 = 8_000;
/// The same limit in bytes of the WAL file, which the writer looks at itself every
/// [`WRITER_LOOK_EVERY`] writes: the file only shrinks when a checkpoint truncates it (or
/// SQLite cuts it to [`WAL_SIZE_LIMIT`] as a write starts it over), so its length is the
/// most the WAL has held since, which the frame count after a commit may not show.
const WRITER_TRUNCATE_BYTES: u64 = 32 << 20;
/// How often, in writes, the writer looks at the WAL file's length (one `stat`).
const WRITER_LOOK_EVERY: u64 = 16;
/// SQLite's `journal_size_limit` on the writer connection: the first commit that starts the
/// WAL over cuts a longer file to this (or to that commit's own length), so the space a long
/// WAL took is given back without a TRUNCATE checkpoint that would block writers.
pub(crate) const WAL_SIZE_LIMIT: i64 = 8 << 20;
/// The writer connection's autocheckpoint, in pages: SQLite's default, which copies the WAL
/// inside the commit that makes it that long; lifted for the commit of a large write (see
/// [`Checkpointer::before_commit`]), and all the checkpointing there is when no thread could
/// be started.
pub(crate) const WRITER_AUTOCHECKPOINT: u32 = 1_000;

/// The store's checkpointer. After a large write, and every few small ones, the writer reads
/// the WAL's length in frames (`PRAGMA wal_checkpoint(NOOP)`, which copies nothing and takes
/// no lock) and wakes the thread once [`WAKE_FRAMES`] have been written since it last did,
/// whatever the number of writes, if a large write is among them or the writer was shared
/// in the last [`SHARED_WITHIN`] writes.
///
/// The small writes of a lone writer thread leave the copying to SQLite's autocheckpoint
/// instead, in the commit that takes the WAL to 1,000 frames, as SQLite does by default. A
/// checkpoint on the thread runs beside the writes, and its syncs slow the writes that
/// overlap them (on the development VM plain writes to another file slow beside an fsync
/// too: `scripts/lab/fsync-interference.py`), which raised a lone caller's claim p95 by a
/// third to a half (docs/performance.md, item 21). In the commit, the cost falls on one
/// small write in about two hundred, and the copy takes less CPU (it coalesces more
/// rewrites of the same pages), but the lone thread waits for it: back to back, its drains
/// measured 5–15 % slower. With several writer threads, the thread's copying on another
/// core is what keeps them moving (the drains at two and four workers lost a fifth of their
/// rate with every checkpoint in the commits). A write that waited for the writer counts as
/// sharing it even when no thread change shows: a queued write is committed by whichever
/// thread holds the writer next, with its own writes (group commit).
///
/// The thread runs PASSIVE checkpoints, which never wait for readers or writers, and after a
/// large one again while writes committed during it left frames behind ([`CATCH_UP_ROUNDS`]):
/// once every frame is copied, the next write starts the WAL over from its beginning. A
/// large write's commit does not checkpoint (its autocheckpoint is lifted, see
/// [`Checkpointer::before_commit`]), so a 500-video save's pages are copied beside the next
/// write rather than inside its own commit. Small writes keep SQLite's autocheckpoint at
/// 1,000 frames, which catches up in a commit when the thread falls behind a stream of
/// claims; if the thread is copying at that moment it holds SQLite's checkpoint lock, and
/// the commit's checkpoint gives up at once instead of waiting.
///
/// Under a steady stream of writers (several processes, or large writes back to back),
/// passive checkpoints may never find the moment when the whole WAL is copied and nobody
/// reads it, and the WAL would grow without bound (SQLite's "checkpoint starvation"; a
/// disk-full test found it). The thread tells it from the WAL header's checkpoint sequence
/// number, which SQLite bumps each time the WAL starts over: past [`STARVED_FRAMES`] with no
/// new start for [`STARVED_WAKES`] wakes, it asks the writer to truncate the WAL before its
/// next transaction, as it does itself past [`WRITER_TRUNCATE_FRAMES`]. The writer holds
/// the process's writer lock, so this process's writers wait on that lock rather than in
/// SQLite's busy handler, which sleeps in steps of up to 100 ms (a TRUNCATE run on the
/// thread, which the writer then waited for, cost 100–430 ms a time on the loaded
/// development VM). It waits for a checkpoint the thread is running to end, then TRUNCATE
/// copies the rest, waits (at most [`TRUNCATE_WAIT`] a try) for other processes' readers
/// and writers to step aside, and truncates the file, so the WAL stays bounded and its disk
/// space is given back.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    writes: AtomicU64,
    /// The WAL's length in frames, as the writer's last commit or the thread's last
    /// checkpoint saw it.
    frames: Arc<AtomicI64>,
    /// The WAL's length when the thread was last woken (0 once the WAL has started over).
    woken_at: AtomicI64,
    /// The writer connection's count of changed rows when it last read the WAL's length.
    changes_seen: AtomicU64,
    /// Whether the writer connection's autocheckpoint is lifted for a large write's commit.
    lifted: AtomicBool,
    /// Whether a large write has committed since the thread was last woken.
    large: AtomicBool,
    /// One more than the count of writes when a write last found the writer shared; 0 when
    /// none has.
    shared_at: AtomicU64,
    /// The tag of the thread that committed the last write ([`thread_tag`]); 0 before the
    /// first.
    last_thread: AtomicU64,
    /// Times the thread was woken (read by tests).
    pub(crate) wakes: AtomicU64,
    /// Set by the thread when it finds the WAL starved: the writer truncates it before its
    /// next transaction.
    starved: Arc<AtomicBool>,
    /// Held by the thread while it checkpoints, and by the writer while it truncates the WAL
    /// (a test holding it keeps the thread from checkpointing).
    pub(crate) busy: Arc<parking_lot::Mutex<()>>,
    /// `None` when the thread could not be started (SQLite's own autocheckpoint remains).
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; it opens its own connection to `options.path` when first woken.
    pub(crate) fn spawn(options: &SqliteOptions, wal: &Path) -> Self {
        let (wake, rx) = sync_channel(1);
        let options = options.clone();
        let wal = wal.to_path_buf();
        let frames = Arc::new(AtomicI64::new(0));
        let seen = frames.clone();
        let busy = Arc::new(parking_lot::Mutex::new(()));
        let starved = Arc::new(AtomicBool::new(false));
        let (their_busy, their_starved) = (busy.clone(), starved.clone());
        let thread = std::thread::Builder::new()
            .name("prismq-checkpoint".into())
            .spawn(move || run(&options, &wal, &rx, &seen, &their_busy, &their_starved))
            .map_err(|e| tracing::warn!(error = %e, "no checkpoint thread; SQLite's own autocheckpoint remains"))
            .ok();
        Checkpointer {
            writes: AtomicU64::new(0),
            frames,
            woken_at: AtomicI64::new(0),
            changes_seen: AtomicU64::new(0),
            lifted: AtomicBool::new(false),
            large: AtomicBool::new(false),
            shared_at: AtomicU64::new(0),
            last_thread: AtomicU64::new(0),
            wakes: AtomicU64::new(0),
            starved,
            busy,
            wake: thread.as_ref().map(|_| wake),
            thread,
        }
    }

    /// Before the commit of a write that changed `rows` rows on `conn` (the writer
    /// connection): a large write ([`LOOK_AFTER_ROWS`] rows or more) lifts the connection's
    /// autocheckpoint to [`WRITER_TRUNCATE_FRAMES`] for its commit, so the commit does not
    /// copy its own pages (at SQLite's default of 1,000 a 500-video save crossed it alone
    /// and paid for the copy and its fsyncs before returning); the thread copies them after.
    /// Small writes keep the default: with it lifted for them too, claims measured 10–15 µs
    /// slower at the median (docs/performance.md). Without the thread nothing changes.
    pub(crate) fn before_commit(&self, conn: &Connection, rows: u64) {
        if rows < LOOK_AFTER_ROWS || self.wake.is_none() {
            return;
        }
        match conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {WRITER_TRUNCATE_FRAMES}"
        )) {
            Ok(()) => self.lifted.store(true, Ordering::Relaxed),
            Err(e) => tracing::debug!(error = %e, "the autocheckpoint was not lifted"),
        }
    }

    /// After the transaction, committed or not: puts back the autocheckpoint a large write
    /// lifted (its pages are the thread's to copy, see [`Checkpointer::committed`]).
    pub(crate) fn after_transaction(&self, conn: &Connection) {
        if !self.lifted.swap(false, Ordering::Relaxed) {
            return;
        }
        self.large.store(true, Ordering::Relaxed);
        if let Err(e) = conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT}"
        )) {
            tracing::debug!(error = %e, "the autocheckpoint was not put back");
        }
    }

    /// Records that a write found the writer taken, or writes already queued for it, or the
    /// database busy (or came from another thread than the write before it, see
    /// [`Checkpointer::committed`]): the writer is shared, and the thread copies the WAL
    /// for the next [`SHARED_WITHIN`] writes.
    pub(crate) fn contended(&self) {
        self.shared_at
            .store(self.writes.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Whether the writer was shared within the last [`SHARED_WITHIN`] writes, `writes`
    /// being the count now.
    fn recently_shared(&self, writes: u64) -> bool {
        match self.shared_at.load(Ordering::Relaxed) {
            0 => false,
            at => writes.saturating_sub(at - 1) <= SHARED_WITHIN,
        }
    }

    /// Counts a write committed on `conn` (the writer connection, outside any transaction)
    /// and, after a write that changed [`LOOK_AFTER_ROWS`] rows or every [`LOOK_EVERY`]
    /// writes, reads the WAL's length and wakes the thread when enough frames have been
    /// written since it last did: [`WAKE_FRAMES`] after a large write or while the writer
    /// is shared, [`LONE_WAKE_FRAMES`] otherwise (never blocks: if it is still busy with the
    /// last one, this one is skipped, and the next look tries again).
    pub(crate) fn committed(&self, conn: &Connection) {
        let me = thread_tag();
        let before = self.last_thread.swap(me, Ordering::Relaxed);
        if before != 0 && before != me {
            self.contended();
        }
        let writes = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        let changes = conn.total_changes();
        let rows = changes.wrapping_sub(self.changes_seen.load(Ordering::Relaxed));
        if writes % LOOK_EVERY != 0 && rows < LOOK_AFTER_ROWS {
            return;
        }
        self.changes_seen.store(changes, Ordering::Relaxed);
        let frames = match wal_length(conn) {
            Ok(n) if n >= 0 => n,
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(error = %e, "the WAL's length could not be read");
                return;
            }
        };
        self.frames.store(frames, Ordering::Relaxed);
        let mut since = self.woken_at.load(Ordering::Relaxed);
        if frames < since {
            // The WAL started over: count from its beginning.
            since = 0;
            self.woken_at.store(0, Ordering::Relaxed);
        }
        let wake_after = if self.large.load(Ordering::Relaxed) || self.recently_shared(writes) {
            WAKE_FRAMES
        } else {
            LONE_WAKE_FRAMES
        };
        if frames - since < wake_after {
            return;
        }
        if let Some(wake) = &self.wake {
            match wake.try_send(()) {
                Ok(()) => {
                    self.woken_at.store(frames, Ordering::Relaxed);
                    self.large.store(false, Ordering::Relaxed);
                    self.wakes.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    tracing::debug!("the checkpoint thread has stopped");
                }
            }
        }
    }

    /// Whether the writer should truncate the WAL (`wal`, the `-wal` file) itself before
    /// its next transaction (see [`Checkpointer::truncation_budget`]).
    pub(crate) fn writer_must_truncate(&self, wal: &Path) -> bool {
        self.truncation_budget(wal, Duration::MAX).is_some()
    }

    /// How long the writer may spend truncating the WAL before its next transaction, `left`
    /// being what is left of its busy budget; `None` when no truncation is due.
    ///
    /// Past the bound (the last commit or checkpoint saw more than
    /// [`WRITER_TRUNCATE_FRAMES`], or, every [`WRITER_LOOK_EVERY`] writes, the file itself is
    /// longer than [`WRITER_TRUNCATE_BYTES`]) it may spend half of `left`: writers cannot
    /// outrun the checkpoints. When the thread found the WAL starved, one try of
    /// [`TRUNCATE_WAIT`] at most: other processes' writers can keep a truncation waiting,
    /// and this process's writers should not wait seconds for a WAL well under the bound.
    pub(crate) fn truncation_budget(&self, wal: &Path, left: Duration) -> Option<Duration> {
        let past_bound = self.frames.load(Ordering::Relaxed) > WRITER_TRUNCATE_FRAMES
            || (self.writes.load(Ordering::Relaxed) % WRITER_LOOK_EVERY == 0
                && std::fs::metadata(wal).is_ok_and(|m| m.len() > WRITER_TRUNCATE_BYTES));
        if past_bound {
            Some(left / 2)
        } else if self.starved.load(Ordering::Relaxed) {
            Some(TRUNCATE_WAIT.min(left / 2))
        } else {
            None
        }
    }

    /// Truncates the WAL on the writer's connection (outside any transaction), trying for at
    /// most `budget`, then restores its timeout.
    ///
    /// The caller holds the process's writer lock, so this process's writers wait. It first
    /// waits for a checkpoint this store's thread is running to end (and keeps the thread
    /// from starting another). A checkpoint running in another process makes SQLite answer
    /// busy at once, without waiting: the loop tries again until the budget is spent, so the
    /// truncation happens as soon as that one ends rather than never.
    pub(crate) fn truncate_on(&self, conn: &Connection, budget: Duration, restore: Duration) {
        let deadline = std::time::Instant::now() + budget;
        let _thread_idle = self.busy.try_lock_for(budget);
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
        // Tried: a WAL that stays starved is found so again by the thread.
        self.starved.store(false, Ordering::Relaxed);
        match outcome {
            Ok(0) => {
                self.frames.store(0, Ordering::Relaxed);
                self.woken_at.store(0, Ordering::Relaxed);
            }
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

/// A number for the calling thread, the same for each call on one thread and different on
/// any other (never 0): which thread committed a write, without `ThreadId`'s unstable
/// `as_u64`.
fn thread_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TAG: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TAG.with(|t| *t)
}

/// The WAL's length in frames, read without copying anything or taking any lock; -1 when
/// the database is not in WAL mode.
fn wal_length(conn: &Connection) -> rusqlite::Result<i64> {
    wal_copied(conn).map(|(frames, _)| frames)
}

/// The WAL header's checkpoint sequence number (big-endian, bytes 12..16), which SQLite
/// increments each time a write starts the WAL over; `None` when there is no header to read
/// (no WAL file, or an empty one after a truncation).
fn wal_sequence(wal: &Path) -> Option<u32> {
    use std::io::Read;
    let mut header = [0u8; 16];
    std::fs::File::open(wal)
        .and_then(|mut f| f.read_exact(&mut header))
        .ok()?;
    Some(u32::from_be_bytes([
        header[12], header[13], header[14], header[15],
    ]))
}

/// What the thread remembers between wakes, to tell a long WAL that passive checkpoints
/// still empty from a starved one.
#[derive(Debug, Default)]
struct Starvation {
    /// The WAL header's sequence number at the last wake.
    sequence: Option<u32>,
    /// Consecutive wakes past [`STARVED_FRAMES`] with the same sequence number.
    wakes: u32,
}

impl Starvation {
    /// Whether the WAL, `frames` long, is starved: past [`STARVED_FRAMES`] and not started
    /// over for [`STARVED_WAKES`] wakes in a row.
    fn starved(&mut self, frames: i64, sequence: Option<u32>) -> bool {
        let same = sequence.is_some() && sequence == self.sequence;
        self.sequence = sequence;
        if frames <= STARVED_FRAMES || !same {
            // Short, or started over since the last wake (a truncated WAL has no header
            // until its next write: that counts as started over too).
            self.wakes = u32::from(frames > STARVED_FRAMES);
            return false;
        }
        self.wakes += 1;
        self.wakes >= STARVED_WAKES
    }
}

fn run(
    options: &SqliteOptions,
    wal: &Path,
    rx: &Receiver<()>,
    frames: &AtomicI64,
    busy: &parking_lot::Mutex<()>,
    starved: &AtomicBool,
) {
    let mut conn: Option<Connection> = None;
    let mut starvation = Starvation::default();
    while rx.recv().is_ok() {
        let _busy = busy.lock();
        if conn.is_none() {
            conn = connection::open_connection(options)
                .map_err(|e| tracing::debug!(error = %e, "checkpoint connection did not open"))
                .ok();
        }
        let Some(c) = conn.as_ref() else { continue };
        match checkpoint(c) {
            // Another connection's checkpoint is running, so SQLite reports no length (-1).
            // Keep the last one seen: overwriting it would hide a long WAL from the writer's
            // backstop exactly when checkpoints contend (two processes on one file).
            Ok(n) if n < 0 => {}
            Ok(n) => {
                frames.store(n, Ordering::Relaxed);
                if starvation.starved(n, wal_sequence(wal)) {
                    starved.store(true, Ordering::Relaxed);
                    starvation = Starvation::default();
                }
            }
            Err(e) => {
                // Readers that hold part of the WAL, or a storage fault: the next wake
                // catches up, and the writer's backstop runs meanwhile. A connection that
                // met a storage fault is replaced.
                tracing::debug!(error = %e, "checkpoint did not run");
                conn = None;
            }
        }
    }
}

/// A passive checkpoint: (WAL frames, frames copied), both -1 when another connection's
/// checkpoint is running. The frame count is the WAL's when the checkpoint began.
fn passive(c: &Connection) -> rusqlite::Result<(i64, i64)> {
    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

/// A passive checkpoint, followed, when it copied at least [`CATCH_UP_AFTER`] frames, by
/// more until the WAL holds nothing new (at most [`CATCH_UP_ROUNDS`] in all); returns the
/// WAL's length in frames, -1 when another connection's checkpoint is running.
fn checkpoint(c: &Connection) -> rusqlite::Result<i64> {
    let (_, already) = wal_copied(c)?;
    let (mut frames, copied) = passive(c)?;
    if frames < 0 || copied - already < CATCH_UP_AFTER {
        return Ok(frames);
    }
    for _ in 1..CATCH_UP_ROUNDS {
        // Frames committed while it copied: another passive copies them (and costs little
        // when there are none: nothing to copy, nothing to sync).
        let (now, _) = passive(c)?;
        let grew = now > frames;
        frames = now;
        if frames < 0 || !grew {
            break;
        }
    }
    Ok(frames)
}

/// (WAL frames, frames already copied), read without copying anything or taking any lock.
fn wal_copied(c: &Connection) -> rusqlite::Result<(i64, i64)> {
    c.prepare_cached("PRAGMA wal_checkpoint(NOOP)")?
        .query_row([], |r| Ok((r.get(1)?, r.get(2)?)))
}

#[cfg(test)]
mod tests {
    use super::{Starvation, STARVED_FRAMES, STARVED_WAKES};
    use crate::combine::tests::store;
    use crate::error::map_err;
    use std::path::Path;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    /// (WAL frames, frames copied into the database file) as another connection sees them.
    fn wal(path: &Path) -> (i64, i64) {
        let c = rusqlite::Connection::open(path).unwrap();
        c.query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| {
            Ok((r.get(1)?, r.get(2)?))
        })
        .unwrap()
    }

    /// A large write (2,500 rows, about 2,600 pages: more than the writer's autocheckpoint of
    /// 1,000, which it lifts for its commit) commits without copying any of its pages into
    /// the database: the checkpoint thread, woken by the frame count rather than a number of
    /// writes, copies them after, and the next write then starts the WAL over instead of
    /// growing it.
    #[test]
    fn a_large_write_is_checkpointed_after_its_commit_not_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(5));
        let path = dir.path().join("q.db");
        let paused = s.inner.checkpointer.busy.lock();
        s.write(|tx| {
            tx.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
                 INSERT INTO scratch (v) SELECT hex(randomblob(1800)) FROM n",
                [],
            )
            .map_err(map_err)
        })
        .unwrap();
        let (frames, copied) = wal(&path);
        assert!(frames > 2_000, "the write made {frames} frames");
        assert_eq!(
            copied, 0,
            "the writer's commit copied {copied} of {frames} frames"
        );
        drop(paused);
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let (now_frames, copied) = wal(&path);
            if copied == now_frames {
                break;
            }
            assert!(
                Instant::now() < until,
                "the checkpoint thread never copied the write ({copied} of {now_frames})"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        s.write(|tx| {
            tx.execute("INSERT INTO scratch (v) VALUES ('small')", [])
                .map_err(map_err)
        })
        .unwrap();
        let (after, _) = wal(&path);
        assert!(after < 100, "the WAL did not start over: {after} frames");
    }

    /// One small write of a 3,000-byte row (a WAL frame or two).
    fn small(s: &crate::SqliteStore) {
        s.write(|tx| {
            tx.execute("INSERT INTO scratch (v) VALUES (hex(randomblob(1500)))", [])
                .map_err(map_err)
        })
        .unwrap();
    }

    /// Small writes from one thread, never contended, write well past the thread's threshold
    /// for a shared writer (256 frames) and past SQLite's autocheckpoint (1,000): the thread
    /// is never woken, and the commits' own checkpoints keep the WAL starting over.
    #[test]
    fn small_writes_from_one_thread_are_checkpointed_in_their_commits() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(5));
        let path = dir.path().join("q.db");
        let mut longest = 0;
        for _ in 0..1_200 {
            small(&s);
            longest = longest.max(wal(&path).0);
        }
        assert_eq!(
            s.inner.checkpointer.wakes.load(Ordering::Relaxed),
            0,
            "the thread was woken for a lone thread's small writes"
        );
        assert!(
            (1_000..super::LONE_WAKE_FRAMES).contains(&longest),
            "the WAL reached {longest} frames"
        );
        let (frames, _) = wal(&path);
        assert!(
            frames < longest,
            "the WAL never started over ({frames} frames)"
        );
    }

    /// How often the thread is woken over 1,200 small writes, each `every`-th of them made by
    /// `odd` instead of by the test's thread (a lone thread's writes wake it never).
    fn wakes_over(every: usize, odd: impl Fn(&crate::SqliteStore)) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(5));
        for i in 0..1_200 {
            if i % every == 0 {
                odd(&s);
            } else {
                small(&s);
            }
        }
        s.inner.checkpointer.wakes.load(Ordering::Relaxed)
    }

    /// One in 32 of the writes made on another thread while the test holds the writer, so
    /// that it waits: the writer counts as shared and wakes the thread every 256 frames.
    /// (How long the WAL gets depends on how fast the thread copies, so only the wakes are
    /// counted.)
    #[test]
    fn small_writes_that_queue_for_the_writer_wake_the_thread() {
        let wakes = wakes_over(32, |s| {
            let held = s.inner.writer.lock();
            let theirs = s.clone();
            let waiting = std::thread::spawn(move || small(&theirs));
            std::thread::sleep(Duration::from_millis(5));
            drop(held);
            waiting.join().unwrap();
        });
        assert!(wakes >= 2, "the thread was woken {wakes} times");
    }

    /// Writes queued while the test holds the writer, which the test's own thread then
    /// commits (as the next holder does in group commit): every commit is on one thread, and
    /// the queued writes alone mark the writer shared, so the thread is woken.
    #[test]
    fn writes_queued_for_the_writer_mark_it_shared_whoever_commits_them() {
        let wakes = wakes_over(32, |s| {
            let mut held = s.inner.writer.lock();
            let theirs = s.clone();
            let queued = std::thread::spawn(move || {
                theirs
                    .write_shared(|tx| {
                        tx.execute("INSERT INTO scratch (v) VALUES ('queued')", [])
                            .map_err(map_err)
                    })
                    .unwrap()
            });
            while s.inner.waiting.len() == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(s.run_waiting(&mut held), crate::combine::Ran::Batch);
            drop(held);
            assert_eq!(queued.join().unwrap(), 1);
        });
        assert!(wakes >= 2, "the thread was woken {wakes} times");
    }

    /// Writes that alternate between threads, each waiting for the one before to return, so
    /// that none finds the writer taken: several writer threads all the same, so the thread
    /// is woken.
    #[test]
    fn small_writes_from_threads_in_turn_wake_the_thread() {
        let wakes = wakes_over(2, |s| {
            std::thread::scope(|scope| scope.spawn(|| small(s)).join().unwrap());
        });
        assert!(wakes >= 2, "the thread was woken {wakes} times");
    }

    /// Starvation is a WAL past the limit that has not started over (same header sequence
    /// number) for several wakes in a row; starting over, or a short WAL, resets the count.
    #[test]
    fn starvation_needs_a_long_wal_that_never_starts_over() {
        let long = STARVED_FRAMES + 1;
        let mut s = Starvation::default();
        for _ in 0..10 {
            assert!(
                !s.starved(STARVED_FRAMES, Some(7)),
                "a short WAL is never starved"
            );
        }
        let mut s = Starvation::default();
        for wake in 1..STARVED_WAKES {
            assert!(!s.starved(long, Some(7)), "starved at wake {wake}");
        }
        assert!(s.starved(long, Some(7)));
        let mut s = Starvation::default();
        for round in 0..10 {
            // Each large write's WAL started over since the last wake.
            assert!(!s.starved(long, Some(round)), "round {round}");
        }
        // A WAL with no header (truncated) says nothing about starting over.
        let mut s = Starvation::default();
        for _ in 0..10 {
            assert!(!s.starved(long, None));
        }
    }
}
