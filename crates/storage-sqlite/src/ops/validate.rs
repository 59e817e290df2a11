//! `validate`: the eight infrastructure checks of the background plan, each answered pass,
//! warn, fail (or skip when an earlier check makes it meaningless) with a reason, plus a
//! short benchmark on a scratch file next to the database.
//!
//! Check 1 (the configuration loads) belongs to the application, which adds it with
//! [`ValidationReport::insert_config_check`]; this module runs checks 2 to 8 against the
//! file named by the [`SqliteOptions`]. Nothing is left written in the database: the
//! round trip runs in a transaction that is rolled back, the isolation probe only takes and
//! releases the write lock, and the benchmark uses its own file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use prismq_domain::ports::validation::{
    Benchmark, CheckResult, Outcome, ValidateOptions, ValidationReport, CHECK_NAMES,
};
use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock};
use prismq_domain::task::{NewTask, TaskType, WorkerId};
use prismq_domain::ClaimingStrategy;

use super::checks_db;
use super::checks_roundtrip;
use super::checks_runtime;
use crate::{SqliteOptions, SqliteStore};

fn timed(number: u8, f: impl FnOnce() -> CheckResult) -> CheckResult {
    let started = Instant::now();
    let mut r = f();
    r.number = number;
    r.name = CHECK_NAMES[usize::from(number) - 1];
    r.millis = started.elapsed().as_secs_f64() * 1000.0;
    r
}

/// Runs checks 2 to 8 on the database `options` names, then the benchmark if asked.
/// Never fails: every problem is a check result.
pub fn validate(options: &SqliteOptions, vopts: &ValidateOptions) -> ValidationReport {
    let mut checks = Vec::new();
    let mut opened = None;
    checks.push(timed(2, || match checks_db::open(options) {
        Ok((conn, result)) => {
            opened = Some(conn);
            result
        }
        Err(result) => result,
    }));
    let Some(mut conn) = opened else {
        let mut report = ValidationReport::not_run(
            options.path.clone(),
            vopts.quick,
            "not run: the database did not open (check 2)",
        );
        report.checks.retain(|c| c.number != 2);
        report.checks.insert(0, checks.remove(0));
        return report;
    };
    // Pragmas first (in report order they come after the schema): the other checks run on
    // a connection configured as the adapter configures its own.
    let pragmas = timed(4, || checks_db::pragmas(&conn, options));
    checks.push(timed(3, || checks_db::schema(&conn, vopts.quick)));
    checks.push(pragmas);
    checks.push(timed(5, || checks_roundtrip::round_trip(&mut conn)));
    checks.push(timed(6, || {
        checks_runtime::isolation(&mut conn, options, vopts.isolation_timeout)
    }));
    checks.push(timed(7, || checks_runtime::index_usage(&conn)));
    checks.push(timed(8, || checks_runtime::error_handling(conn, options)));
    let (benchmark, benchmark_error) = if vopts.benchmark {
        match run_benchmark(options, vopts.benchmark_tasks.max(1)) {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    ValidationReport {
        database: options.path.clone(),
        quick: vopts.quick,
        checks,
        benchmark,
        benchmark_error,
    }
}

/// A scratch file next to `db`, removed (with its -wal and -shm) on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn next_to(db: &Path) -> Scratch {
        let dir = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Scratch(dir.join(format!(
            ".prismq-validate-bench-{}-{nanos}.db",
            std::process::id()
        )))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn run_benchmark(options: &SqliteOptions, n: usize) -> Result<Benchmark, String> {
    let scratch = Scratch::next_to(&options.path);
    let mut bench_opts = options.clone();
    bench_opts.path = scratch.0.clone();
    bench_opts.migrate = true;
    let store = SqliteStore::open(bench_opts, Arc::new(SystemClock))
        .map_err(|e| format!("the benchmark could not create a scratch database: {e}"))?;
    let fail = |what: &str, e: prismq_domain::PortError| format!("benchmark {what} failed: {e}");
    let task_type = TaskType::new("validate_bench").map_err(|e| e.to_string())?;
    let worker = WorkerId::new("validate-bench").map_err(|e| e.to_string())?;
    let started = Instant::now();
    for i in 0..n {
        let task = NewTask::new(task_type.clone(), serde_json::json!({ "i": i }));
        store
            .enqueue_blocking(&task)
            .map_err(|e| fail("enqueue", e))?;
    }
    let inserts = started.elapsed();
    let request = ClaimRequest {
        worker,
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(300),
    };
    let started = Instant::now();
    let mut leases = Vec::with_capacity(n);
    while let Some(claimed) = store
        .claim_blocking(&request)
        .map_err(|e| fail("claim", e))?
    {
        leases.push(claimed.lease);
    }
    let claims = started.elapsed();
    if leases.len() != n {
        return Err(format!(
            "benchmark claimed {} of {n} tasks; the queue lost or hid tasks",
            leases.len()
        ));
    }
    let started = Instant::now();
    for lease in &leases {
        store
            .complete_blocking(lease, None)
            .map_err(|e| fail("complete", e))?;
    }
    let completes = started.elapsed();
    drop(store);
    drop(scratch);
    Ok(Benchmark {
        tasks: n,
        inserts_per_sec: rate(n, inserts),
        claims_per_sec: rate(n, claims),
        completes_per_sec: rate(n, completes),
    })
}
