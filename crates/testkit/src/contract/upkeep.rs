//! Obligations of `Upkeep`: each engine performs exactly what its [`UpkeepAnswers`] declare
//! (SQLite everything, PostgreSQL the prune of result sightings, the in-memory fake nothing)
//! and answers the typed "not supported" (`StorageProblem::Unsupported`) for the rest, with
//! nothing deleted. A prune deletes exactly what is older than its cutoffs, a batch size
//! outside 1–10,000 is `Invalid` with nothing deleted, and a backup is a checked copy.
//! A subject without upkeep (a remote client) passes over them.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::upkeep::{PruneOptions, PruneReport, VacuumMode};
use prismq_domain::ports::{StorageError, StorageProblem, Upkeep};
use prismq_domain::{ClaimingStrategy, PortError, TaskId};

use super::support::setup;
use super::{ContractEnv, PruneScope, Subject, UpkeepAnswers};
use crate::fixtures::{content_item, new_task};
use crate::FakeClock;

/// The subject's upkeep after its store was used once (a store that migrates on first use
/// has migrated).
async fn upkeep(s: &Subject) -> Option<(Arc<dyn Upkeep>, UpkeepAnswers)> {
    let upkeep = s.upkeep.clone()?;
    s.queue.stats().await.expect("stats");
    Some(upkeep)
}

/// Asserts the typed "not supported" answer.
fn assert_unsupported<T: Debug>(what: &str, r: Result<T, StorageError>) {
    match r {
        Err(e) => assert_eq!(e.problem(), StorageProblem::Unsupported, "{what}: {e}"),
        Ok(v) => panic!("{what}: expected \"not supported\", got {v:?}"),
    }
}

/// A prune with no cutoff, no pause and the default batch size.
fn prune_options() -> PruneOptions {
    PruneOptions {
        pause: Duration::ZERO,
        ..PruneOptions::default()
    }
}

/// One completed task (finished at the clock's start) and one queued; the clock then moves
/// an hour on. Returns (completed, queued).
async fn finished_and_queued(s: &Subject, clock: &FakeClock) -> (TaskId, TaskId) {
    let done = s.add(new_task("a")).await;
    let queued = s.add(new_task("a")).await;
    let c = s.claim(ClaimingStrategy::Fifo).await.expect("claim");
    assert_eq!(c.task.id, done);
    s.queue.start(&c.lease).await.expect("start");
    s.queue.complete(&c.lease, None).await.expect("complete");
    clock.advance(Duration::from_secs(3600));
    (done, queued)
}

/// One video seen three times an hour apart by the same source; the clock then moves an hour
/// on (so all three sightings are older than "now").
async fn three_sightings(s: &Subject, clock: &FakeClock) {
    for views in [10, 11, 12] {
        s.results
            .save(None, &[content_item("youtube_api", "aaaaaaaaaaa", views)])
            .await
            .expect("save");
        clock.advance(Duration::from_secs(3600));
    }
}

/// `check` passes on a store in use where the engine keeps a file (and `database_file` names
/// it); elsewhere it is "not supported" and there is no file.
pub async fn check_answers_as_declared(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    let Some((upkeep, answers)) = upkeep(&s).await else {
        return;
    };
    assert_eq!(upkeep.database_file().is_some(), answers.files);
    if answers.files {
        upkeep.check().await.expect("check");
    } else {
        assert_unsupported("check", upkeep.check().await);
    }
}

/// A prune of completed tasks deletes exactly the tasks finished before the cutoff, with
/// their log entries (its log is then not found), where the engine prunes everything; elsewhere it is "not supported"
/// and every task stays.
pub async fn prune_of_finished_tasks_answers_as_declared(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let Some((upkeep, answers)) = upkeep(&s).await else {
        return;
    };
    let (done, queued) = finished_and_queued(&s, &clock).await;
    let logged = s.events(done).await.len() as u64;
    let options = PruneOptions {
        completed_before: Some(clock.now()),
        ..prune_options()
    };
    let result = upkeep.prune(&options).await;
    if answers.prune == PruneScope::Everything {
        let report = result.expect("prune");
        assert_eq!(
            (report.completed, report.failed, report.cancelled),
            (1, 0, 0),
            "{report:?}"
        );
        // An engine may keep a task's first entry in the task's own row (SQLite keeps
        // `enqueued` there), so the separate entries deleted are between 1 and all of them.
        assert!((1..=logged).contains(&report.task_logs), "{report:?}");
        assert_eq!(
            (report.sightings, &report.archive),
            (0, &None),
            "{report:?}"
        );
        assert!(
            matches!(s.queue.get(done).await, Err(PortError::NotFound(_))),
            "the completed task is still there"
        );
        assert!(
            matches!(s.logs.list(done).await, Err(PortError::NotFound(_))),
            "the completed task's log is still there"
        );
    } else {
        assert_unsupported("prune of completed tasks", result);
        assert_eq!(s.task(done).await.id, done);
    }
    assert_eq!(s.task(queued).await.id, queued);
}

