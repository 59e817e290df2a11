//! Completions written together: the loops of one run that finish tasks at the same time
//! hand their completions (each with the loop's next claim) to whichever of them is free to
//! write, which writes them all with one
//! [`TaskQueue::complete_and_claim_many`](prismq_domain::ports::TaskQueue::complete_and_claim_many):
//! one transaction, one commit and the pages the tasks share written once, on SQLite.
//!
//! Nothing waits to fill a batch. A loop that finds nobody writing writes at once, what is
//! waiting then (its own item at least); loops that finish meanwhile queue behind it, and
//! when it is done one of them writes everything queued by then. One loop alone therefore
//! writes each completion as it comes, as it would without this; with several, a batch
//! holds the completions that arrived during the previous write.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{oneshot, Notify};

use prismq_domain::ports::{Handover, HandoverAnswer};
use prismq_domain::PortError;

/// Writes one batch: the store's answers, one per item in order, or the error that wrote
/// nothing (after whatever retries the caller's writer makes).
pub(crate) type WriteBatch<'a> = dyn Fn(Vec<Handover>) -> BatchFuture<'a> + Sync + 'a;

/// What [`WriteBatch`] returns.
pub(crate) type BatchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<HandoverAnswer>, PortError>> + Send + 'a>>;

/// The run's queue of completions waiting to be written, and who writes.
#[derive(Default)]
pub(crate) struct Handovers {
    state: Mutex<State>,
    /// Raised when a writer is done and completions are waiting: one waiting loop writes them.
    free: Notify,
}

#[derive(Default)]
struct State {
    /// A loop is writing a batch now.
    writing: bool,
    waiting: Vec<Handover>,
    replies: Vec<oneshot::Sender<HandoverAnswer>>,
}

impl Handovers {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `item` with whatever else is waiting (or has it written by the loop writing
    /// next) and returns its answer.
    pub(crate) async fn hand_over(&self, item: Handover, write: &WriteBatch<'_>) -> HandoverAnswer {
        let (reply, mut answer) = oneshot::channel();
        {
            let mut s = self.lock();
            s.waiting.push(item);
            s.replies.push(reply);
        }
        // Loops of this thread woken by the last batch's answers run before this one goes
        // on, so those about to hand over join this batch instead of waiting for the next.
        tokio::task::yield_now().await;
        loop {
            // Registered before the state is read, so a writer that ends in between still
            // wakes this loop.
            let free = self.free.notified();
            tokio::pin!(free);
            free.as_mut().enable();
            let answered = match answer.try_recv() {
                Ok(a) => Some(a),
                Err(oneshot::error::TryRecvError::Closed) => Some(Err(writer_gone())),
                Err(oneshot::error::TryRecvError::Empty) => None,
            };
            if let Some(a) = answered {
                self.pass_on();
                return a;
            }
            if let Some(batch) = self.take_batch() {
                self.write(write, batch).await;
                continue;
            }
            tokio::select! {
                biased;
                a = &mut answer => {
                    self.pass_on();
                    return a.unwrap_or_else(|_| Err(writer_gone()));
                }
                () = free => {}
            }
        }
    }

    /// Wakes a waiting loop when completions wait and nobody writes them: the wake-up this
    /// loop leaves with may have been the one meant to get them written.
    fn pass_on(&self) {
        let idle = {
            let s = self.lock();
            !s.writing && !s.waiting.is_empty()
        };
        if idle {
            self.free.notify_one();
        }
    }

    /// Everything waiting, with the right to write it; `None` when another loop is writing
    /// or nothing waits.
    fn take_batch(&self) -> Option<Batch<'_>> {
        let mut s = self.lock();
        if s.writing || s.waiting.is_empty() {
            return None;
        }
        s.writing = true;
        Some(Batch {
            owner: self,
            items: std::mem::take(&mut s.waiting),
            replies: std::mem::take(&mut s.replies),
        })
    }

    async fn write(&self, write: &WriteBatch<'_>, mut batch: Batch<'_>) {
        let answers = write(std::mem::take(&mut batch.items)).await;
        let replies = std::mem::take(&mut batch.replies);
        let answers = one_per_item(answers, replies.len());
        for (reply, a) in replies.into_iter().zip(answers) {
            // A loop that stopped waiting dropped its receiver: nothing to tell.
            let _ = reply.send(a);
        }
        // `batch` drops here: the right to write goes to a waiting loop.
    }
}

/// The store's answers to a batch of `n` items, one per item: as given, or the error that
/// wrote nothing (or an answer count that does not match, whose outcome is unknown) for
/// every item.
pub(crate) fn one_per_item(
    answers: Result<Vec<HandoverAnswer>, PortError>,
    n: usize,
) -> Vec<HandoverAnswer> {
    match answers {
        Ok(a) if a.len() == n => a,
        Ok(a) => {
            let e = PortError::Unavailable(format!(
                "the store answered {} of a batch of {n} completions; the others' outcome is unknown",
                a.len()
            ));
            vec![Err(e); n]
        }
        Err(e) => vec![Err(e); n],
    }
}

/// A batch being written. Dropped, it gives up the right to write and wakes a waiting loop;
/// dropped before its answers went out (the writing loop was stopped), its loops learn that
/// their completions' outcome is unknown.
struct Batch<'a> {
    owner: &'a Handovers,
    items: Vec<Handover>,
    replies: Vec<oneshot::Sender<HandoverAnswer>>,
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        for reply in self.replies.drain(..) {
            let _ = reply.send(Err(writer_gone()));
        }
        let more = {
            let mut s = self.owner.lock();
            s.writing = false;
            !s.waiting.is_empty()
        };
        if more {
            self.owner.free.notify_one();
        }
    }
}

