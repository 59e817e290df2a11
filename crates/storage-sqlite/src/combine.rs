//! Group commit for the claim path: a claim, start or completion that arrives while another
//! write holds the writer waits in a queue, and the next thread to take the writer runs every
//! waiting one in a single transaction, each in its own savepoint.
//!
//! With more workers than cores the writer is rarely free, and each transaction pays its own
//! commit: a WAL header, the pages it dirtied, the wal-index update. Run together, writes
//! share one commit and the pages they both touch (the counts row, the top of each index).
//! A write's outcome reaches its caller only after the batch commits, so nothing is
//! acknowledged that was not made durable; a write whose own statement fails is rolled back to
//! its savepoint and fails alone.
//!
//! The async ports queue their writes here too, with a channel for the outcome, and wake the
//! store's writer thread (`writer.rs`) to run them: no hand-off to tokio's blocking pool.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use prismq_domain::PortError;
use rusqlite::Transaction;

use crate::error::map_err;
use crate::{connection, SqliteStore};

/// The writes waiting for the writer connection, oldest first. Only a thread holding the
/// writer lock takes them, and it hands every outcome over before it lets go.
#[derive(Default)]
pub(crate) struct Waiting {
    jobs: parking_lot::Mutex<Vec<Box<dyn Job>>>,
}

impl Waiting {
    /// How many writes wait (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.jobs.lock().len()
    }
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting")
            .field("jobs", &self.jobs.lock().len())
            .finish()
    }
}

/// One waiting write, its result type erased.
trait Job: Send {
    /// When its caller's busy budget runs out.
    fn deadline(&self) -> Instant;
    /// Runs the write in the batch's transaction and keeps its outcome until the batch
    /// ends.
    fn run(&mut self, tx: &Transaction<'_>) -> Step;
    /// Hands the kept outcome to the caller, or `failed` when the batch did not commit.
    fn publish(self: Box<Self>, failed: Option<&PortError>);
}

/// How a write went, for the batch.
enum Step {
    /// It returned a value: keep its changes.
    Done,
    /// It failed by itself (its own error, or a panic): undo its changes alone.
    Undo(PortError),
    /// The database is busy or unusable: the whole batch ends.
    End(PortError),
}

/// What a write came to: its result, or the panic it raised (resumed on its caller's thread,
/// whichever thread ran it).
enum Done<T> {
    Returned(Result<T, PortError>),
    Panicked(Box<dyn Any + Send>),
}

type Outcome<T> = Arc<parking_lot::Mutex<Option<Done<T>>>>;

/// Where a write's outcome goes: a slot its blocking caller reads once it holds the writer,
/// or a channel an async caller awaits.
enum Sink<T> {
    Slot(Outcome<T>),
    Channel(Option<tokio::sync::oneshot::Sender<Done<T>>>),
}

impl<T> Sink<T> {
    fn put(&mut self, done: Done<T>) {
        match self {
            Sink::Slot(slot) => *slot.lock() = Some(done),
            // A caller that stopped waiting (its future dropped) no longer wants it.
            Sink::Channel(tx) => {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(done);
                }
            }
        }
    }
}

struct Write<T, F> {
    deadline: Instant,
    f: F,
    kept: Option<Done<T>>,
    outcome: Sink<T>,
    published: bool,
}