/// A prune of sightings older than the cutoff keeps each record's first and latest sighting
/// by its source (three sightings: one deleted) and deletes no task, where the engine prunes
/// sightings; elsewhere it is "not supported".
pub async fn prune_of_sightings_keeps_first_and_latest_or_is_unsupported(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let Some((upkeep, answers)) = upkeep(&s).await else {
        return;
    };
    let (done, _) = finished_and_queued(&s, &clock).await;
    three_sightings(&s, &clock).await;
    let options = PruneOptions {
        sightings_before: Some(clock.now()),
        ..prune_options()
    };
    let result = upkeep.prune(&options).await;
    if answers.prune == PruneScope::Nothing {
        assert_unsupported("prune of sightings", result);
    } else {
        let report = result.expect("prune");
        assert_eq!(
            report,
            PruneReport {
                sightings: 1,
                batches: report.batches,
                ..PruneReport::default()
            }
        );
        let again = upkeep.prune(&options).await.expect("prune again");
        assert_eq!(again.sightings, 0, "{again:?}");
    }
    assert_eq!(s.task(done).await.id, done);
}

/// A batch size of 0 or 10,001 is `Invalid` and deletes nothing (a prune after it still
/// finds its sighting), where the engine prunes; elsewhere it is "not supported".
pub async fn prune_refuses_a_batch_size_out_of_range(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let Some((upkeep, answers)) = upkeep(&s).await else {
        return;
    };
    three_sightings(&s, &clock).await;
    for batch_size in [0, 10_001] {
        let options = PruneOptions {
            sightings_before: Some(clock.now()),
            batch_size,
            ..prune_options()
        };
        let result = upkeep.prune(&options).await;
        if answers.prune == PruneScope::Nothing {
            assert_unsupported("prune", result);
        } else {
            let e = result.expect_err("batch size out of range");
            assert_eq!(e.problem(), StorageProblem::Invalid, "{e}");
            assert!(e.to_string().contains("batch size"), "{e}");
        }
    }
    if answers.prune != PruneScope::Nothing {
        let options = PruneOptions {
            sightings_before: Some(clock.now()),
            ..prune_options()
        };
        let report = upkeep.prune(&options).await.expect("prune");
        assert_eq!(report.sightings, 1, "{report:?}");
    }
}

/// Checkpoint, optimize and both vacuums run where the engine keeps a file (the vacuums
/// report their mode, a full one leaves auto_vacuum incremental) and the store reads as
/// before; elsewhere each is "not supported".
pub async fn checkpoint_optimize_and_vacuum_answer_as_declared(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let Some((upkeep, answers)) = upkeep(&s).await else {
        return;
    };
    finished_and_queued(&s, &clock).await;
    let before = s.all_tasks().await;
    if answers.files {
        let c = upkeep.checkpoint().await.expect("checkpoint");
        assert!(c.checkpointed_frames <= c.wal_frames, "{c:?}");
        upkeep.optimize().await.expect("optimize");
        let inc = upkeep
            .vacuum(VacuumMode::Incremental { pages: None })
            .await
            .expect("incremental vacuum");
        assert_eq!(inc.mode, "incremental", "{inc:?}");
        let full = upkeep.vacuum(VacuumMode::Full).await.expect("full vacuum");
        assert_eq!(
            (full.mode, full.ran, full.auto_vacuum_after),
            ("full", true, "incremental"),
            "{full:?}"
        );
    } else {
        assert_unsupported("checkpoint", upkeep.checkpoint().await);
        assert_unsupported("optimize", upkeep.optimize().await);
        assert_unsupported(
            "incremental vacuum",
            upkeep.vacuum(VacuumMode::Incremental { pages: None }).await,
        );
        assert_unsupported("full vacuum", upkeep.vacuum(VacuumMode::Full).await);
    }
    assert_eq!(s.all_tasks().await, before);
}

/// A backup to a new path writes a copy whose integrity check is `ok` and whose size is the
/// one reported, where the engine keeps a file; elsewhere it is "not supported" and writes
/// nothing.
pub async fn backup_writes_a_checked_copy_or_is_unsupported(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let Some((upkeep, answers)) = upkeep(&s).await else {
        return;
    };
    finished_and_queued(&s, &clock).await;
    let out = std::env::temp_dir().join(format!(
        "prismq-contract-backup-{}-{}.db",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let result = upkeep.backup(&out).await;
    if answers.files {
        let report = result.expect("backup");
        let size = std::fs::metadata(&out).map(|m| m.len());
        std::fs::remove_file(&out).expect("remove the backup");
        assert_eq!(report.path, out);
        assert_eq!(report.integrity, "ok", "{report:?}");
        assert!(report.pages > 0, "{report:?}");
        assert_eq!(size.expect("backup file"), report.bytes);
    } else {
        assert_unsupported("backup", result);
        assert!(!out.exists(), "a refused backup wrote {}", out.display());
    }
}