fn writer_gone() -> PortError {
    PortError::Unavailable(
        "the worker loop writing this completion stopped before the store answered; the task's lease decides what becomes of it"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use prismq_domain::ports::{Handover, HandoverAnswer};
    use prismq_domain::{Lease, LeaseToken, PortError, TaskId, Timestamp, WorkerId};
    use tokio::sync::Notify;

    use super::{BatchFuture, Handovers};

    fn item(id: i64) -> Handover {
        Handover {
            lease: Lease {
                task_id: TaskId(id),
                token: LeaseToken(id),
                worker: WorkerId::new("w").unwrap(),
                expires_at: Timestamp::UNIX_EPOCH,
            },
            summary: None,
            next: None,
        }
    }

    /// What the fake store answers an item: its own id back, as a `LeaseLost`, so that each
    /// loop can tell its answer from the others'.
    fn answer(h: &Handover) -> HandoverAnswer {
        Err(PortError::LeaseLost {
            task_id: h.lease.task_id.0,
        })
    }

    fn id_of(a: &HandoverAnswer) -> i64 {
        match a {
            Err(PortError::LeaseLost { task_id }) => *task_id,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    /// A fake store's batch write that records the ids of each batch, and waits for `gate`
    /// first when given one (each write takes one permit).
    fn writer(
        batches: Arc<Mutex<Vec<Vec<i64>>>>,
        gate: Option<Arc<Notify>>,
    ) -> impl Fn(Vec<Handover>) -> BatchFuture<'static> + Sync {
        move |items| {
            let (batches, gate) = (batches.clone(), gate.clone());
            Box::pin(async move {
                batches
                    .lock()
                    .unwrap()
                    .push(items.iter().map(|h| h.lease.task_id.0).collect());
                if let Some(gate) = gate {
                    gate.notified().await;
                }
                Ok(items.iter().map(answer).collect())
            })
        }
    }

    #[tokio::test]
    async fn loops_that_hand_over_together_are_written_in_one_batch() {
        let group = Handovers::default();
        let batches = Arc::default();
        let write = writer(Arc::clone(&batches), None);
        let (a, b, c, d) = tokio::join!(
            group.hand_over(item(1), &write),
            group.hand_over(item(2), &write),
            group.hand_over(item(3), &write),
            group.hand_over(item(4), &write),
        );
        assert_eq!(
            [id_of(&a), id_of(&b), id_of(&c), id_of(&d)],
            [1, 2, 3, 4],
            "each loop gets its own answer"
        );
        assert_eq!(*batches.lock().unwrap(), vec![vec![1, 2, 3, 4]]);
    }

    #[tokio::test]
    async fn loops_arriving_during_a_write_are_written_together_next() {
        let group = Arc::new(Handovers::default());
        let batches: Arc<Mutex<Vec<Vec<i64>>>> = Arc::default();
        let gate = Arc::new(Notify::new());
        let spawn = |id: i64| {
            let (group, batches, gate) = (group.clone(), batches.clone(), gate.clone());
            tokio::spawn(async move {
                let write = writer(batches, Some(gate));
                id_of(&group.hand_over(item(id), &write).await)
            })
        };
        let first = spawn(1);
        while batches.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let (second, third) = (spawn(2), spawn(3));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(batches.lock().unwrap().len(), 1, "one write at a time");
        gate.notify_one();
        assert_eq!(first.await.unwrap(), 1);
        while batches.lock().unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        assert_eq!((second.await.unwrap(), third.await.unwrap()), (2, 3));
        assert_eq!(*batches.lock().unwrap(), vec![vec![1], vec![2, 3]]);
    }

    #[tokio::test]
    async fn a_writer_stopped_mid_write_answers_its_batch_and_lets_the_next_loop_write() {
        let group = Arc::new(Handovers::default());
        let batches: Arc<Mutex<Vec<Vec<i64>>>> = Arc::default();
        let writers: Arc<Mutex<Vec<i64>>> = Arc::default();
        let gate = Arc::new(Notify::new());
        let spawn = |id: i64| {
            let (group, batches, gate) = (group.clone(), batches.clone(), gate.clone());
            let writers = writers.clone();
            tokio::spawn(async move {
                let inner = writer(batches, Some(gate));
                let write = move |items: Vec<Handover>| -> BatchFuture<'static> {
                    writers.lock().unwrap().push(id);
                    inner(items)
                };
                group.hand_over(item(id), &write).await
            })
        };
        // 1 and 2 hand over together: one of them writes both and waits at the gate.
        let mut loops = vec![(1, spawn(1)), (2, spawn(2))];
        while batches.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(batches.lock().unwrap()[0], vec![1, 2]);
        let three = spawn(3);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // The writer is stopped: the other loop learns that its completion's outcome is
        // unknown, and 3, waiting behind them, writes next. The other loop is woken first
        // and leaves with its answer; the wake-up must reach 3 all the same.
        let first_writer = writers.lock().unwrap()[0];
        let at = loops
            .iter()
            .position(|(id, _)| *id == first_writer)
            .unwrap();
        let (_, stopped) = loops.remove(at);
        stopped.abort();
        let (_, other) = loops.remove(0);
        let answer = other.await.expect("the other loop is answered");
        assert!(
            matches!(&answer, Err(PortError::Unavailable(m)) if m.contains("stopped before the store answered")),
            "{answer:?}"
        );
        // A lost wake-up would leave 3 waiting for ever: give it ten seconds.
        let written = async {
            while batches.lock().unwrap().len() < 2 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), written)
            .await
            .expect("3 is written once the stopped writer is gone");
        gate.notify_one();
        assert_eq!(id_of(&three.await.unwrap()), 3);
        assert_eq!(*batches.lock().unwrap(), vec![vec![1, 2], vec![3]]);
        assert_eq!(writers.lock().unwrap()[1], 3);
    }
}