impl<T, F> Job for Write<T, F>
where
    T: Send,
    F: FnMut(&Transaction<'_>) -> Result<T, PortError> + Send,
{
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn run(&mut self, tx: &Transaction<'_>) -> Step {
        let f = &mut self.f;
        match std::panic::catch_unwind(AssertUnwindSafe(|| f(tx))) {
            Ok(out) => {
                let step = match &out {
                    Ok(_) => Step::Done,
                    Err(e) if ends_the_batch(e) => Step::End(e.clone()),
                    Err(e) => Step::Undo(e.clone()),
                };
                self.kept = Some(Done::Returned(out));
                step
            }
            Err(panic) => {
                self.kept = Some(Done::Panicked(panic));
                Step::Undo(PortError::Unavailable("the write panicked".into()))
            }
        }
    }

    fn publish(mut self: Box<Self>, failed: Option<&PortError>) {
        let out = match (failed, self.kept.take()) {
            // A panic goes back to its caller even when the batch failed.
            (_, Some(Done::Panicked(p))) => Done::Panicked(p),
            (Some(e), _) => Done::Returned(Err(e.clone())),
            (None, Some(done)) => done,
            (None, None) => Done::Returned(Err(PortError::Unavailable(
                "internal: a write was handed back without having run".into(),
            ))),
        };
        self.outcome.put(out);
        self.published = true;
    }
}

impl<T, F> Drop for Write<T, F> {
    /// A write dropped without an outcome (the thread running its batch unwound outside any
    /// write): its caller learns that nothing of it was committed.
    fn drop(&mut self) {
        if !self.published {
            self.outcome.put(Done::Returned(Err(PortError::Unavailable(
                "the write was abandoned: the thread running its batch stopped; nothing of it was committed".into(),
            ))));
        }
    }
}

/// Errors that end the whole batch rather than one write of it: the database is busy (the
/// batch is retried) or unusable (every write fails with it).
pub(crate) fn ends_the_batch(e: &PortError) -> bool {
    matches!(
        e,
        PortError::Busy(_) | PortError::Unavailable(_) | PortError::Corrupt(_) | PortError::Gone(_)
    )
}

/// Runs `batch` in `tx`: a lone write as is (its error rolls the transaction back), several
/// each in a savepoint, so one that fails is undone alone.
fn run_batch(tx: &Transaction<'_>, batch: &mut [Box<dyn Job>]) -> Result<(), PortError> {
    if let [only] = batch {
        return match only.run(tx) {
            Step::Done => Ok(()),
            Step::Undo(e) | Step::End(e) => Err(e),
        };
    }
    for job in batch.iter_mut() {
        exec(tx, "SAVEPOINT prismq_write")?;
        match job.run(tx) {
            Step::Done => exec(tx, "RELEASE prismq_write")?,
            Step::End(e) => return Err(e),
            Step::Undo(_) => {
                exec(tx, "ROLLBACK TO prismq_write")?;
                exec(tx, "RELEASE prismq_write")?;
            }
        }
    }
    Ok(())
}

pub(crate) fn exec(tx: &Transaction<'_>, sql: &str) -> Result<(), PortError> {
    tx.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(map_err)
}

/// How a thread waits for the writer in [`SqliteStore::take_turns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiter {
    /// Parks on the writer lock until it is let go (the writer thread, whose turns run the
    /// async ports' writes).
    Parked,
    /// Sleeps [`POLL_FIRST`], then twice as long each time up to [`POLL_MAX`], looking for
    /// its outcome and trying the writer in between (a blocking caller whose write is
    /// queued). Its write is run meanwhile by whichever thread holds the writer, in that
    /// thread's transaction, and the caller collects the outcome when it wakes: nobody has
    /// to wake it. Parked instead, every contended write cost a wake-up of its thread by the
    /// one letting go of the writer (a futex wake and, across CPUs, an interrupt), and
    /// blocking callers at two and four threads spent 90–120 µs of CPU a task against 60 at
    /// one; SQLite's busy handler makes the bare loop's threads sleep the same way
    /// (`docs/performance.md`, session 23).
    Polling,
}

/// A polling waiter's first sleep.
const POLL_FIRST: std::time::Duration = std::time::Duration::from_micros(100);
/// A polling waiter's longest sleep: a few transactions' time, so a caller whose write has
/// run waits at most about that long to learn it.
const POLL_MAX: std::time::Duration = std::time::Duration::from_micros(500);

/// What one turn at the waiting writes came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// Nothing was waiting.
    Nothing,
    /// A batch committed, or failed and every write of it has its outcome.
    Batch,
    /// The database was busy: the writes whose budget is not spent wait again.
    Busy,
}

impl SqliteStore {
    /// Like [`SqliteStore::write`], but `f` may run on another thread, in one transaction
    /// with other waiting writes: whichever thread takes the writer next runs them all
    /// (group commit). `f` may run more than once (when the batch meets a busy database);
    /// its outcome is returned once the batch has committed, or the batch's error.
    pub(crate) fn write_shared<T, F>(&self, mut f: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>) -> Result<T, PortError> + Send + 'static,
    {
        let deadline = Instant::now() + self.inner.options.busy_timeout;
        // Uncontended (the writer free, nobody waiting): run here, as `write` does, with
        // nothing queued or allocated. A busy database sends it down the queued path.
        if let Some(mut slot) = self.inner.writer.try_lock() {
            if self.inner.waiting.jobs.lock().is_empty() {
                match self.transact(&mut slot, deadline, &mut f) {
                    Err(PortError::Busy(_)) => {}
                    other => return other,
                }
            }
        }
        self.inner.checkpointer.contended();
        let outcome: Outcome<T> = Arc::default();
        self.queue_write(f, deadline, Sink::Slot(outcome.clone()));
        // Run by the thread that holds the writer now or takes it next, or by us when our
        // turn comes: only a holder of the writer takes waiting writes, and it hands every
        // outcome over (or queues the write again) before letting go, so an outcome found
        // without the writer is final.
        finish(self.take_turns(Waiter::Polling, |_| outcome.lock().take()))
    }

