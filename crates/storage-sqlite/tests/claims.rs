//! Claims on a real file: query plans use an index and never sort, no double claim under
//! threads and processes, and a killed process's claims are completed by another.

use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock, TaskQueue};
use prismq_domain::task::{NewTask, Priority, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, PortError, TaskStatus};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore, CLAIM_QUERIES};
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(path), Arc::new(SystemClock)).unwrap()
}

fn tt(s: &str) -> TaskType {
    TaskType::new(s).unwrap()
}

fn request(
    worker: &str,
    strategy: ClaimingStrategy,
    types: &[&str],
    lease: Duration,
) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new(worker).unwrap(),
        filter: ClaimFilter {
            task_types: types.iter().map(|t| tt(t)).collect(),
            region: None,
            only: None,
        },
        strategy,
        lease_for: lease,
    }
}

fn fill(store: &SqliteStore, n: usize, types: &[&str]) {
    let batch: Vec<NewTask> = (0..n)
        .map(|i| {
            NewTask::new(tt(types[i % types.len()]), json!({"i": i}))
                .priority(Priority::new((i % 10) as i64 + 1).unwrap())
        })
        .collect();
    for chunk in batch.chunks(1000) {
        store.enqueue_batch_blocking(chunk).unwrap();
    }
}

#[test]
fn every_claim_query_uses_an_index_and_never_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    fill(&store, 2000, &["a", "b", "c"]);
    store
        .with_connection(|c| {
            c.execute_batch("ANALYZE").unwrap();
            for (name, sql) in CLAIM_QUERIES {
                let n_params = sql.matches('?').count().max(sql.matches("?4").count());
                let args: Vec<rusqlite::types::Value> = (0..n_params.min(4))
                    .map(|i| {
                        if i == 0 {
                            rusqlite::types::Value::Text("a".into())
                        } else {
                            rusqlite::types::Value::Integer(5)
                        }
                    })
                    .collect();
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let plan: Vec<String> = stmt
                    .query_map(
                        rusqlite::params_from_iter(args.iter().take(stmt.parameter_count())),
                        |r| r.get::<_, String>(3),
                    )
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let text = plan.join(" | ");
                assert!(
                    text.contains("USING INDEX")
                        || text.contains("USING COVERING INDEX")
                        || text.contains("USING PRIMARY KEY")
                        || text.contains("USING INTEGER PRIMARY KEY (rowid=?)"),
                    "{name}: {text}"
                );
                assert!(!text.contains("TEMP B-TREE"), "{name} sorts: {text}");
                assert!(
                    !text.starts_with("SCAN task_queue") && !text.contains("SCAN task_queue "),
                    "{name} scans: {text}"
                );
            }
            Ok(())
        })
        .unwrap();
}

fn drain(
    store: SqliteStore,
    worker: String,
    strategy: ClaimingStrategy,
    seen: Arc<Mutex<Vec<i64>>>,
) -> Result<(), PortError> {
    let req = request(&worker, strategy, &[], Duration::from_secs(60));
    while let Some(c) = store.claim_blocking(&req)? {
        store.start_blocking(&c.lease)?;
        store.complete_blocking(&c.lease, None)?;
        seen.lock().unwrap().push(c.task.id.0);
    }
    Ok(())
}

#[test]
fn eight_threads_complete_ten_thousand_tasks_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    fill(&store, 10_000, &["a", "b"]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let strategies = ClaimingStrategy::ALL;
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (store, seen) = (store.clone(), seen.clone());
            std::thread::spawn(move || drain(store, format!("w{i}"), strategies[i % 4], seen))
        })
        .collect();
    for h in handles {
        h.join()
            .unwrap()
            .expect("no error, in particular no Busy, surfaces");
    }
    let seen = seen.lock().unwrap();
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 10_000, "every claim completed once");
    assert_eq!(unique.len(), 10_000, "no task claimed twice");
    let stats = store.stats_blocking().unwrap();
    assert_eq!(stats.total(TaskStatus::Completed), 10_000);
    assert_eq!(stats.total(TaskStatus::Queued), 0);
}

/// Two stores on one file (two writer connections, as two processes would have), four
/// draining threads and a reader polling stats throughout: the checkpoints still keep the
/// WAL bounded, on a quiet machine and on a loaded one (CI runs this beside the other
/// tests). Passive checkpoints alone can be starved by steady writers, and the WAL then grows
/// by several KB per task (~100 MB here); the escalations to TRUNCATE, in the background and
/// then by the writer itself past ~32 MB, keep it under 48 MB. The longest the WAL got is
/// what counts, sampled throughout: measured only at the end, after a truncation, this test
/// passed while the WAL reached 73–138 MB on the way.
#[test]
fn the_wal_stays_bounded_under_steady_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let (a, b) = (open(&path), open(&path));
    fill(&a, 30_000, &["a"]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let wal_path = dir.path().join("q.db-wal");
    let wal_len = move || std::fs::metadata(&wal_path).map_or(0, |m| m.len());
    // The reader also samples the WAL's length: a checkpoint that finally gets through
    // truncates it, so its length at the end says nothing about how far it grew.
    let reader = {
        let (store, done) = (b.clone(), done.clone());
        let wal_len = wal_len.clone();
        std::thread::spawn(move || {
            let mut longest = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                store.stats_blocking().unwrap();
                longest = longest.max(wal_len());
            }
            longest
        })
    };
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let seen = seen.clone();
            std::thread::spawn(move || drain(store, format!("w{i}"), ClaimingStrategy::Fifo, seen))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let wal = reader.join().unwrap().max(wal_len());
    assert_eq!(seen.lock().unwrap().len(), 30_000);
    assert!(
        wal <= 48 * 1024 * 1024,
        "the WAL grew to {wal} bytes over 30,000 tasks"
    );
}

