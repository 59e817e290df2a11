//! The end state every reliability scenario must reach, read straight from the SQLite file:
//! no task left in flight, every task completed exactly once or dead-lettered by policy,
//! every claim ended exactly one way (completed, failed, retried, deferred, released, or its
//! lease lapsed), attempts and lapses that match the log, no task dead-lettered by other
//! processes' crashes alone unless its lease lapsed `MAX_LAPSES` times, one results row per
//! distinct video, the kept counts equal to the real ones, and a clean
//! `PRAGMA integrity_check`.

use std::collections::{BTreeMap, BTreeSet};

use prismq_domain::lease::MAX_LAPSES;

use super::Sandbox;

/// What the scenario allows for tasks whose videos are all ordinary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrdinaryFailures {
    /// None: an ordinary task's handler never fails, and killed workers' lapsed leases give
    /// their attempts back, so every ordinary task completes.
    Never,
    /// A dead letter whose attempts were used up by its own failures (a retryable store
    /// error may have been recorded, e.g. while the disk was full), or one whose lease
    /// lapsed `MAX_LAPSES` times.
    AttemptsExhausted,
}

/// The figures of a verified run.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub tasks: usize,
    pub completed: usize,
    pub dead_poison: usize,
    pub dead_flaky: usize,
    /// Dead-lettered because the lease lapsed `MAX_LAPSES` times.
    pub dead_lease_lapsed: usize,
    pub dead_other: usize,
    /// Ordinary (neither poisoned nor flaky) tasks dead-lettered although their own handler
    /// never failed: only other processes' crashes (lapses) ended them.
    pub dead_healthy: usize,
    /// Lapses counted on the rows (equal to the `lease_expired` entries).
    pub lapses: i64,
    /// Tasks allowed one attempt whose lease lapsed at least once and that still completed.
    pub single_attempt_lapsed_completed: usize,
    pub claims: i64,
    pub lease_expired_events: i64,
    pub retried_events: i64,
    pub results: i64,
    pub metric_snapshots: i64,
}

#[derive(Debug)]
struct Row {
    id: i64,
    status: String,
    attempts: i64,
    max_attempts: i64,
    lapses: i64,
    last_error: Option<String>,
    videos: Vec<String>,
}