    /// Takes turns at the waiting writes ([`SqliteStore::run_waiting`]) until `done` answers:
    /// it is asked before each turn (`None`; with the writer held when the `waiter` parks
    /// for it), and after it, with what the turn ran. A busy database is waited out with a
    /// growing backoff that a batch run starts over.
    pub(crate) fn take_turns<R>(
        &self,
        waiter: Waiter,
        mut done: impl FnMut(Option<Ran>) -> Option<R>,
    ) -> R {
        let mut attempt = 0;
        let mut pause = POLL_FIRST;
        loop {
            let mut slot = match waiter {
                Waiter::Parked => self.inner.writer.lock(),
                Waiter::Polling => {
                    if let Some(r) = done(None) {
                        return r;
                    }
                    match self.inner.writer.try_lock() {
                        Some(slot) => {
                            pause = POLL_FIRST;
                            slot
                        }
                        None => {
                            std::thread::sleep(pause);
                            pause = (pause * 2).min(POLL_MAX);
                            continue;
                        }
                    }
                }
            };
            if let Some(r) = done(None) {
                return r;
            }
            let ran = self.run_waiting(&mut slot);
            drop(slot);
            if let Some(r) = done(Some(ran)) {
                return r;
            }
            match ran {
                Ran::Busy => {
                    self.inner.checkpointer.contended();
                    std::thread::sleep(connection::busy_backoff(attempt));
                    attempt += 1;
                }
                Ran::Batch => attempt = 0,
                Ran::Nothing => {}
            }
        }
    }

    /// [`SqliteStore::write_shared`] for the async ports: the write is queued with a channel
    /// for its outcome and the store's writer thread is woken to run it (with whatever else
    /// is waiting, in one transaction). A write that panics answers `Unavailable`, as a
    /// panicked blocking task did.
    pub(crate) async fn write_shared_async<T, F>(&self, mut f: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>) -> Result<T, PortError> + Send + 'static,
    {
        // Uncontended (the writer free, nobody waiting, no WAL truncation due): one attempt
        // here on the caller's thread, that never waits for a lock (a zero busy timeout), so
        // it costs the transaction's own time and no hand-off. Anything else is queued for
        // the writer thread.
        if let Some(mut slot) = self.inner.writer.try_lock() {
            if self.inner.waiting.jobs.lock().is_empty()
                && !self
                    .inner
                    .checkpointer
                    .writer_must_truncate(&self.inner.wal)
            {
                let now = Instant::now();
                let tried = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    self.transact(&mut slot, now, &mut f)
                }));
                match tried {
                    Err(_) => {
                        return Err(PortError::Unavailable(
                            "a storage task stopped unexpectedly: it panicked; nothing of it was committed"
                                .into(),
                        ))
                    }
                    Ok(Err(PortError::Busy(_))) => {}
                    Ok(other) => return other,
                }
            }
        }
        self.inner.checkpointer.contended();
        let deadline = Instant::now() + self.inner.options.busy_timeout;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue_write(f, deadline, Sink::Channel(Some(tx)));
        self.wake_writer();
        match rx.await {
            Ok(Done::Returned(out)) => out,
            Ok(Done::Panicked(_)) => Err(PortError::Unavailable(
                "a storage task stopped unexpectedly: it panicked; nothing of it was committed"
                    .into(),
            )),
            Err(_) => Err(PortError::Unavailable(
                "a storage task stopped unexpectedly: the writer thread dropped it".into(),
            )),
        }
    }

    fn queue_write<T, F>(&self, f: F, deadline: Instant, outcome: Sink<T>)
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>) -> Result<T, PortError> + Send + 'static,
    {
        self.inner.waiting.jobs.lock().push(Box::new(Write {
            deadline,
            f,
            kept: None,
            outcome,
            published: false,
        }));
    }

    /// Takes every waiting write and runs them in one transaction on the writer in `slot`
    /// (the caller holds the writer lock). On a busy database, the writes whose budget is
    /// spent answer `Busy` and the others go back to the front of the queue, and the writer
    /// thread is woken so that a queued async write is not left behind.
    pub(crate) fn run_waiting(&self, slot: &mut Option<rusqlite::Connection>) -> Ran {
        let waiting = &self.inner.waiting;
        let mut batch = std::mem::take(&mut *waiting.jobs.lock());
        let Some(deadline) = batch.iter().map(|j| j.deadline()).min() else {
            return Ran::Nothing;
        };
        match self.transact(slot, deadline, &mut |tx| run_batch(tx, &mut batch)) {
            Err(PortError::Busy(msg)) => {
                let now = Instant::now();
                let (expired, mut left): (Vec<_>, Vec<_>) =
                    batch.into_iter().partition(|j| now >= j.deadline());
                let busy = self.busy(&msg);
                expired.into_iter().for_each(|j| j.publish(Some(&busy)));
                let mut jobs = waiting.jobs.lock();
                left.append(&mut jobs);
                *jobs = left;
                let requeued = !jobs.is_empty();
                drop(jobs);
                if requeued {
                    self.wake_writer_if_running();
                }
                Ran::Busy
            }
            // A lone write's own error, or what ended the batch: nothing was committed.
            Err(e) => {
                batch.into_iter().for_each(|j| j.publish(Some(&e)));
                Ran::Batch
            }
            Ok(()) => {
                batch.into_iter().for_each(|j| j.publish(None));
                Ran::Batch
            }
        }
    }
}

