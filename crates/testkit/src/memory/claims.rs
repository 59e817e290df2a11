//! The claim for `MemoryStore`: rescue lapsed leases first (the lapsed attempt given back,
//! the lapse counted), then order queued tasks by the strategy exactly as
//! `prismq_domain::claiming` documents.

use prismq_domain::claiming::pick_weighted_level;
use prismq_domain::lease::{lapse_log_message, lapsed_dead_letter_message, MAX_LAPSES};
use prismq_domain::ports::{ClaimFilter, ClaimRequest, ClaimedTask, LogLevel, TaskEvent};
use prismq_domain::{
    ClaimingStrategy, Lease, LeaseToken, Priority, Task, TaskId, TaskStatus, Timestamp,
};
use rand::Rng;

use super::{add, MemoryStore, State};

/// Whether a worker with `filter` may take `task` (type, region and `only`).
pub(super) fn matches(filter: &ClaimFilter, task: &Task) -> bool {
    if filter.only.is_some_and(|id| id != task.id) {
        return false;
    }
    let type_ok = filter.task_types.is_empty() || filter.task_types.contains(&task.task_type);
    let region_ok = match (&task.compatibility.region, &filter.region) {
        (None, _) => true,
        (Some(need), Some(have)) => need.eq_ignore_ascii_case(have.trim()),
        (Some(_), None) => false,
    };
    type_ok && region_ok
}

/// A random, non-zero fencing token.
fn fresh_token() -> LeaseToken {
    let mut rng = rand::thread_rng();
    loop {
        let t: i64 = rng.gen();
        if t != 0 {
            return LeaseToken(t);
        }
    }
}

impl MemoryStore {
    pub(super) fn claim_next(&self, request: &ClaimRequest) -> Option<ClaimedTask> {
        let now = self.now();
        let mut st = self.state();
        loop {
            // Rescue: the oldest lapsed lease first (ties by id).
            let lapsed = st
                .tasks
                .values()
                .filter(|t| t.status.is_leased() && matches(&request.filter, t))
                .filter_map(|t| t.lease_expires_at.filter(|&e| e <= now).map(|e| (e, t.id)))
                .min();
            let Some((_, id)) = lapsed else { break };
            // The lapsed attempt is given back and the lapse counted.
            let task = st.tasks.get_mut(&id)?;
            task.attempts = task.attempts.saturating_sub(1);
            task.lapses += 1;
            task.updated_at = now;
            let lapses = task.lapses;
            let dead = lapses >= MAX_LAPSES;
            st.log(
                id,
                now,
                LogLevel::Warn,
                TaskEvent::LeaseExpired,
                lapse_log_message(lapses, dead),
            );
            if dead {
                dead_letter_lapsed(&mut st, id, now);
                continue;
            }
            return take(&mut st, id, request, now);
        }
        let id = pick_queued(&st, request, now)?;
        take(&mut st, id, request, now)
    }
}

/// Dead-letters a rescued task whose lapses reached `MAX_LAPSES`.
fn dead_letter_lapsed(st: &mut State, id: TaskId, now: Timestamp) {
    let Some(task) = st.tasks.get_mut(&id) else {
        return;
    };
    let msg = lapsed_dead_letter_message(task.lapses, task.claimed_by.as_ref().map(|w| w.as_str()));
    task.status = TaskStatus::Failed;
    task.lease_token = None;
    task.lease_expires_at = None;
    task.finished_at = Some(now);
    task.updated_at = now;
    task.last_error = Some(msg.clone());
    st.log(id, now, LogLevel::Error, TaskEvent::Failed, msg);
}

/// The queued task `request`'s strategy picks, if any is eligible.
fn pick_queued(st: &State, request: &ClaimRequest, now: Timestamp) -> Option<TaskId> {
    let eligible = st.tasks.values().filter(|t| {
        t.status == TaskStatus::Queued && t.run_after <= now && matches(&request.filter, t)
    });
    let oldest = |a: &&Task, b: &&Task| (a.run_after, a.id).cmp(&(b.run_after, b.id));
    let chosen = match request.strategy {
        ClaimingStrategy::Fifo => eligible.min_by(oldest),
        ClaimingStrategy::Lifo => eligible.max_by(oldest),
        ClaimingStrategy::Priority => {
            eligible.min_by(|a, b| b.priority.cmp(&a.priority).then_with(|| oldest(a, b)))
        }
        ClaimingStrategy::WeightedRandom => {
            let candidates: Vec<&Task> = eligible.collect();
            let mut levels: Vec<Priority> = candidates.iter().map(|t| t.priority).collect();
            levels.sort_unstable();
            levels.dedup();
            let level = pick_weighted_level(&levels, rand::thread_rng().gen())?;
            candidates
                .into_iter()
                .filter(|t| t.priority == level)
                .min_by(oldest)
        }
    };
    chosen.map(|t| t.id)
}

/// Leases task `id` to the requester: a new attempt with a fresh token.
fn take(st: &mut State, id: TaskId, request: &ClaimRequest, now: Timestamp) -> Option<ClaimedTask> {
    let token = fresh_token();
    let expires_at = add(now, request.lease_for);
    st.started.remove(&id);
    let task = st.tasks.get_mut(&id)?;
    task.status = TaskStatus::Claimed;
    task.attempts += 1;
    task.claimed_by = Some(request.worker.clone());
    task.lease_token = Some(token);
    task.lease_expires_at = Some(expires_at);
    task.updated_at = now;
    let task = task.clone();
    st.log(
        id,
        now,
        LogLevel::Info,
        TaskEvent::Claimed,
        format!("claimed by {} (attempt {})", request.worker, task.attempts),
    );
    Some(ClaimedTask {
        lease: Lease {
            task_id: id,
            token,
            worker: request.worker.clone(),
            expires_at,
        },
        task,
    })
}