/// Checks the final state and returns its figures. Panics with the first broken rule.
pub fn verify(s: &Sandbox, ordinary: OrdinaryFailures) -> Figures {
    let c = s.sql();
    let integrity: Vec<String> = c
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");
    let fk: i64 = c
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk, 0, "foreign key violations");

    let rows: Vec<Row> = c
        .prepare(
            "SELECT id, CASE status WHEN 0 THEN 'queued' WHEN 1 THEN 'claimed' WHEN 2 THEN 'running' WHEN 3 THEN 'completed' WHEN 4 THEN 'failed' WHEN 5 THEN 'cancelled' END, attempts, max_attempts, last_error, params, lapses FROM task_queue ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            let params: String = r.get(5)?;
            let v: serde_json::Value = serde_json::from_str(&params).unwrap();
            Ok(Row {
                id: r.get(0)?,
                status: r.get(1)?,
                attempts: r.get(2)?,
                max_attempts: r.get(3)?,
                lapses: r.get(6)?,
                last_error: r.get(4)?,
                videos: v["videos"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();

    // Event counts per task.
    let mut events: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    let mut stmt = c
        .prepare("SELECT task_id, event, count(*) FROM task_log_entries GROUP BY task_id, event")
        .unwrap();
    let mut q = stmt.query([]).unwrap();
    while let Some(r) = q.next().unwrap() {
        events
            .entry(r.get(0).unwrap())
            .or_default()
            .insert(r.get(1).unwrap(), r.get(2).unwrap());
    }
    let ev = |id: i64, name: &str| {
        events
            .get(&id)
            .and_then(|m| m.get(name))
            .copied()
            .unwrap_or(0)
    };

    let mut f = Figures {
        tasks: rows.len(),
        ..Figures::default()
    };
    let mut must_have: BTreeSet<String> = BTreeSet::new();
    let mut may_have: BTreeSet<String> = BTreeSet::new();
    for t in &rows {
        let id = t.id;
        assert!(
            t.status == "completed" || t.status == "failed",
            "task {id} left {} (attempts {}): {:?}",
            t.status,
            t.attempts,
            events.get(&id)
        );
        let error = t.last_error.clone().unwrap_or_default();
        // Dead-lettered because its lease lapsed MAX_LAPSES times (not by its own failure).
        let lapse_dead = t.status == "failed" && error.starts_with("its lease lapsed ");
        // Every claim ended exactly one way; a lapse-dead letter's `failed` entry ends no claim.
        let own_failed = ev(id, "failed") - i64::from(lapse_dead);
        assert_eq!(
            ev(id, "claimed"),
            ev(id, "completed")
                + own_failed
                + ev(id, "retried")
                + ev(id, "deferred")
                + ev(id, "released")
                + ev(id, "lease_expired"),
            "task {id}: a claim that ended no way, or two ways: {:?}",
            events.get(&id)
        );
        assert_eq!(
            t.lapses,
            ev(id, "lease_expired"),
            "task {id}: lapses do not match its log {:?}",
            events.get(&id)
        );
        assert_eq!(
            t.attempts,
            ev(id, "claimed") - ev(id, "released") - ev(id, "deferred") - ev(id, "lease_expired"),
            "task {id}: attempts do not match its log (a lapse gives its attempt back) {:?}",
            events.get(&id)
        );
        assert!(
            t.attempts <= t.max_attempts,
            "task {id}: {} attempts of {}",
            t.attempts,
            t.max_attempts
        );
        assert!(
            t.lapses <= i64::from(MAX_LAPSES),
            "task {id}: {} lapses",
            t.lapses
        );
        f.claims += ev(id, "claimed");
        f.lease_expired_events += ev(id, "lease_expired");
        f.retried_events += ev(id, "retried");
        f.lapses += t.lapses;
        let poison = t.videos.iter().any(|v| v.starts_with("poison"));
        let flaky = t.videos.iter().any(|v| v.starts_with("flaky"));
        let own_failures = own_failed + ev(id, "retried");
        if t.status == "completed" {
            assert!(!poison && !flaky, "task {id} completed with a bad video");
            assert_eq!(ev(id, "completed"), 1, "task {id} completed events");
            assert_eq!(ev(id, "failed"), 0, "task {id} both completed and failed");
            f.completed += 1;
            if t.max_attempts == 1 && t.lapses > 0 {
                f.single_attempt_lapsed_completed += 1;
            }
            must_have.extend(t.videos.iter().cloned());
        } else {
            assert_eq!(ev(id, "completed"), 0, "task {id} failed after completing");
            assert_eq!(ev(id, "failed"), 1, "task {id} dead-lettered twice");
            if lapse_dead {
                assert_eq!(t.lapses, i64::from(MAX_LAPSES), "task {id}: {error}");
            } else {
                assert!(
                    own_failures >= 1,
                    "task {id} dead-lettered without a failure of its own: {error} {:?}",
                    events.get(&id)
                );
            }
            if !poison && !flaky && own_failures == 0 {
                f.dead_healthy += 1;
            }
            if poison && !lapse_dead {
                assert!(error.contains("exit 2"), "task {id}: {error}");
                f.dead_poison += 1;
            } else if flaky && !lapse_dead {
                assert_eq!(t.attempts, t.max_attempts, "task {id}: {error}");
                assert!(error.contains("429"), "task {id}: {error}");
                f.dead_flaky += 1;
            } else {
                assert_eq!(
                    ordinary,
                    OrdinaryFailures::AttemptsExhausted,
                    "task {id} dead-lettered: {error} {:?}",
                    events.get(&id)
                );
                if lapse_dead {
                    f.dead_lease_lapsed += 1;
                } else {
                    assert_eq!(t.attempts, t.max_attempts, "task {id}: {error}");
                    f.dead_other += 1;
                }
            }
        }
        if !poison && !flaky {
            may_have.extend(t.videos.iter().cloned());
        }
    }

    // One row per distinct video: every completed task's videos are stored, nothing else
    // than what some ordinary task asked for, and never twice.
    let dupes: i64 = c
        .query_row(
            "SELECT count(*) FROM (SELECT 1 FROM results GROUP BY platform, source_id HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dupes, 0, "duplicate results rows");
    let stored: BTreeSet<String> = c
        .prepare("SELECT source_id FROM results WHERE last_source = 'youtube_api'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let missing: Vec<&String> = must_have.difference(&stored).take(5).collect();
    assert!(
        missing.is_empty(),
        "completed tasks' videos not stored: {missing:?}"
    );
    let stray: Vec<&String> = stored.difference(&may_have).take(5).collect();
    assert!(stray.is_empty(), "results no task asked for: {stray:?}");
    f.results = i64::try_from(stored.len()).unwrap();
    f.metric_snapshots = c
        .query_row("SELECT count(*) FROM result_metrics", [], |r| r.get(0))
        .unwrap();

    // The kept counts (the code's on insert and status change, the trigger's on delete)
    // agree with the table.
    let drift: i64 = c
        .query_row(
            "SELECT count(*) FROM (
               SELECT type_id, status, count(*) AS n FROM task_queue GROUP BY type_id, status
               EXCEPT SELECT type_id, status, n FROM queue_counts WHERE n > 0)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(drift, 0, "queue_counts drifted from task_queue");
    f
}