/// The caller's side of [`Done`]: its result, or its panic raised again here.
fn finish<T>(done: Done<T>) -> Result<T, PortError> {
    match done {
        Done::Returned(out) => out,
        Done::Panicked(panic) => std::panic::resume_unwind(panic),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::SqliteOptions;
    use prismq_domain::ports::SystemClock;
    use std::thread::ThreadId;
    use std::time::Duration;

    /// A store in `dir` with this busy budget and an empty `scratch (v TEXT)` table (also
    /// for `writer.rs`'s tests).
    pub(crate) fn store(dir: &tempfile::TempDir, busy: Duration) -> SqliteStore {
        let mut o = SqliteOptions::new(dir.path().join("q.db"));
        o.busy_timeout = busy;
        let s = SqliteStore::open(o, Arc::new(SystemClock)).unwrap();
        s.write(|tx| {
            tx.execute_batch("CREATE TABLE scratch (v TEXT NOT NULL)")
                .map_err(map_err)
        })
        .unwrap();
        s
    }

    /// The scratch table's values, sorted.
    pub(crate) fn values(s: &SqliteStore) -> Vec<String> {
        s.read(|c| {
            let mut st = c
                .prepare("SELECT v FROM scratch ORDER BY v")
                .map_err(map_err)?;
            let rows = st
                .query_map([], |r| r.get(0))
                .map_err(map_err)?
                .collect::<Result<Vec<String>, _>>()
                .map_err(map_err);
            rows
        })
        .unwrap()
    }

    /// Each value is written by its own thread while the test holds the writer, so all of
    /// them wait; `"bad"` fails after writing and `"boom"` panics after writing. Returns each
    /// caller's outcome, in `vs` order, and the thread each write ran on.
    #[allow(clippy::type_complexity)]
    fn batch_of(
        s: &SqliteStore,
        vs: &[&'static str],
    ) -> (
        Vec<std::thread::Result<Result<ThreadId, PortError>>>,
        Vec<ThreadId>,
    ) {
        let ran = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let held = s.inner.writer.lock();
        let callers: Vec<_> = vs
            .iter()
            .map(|&v| {
                let (s, ran) = (s.clone(), ran.clone());
                std::thread::spawn(move || {
                    s.write_shared(move |tx| {
                        tx.execute("INSERT INTO scratch (v) VALUES (?1)", [v])
                            .map_err(map_err)?;
                        let me = std::thread::current().id();
                        ran.lock().push(me);
                        match v {
                            "bad" => Err(PortError::NotFound("bad".into())),
                            "boom" => panic!("boom"),
                            _ => Ok(me),
                        }
                    })
                })
            })
            .collect();
        let until = Instant::now() + Duration::from_secs(10);
        while s.inner.waiting.jobs.lock().len() < vs.len() {
            assert!(Instant::now() < until, "the writes never queued");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(held);
        let outcomes = callers.into_iter().map(|h| h.join()).collect();
        let ran = ran.lock().clone();
        (outcomes, ran)
    }

    /// A blocking caller whose queued write another thread ran learns its outcome without
    /// the writer: the holder runs the waiting write in its own transaction and keeps the
    /// writer, and the caller returns meanwhile (a caller parked on the writer would wait
    /// for it to be let go).
    #[test]
    fn a_queued_blocking_write_run_by_the_holder_returns_while_the_writer_is_still_held() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(5));
        let mut held = s.inner.writer.lock();
        let (sent, got) = std::sync::mpsc::channel();
        let caller = {
            let s = s.clone();
            std::thread::spawn(move || {
                let out = s.write_shared(|tx| {
                    tx.execute("INSERT INTO scratch (v) VALUES ('queued')", [])
                        .map_err(map_err)
                });
                sent.send(out).unwrap();
            })
        };
        let until = Instant::now() + Duration::from_secs(10);
        while s.inner.waiting.jobs.lock().is_empty() {
            assert!(Instant::now() < until, "the write never queued");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(s.run_waiting(&mut held), Ran::Batch);
        let out = got
            .recv_timeout(Duration::from_secs(10))
            .expect("the caller returned while the writer was held");
        assert_eq!(out, Ok(1));
        drop(held);
        caller.join().unwrap();
        assert_eq!(values(&s), ["queued"]);
    }

    #[test]
    fn waiting_writes_commit_together_and_one_that_fails_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(5));
        let (outcomes, ran) = batch_of(&s, &["a", "bad", "c"]);
        assert_eq!(ran.len(), 3);
        assert!(
            ran.iter().all(|t| *t == ran[0]),
            "one thread ran the three writes: {ran:?}"
        );
        let runner = ran[0];
        assert_eq!(outcomes[0].as_ref().unwrap(), &Ok(runner));
        assert_eq!(
            outcomes[1].as_ref().unwrap(),
            &Err(PortError::NotFound("bad".into()))
        );
        assert_eq!(outcomes[2].as_ref().unwrap(), &Ok(runner));
        assert_eq!(values(&s), ["a", "c"], "the failed write's row was undone");
        assert!(s.inner.waiting.jobs.lock().is_empty());
    }

    #[test]
    fn a_panic_reaches_its_own_caller_and_undoes_only_its_write() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(5));
        let (outcomes, ran) = batch_of(&s, &["a", "boom", "c"]);
        assert!(ran.iter().all(|t| *t == ran[0]), "{ran:?}");
        assert!(outcomes[0].as_ref().unwrap().is_ok());
        let panic = outcomes[1].as_ref().unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"boom"));
        assert!(outcomes[2].as_ref().unwrap().is_ok());
        assert_eq!(values(&s), ["a", "c"]);
    }

    #[test]
    fn a_lone_write_that_fails_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(5));
        let e = s
            .write_shared(|tx| {
                tx.execute("INSERT INTO scratch (v) VALUES ('x')", [])
                    .map_err(map_err)?;
                Err::<(), _>(PortError::NotFound("x".into()))
            })
            .unwrap_err();
        assert_eq!(e, PortError::NotFound("x".into()));
        assert!(values(&s).is_empty());
        s.write_shared(|tx| {
            tx.execute("INSERT INTO scratch (v) VALUES ('y')", [])
                .map_err(map_err)
        })
        .unwrap();
        assert_eq!(values(&s), ["y"]);
    }

    /// Another connection holds SQLite's write lock (another process, in effect): a batch
    /// that meets it goes back to the queue and is retried; when the lock outlasts the
    /// budget, every caller gets `Busy` and nothing is left queued to run later.
    #[test]
    fn a_busy_database_retries_the_batch_and_leaves_nothing_queued_when_it_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_millis(1500));
        let other = rusqlite::Connection::open(dir.path().join("q.db")).unwrap();
        let write_lock = |hold: Duration| {
            other.execute_batch("BEGIN IMMEDIATE").unwrap();
            std::thread::scope(|scope| {
                let callers: Vec<_> = ["p", "q", "r"]
                    .into_iter()
                    .map(|v| {
                        let s = s.clone();
                        scope.spawn(move || {
                            s.write_shared(move |tx| {
                                tx.execute("INSERT INTO scratch (v) VALUES (?1)", [v])
                                    .map_err(map_err)
                                    .map(|_| ())
                            })
                        })
                    })
                    .collect();
                std::thread::sleep(hold);
                other.execute_batch("COMMIT").unwrap();
                callers
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
        };
        let short = write_lock(Duration::from_millis(300));
        assert!(short.iter().all(Result::is_ok), "{short:?}");
        assert_eq!(values(&s), ["p", "q", "r"]);

        let long = write_lock(Duration::from_millis(4000));
        assert!(
            long.iter().all(|r| matches!(r, Err(PortError::Busy(_)))),
            "{long:?}"
        );
        assert!(
            s.inner.waiting.jobs.lock().is_empty(),
            "nothing left to run later"
        );
        assert_eq!(values(&s), ["p", "q", "r"], "nothing of the refused writes");
    }
}