/// Runs as a child process: drains the queue at PRISMQ_TEST_DB, printing each completed id.
/// With PRISMQ_TEST_HOLD set, claims that many tasks and then hangs until killed.
#[test]
#[ignore = "run as a child process by the multi-process tests"]
fn child_worker() {
    let Some(path) = std::env::var_os("PRISMQ_TEST_DB") else {
        return;
    };
    let store = open(Path::new(&path));
    let me = format!("proc-{}", std::process::id());
    // libtest prints "test child_worker ... " without a newline; start our lines afresh.
    println!();
    if let Some(hold) = std::env::var("PRISMQ_TEST_HOLD")
        .ok()
        .and_then(|h| h.parse::<usize>().ok())
    {
        let req = request(
            &me,
            ClaimingStrategy::Fifo,
            &[],
            Duration::from_millis(LEASE_MS),
        );
        for _ in 0..hold {
            let c = store.claim_blocking(&req).unwrap().unwrap();
            store.start_blocking(&c.lease).unwrap();
            println!("held {}", c.task.id.0);
        }
        println!("holding");
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    drain(store, me, ClaimingStrategy::Lifo, seen.clone()).unwrap();
    for id in seen.lock().unwrap().iter() {
        println!("done {id}");
    }
}

/// The holder's lease: long enough that a loaded machine still claims the free tasks first.
const LEASE_MS: u64 = 3000;

fn child(path: &Path, hold: Option<usize>) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "child_worker",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd.env("PRISMQ_TEST_DB", path);
    if let Some(h) = hold {
        cmd.env("PRISMQ_TEST_HOLD", h.to_string());
    }
    cmd.stdout(std::process::Stdio::piped());
    cmd
}

#[test]
fn four_processes_complete_every_task_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(&path);
    fill(&store, 4000, &["a"]);
    let children: Vec<_> = (0..4)
        .map(|_| child(&path, None).spawn().unwrap())
        .collect();
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(id) = line.strip_prefix("done ") {
                ids.push(id.parse::<i64>().unwrap());
            }
        }
    }
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 4000);
    assert_eq!(unique.len(), 4000);
    assert_eq!(
        store.stats_blocking().unwrap().total(TaskStatus::Completed),
        4000
    );
}

#[cfg(unix)]
#[test]
fn claims_of_a_killed_process_are_completed_by_another_after_the_lease_lapses() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(&path);
    fill(&store, 5, &["a"]);
    let mut holder = child(&path, Some(3)).spawn().unwrap();
    let mut held = Vec::new();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("held ") {
            held.push(id.parse::<i64>().unwrap());
        }
        if line == "holding" {
            break;
        }
    }
    assert_eq!(held.len(), 3);
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    let req = request(
        "rescuer",
        ClaimingStrategy::Fifo,
        &[],
        Duration::from_secs(60),
    );
    // Before the lease lapses only the two unclaimed tasks are available.
    let mut first = Vec::new();
    while let Some(c) = store.claim_blocking(&req).unwrap() {
        store.start_blocking(&c.lease).unwrap();
        store.complete_blocking(&c.lease, None).unwrap();
        first.push(c.task.id.0);
    }
    assert_eq!(first.len(), 2);
    std::thread::sleep(Duration::from_millis(LEASE_MS + 200));
    let mut rescued = Vec::new();
    while let Some(c) = store.claim_blocking(&req).unwrap() {
        assert_eq!(
            (c.task.attempts, c.task.lapses),
            (1, 1),
            "the killed attempt is given back and counted as a lapse"
        );
        store.start_blocking(&c.lease).unwrap();
        store.complete_blocking(&c.lease, None).unwrap();
        rescued.push(c.task.id.0);
    }
    rescued.sort_unstable();
    held.sort_unstable();
    assert_eq!(rescued, held);
    let log = store
        .log_blocking(prismq_domain::task::TaskId(held[0]))
        .unwrap();
    assert!(log
        .iter()
        .any(|r| r.event == prismq_domain::ports::TaskEvent::LeaseExpired));
    assert_eq!(
        store.stats_blocking().unwrap().total(TaskStatus::Completed),
        5
    );
}

#[tokio::test]
async fn async_port_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    let q: &dyn TaskQueue = &store;
    let e = q
        .enqueue(NewTask::new(tt("a"), json!({"x": 1})).idempotency_key("k"))
        .await
        .unwrap();
    let again = q
        .enqueue(NewTask::new(tt("a"), json!({"x": 1})).idempotency_key("k"))
        .await
        .unwrap();
    assert_eq!(again.id, e.id);
    assert!(again.duplicate && !e.duplicate);
    let c = q
        .claim(&request(
            "w",
            ClaimingStrategy::Lifo,
            &["a"],
            Duration::from_secs(5),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.task.id, e.id);
    assert_eq!(c.task.status, TaskStatus::Claimed);
    q.start(&c.lease).await.unwrap();
    q.complete(&c.lease, Some(json!({"ok": true})))
        .await
        .unwrap();
    let t = q.get(e.id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(t.summary, Some(json!({"ok": true})));
    assert!(matches!(
        q.complete(&c.lease, None).await,
        Err(PortError::LeaseLost { .. })
    ));
}
