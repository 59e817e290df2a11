//! What a store's `validate` reports: the eight infrastructure checks (configuration,
//! database, schema integrity, pragmas, round trip, transaction isolation, index usage, error
//! handling), each pass, warn, fail or skip with a reason, and a short benchmark. Every
//! engine answers with these types through [`super::SchemaAdmin::validate`]; check 1
//! (the configuration loads) belongs to the application.

use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// The checks by number (index + 1).
pub const CHECK_NAMES: [&str; 8] = [
    "configuration",
    "database",
    "schema integrity",
    "pragmas",
    "round trip",
    "transaction isolation",
    "index usage",
    "error handling",
];

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything as expected.
    Pass,
    /// Not run, because an earlier check failed in a way that makes it meaningless.
    Skip,
    /// Works, but something deserves attention (the reason says what).
    Warn,
    /// Broken; the reason says what to do.
    Fail,
}

impl Outcome {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Skip => "skip",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// 1 to 8, as in [`CHECK_NAMES`].
    pub number: u8,
    /// Its name.
    pub name: &'static str,
    /// Pass, warn, fail or skip.
    pub outcome: Outcome,
    /// One line: what was found and, unless it passed, what to do.
    pub reason: String,
    /// Supporting facts (values read, query plans, problems beyond the first).
    pub details: Vec<String>,
    /// How long it took, in milliseconds.
    pub millis: f64,
}

impl CheckResult {
    /// A result for check `number` (1–8).
    pub fn new(number: u8, outcome: Outcome, reason: impl Into<String>) -> Self {
        let name = CHECK_NAMES
            .get(usize::from(number).saturating_sub(1))
            .copied()
            .unwrap_or("unknown");
        CheckResult {
            number,
            name,
            outcome,
            reason: reason.into(),
            details: Vec::new(),
            millis: 0.0,
        }
    }

    /// The same result with `details`.
    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}

/// Rates measured on a scratch database in the same directory as the real one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Benchmark {
    /// Tasks enqueued, claimed and completed.
    pub tasks: usize,
    /// Single-task enqueues per second (one transaction each).
    pub inserts_per_sec: f64,
    /// Claims per second (FIFO, one transaction each).
    pub claims_per_sec: f64,
    /// Completions per second (one transaction each).
    pub completes_per_sec: f64,
}

/// What [`super::SchemaAdmin::validate`] does beyond the checks.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// `quick_check` instead of `integrity_check`, and a smaller benchmark.
    pub quick: bool,
    /// Run the benchmark.
    pub benchmark: bool,
    /// Tasks in the benchmark (default 500; 100 with `quick`).
    pub benchmark_tasks: usize,
    /// How long the isolation probe's second connection waits for the lock (default 200 ms).
    pub isolation_timeout: Duration,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            quick: false,
            benchmark: true,
            benchmark_tasks: 500,
            isolation_timeout: Duration::from_millis(200),
        }
    }
}

impl ValidateOptions {
    /// Defaults for `quick` or the full run.
    pub fn new(quick: bool) -> Self {
        ValidateOptions {
            quick,
            benchmark_tasks: if quick { 100 } else { 500 },
            ..ValidateOptions::default()
        }
    }
}

/// Everything [`super::SchemaAdmin::validate`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationReport {
    /// The database checked.
    pub database: PathBuf,
    /// Whether `quick_check` was used.
    pub quick: bool,
    /// The checks, by number.
    pub checks: Vec<CheckResult>,
    /// The benchmark, when it ran.
    pub benchmark: Option<Benchmark>,
    /// Why the benchmark did not run, when it was asked for and could not.
    pub benchmark_error: Option<String>,
}

impl ValidationReport {
    /// A report where checks 2–8 were not run because of `reason` (the configuration did not
    /// load, so the database is unknown).
    pub fn not_run(database: PathBuf, quick: bool, reason: &str) -> Self {
        ValidationReport {
            database,
            quick,
            checks: (2..=8)
                .map(|n| CheckResult::new(n, Outcome::Skip, reason))
                .collect(),
            benchmark: None,
            benchmark_error: None,
        }
    }

    /// Puts check 1 (configuration) first.
    pub fn insert_config_check(&mut self, check: CheckResult) {
        self.checks.retain(|c| c.number != 1);
        self.checks.insert(0, check);
    }

    /// True when no check failed (warnings and skips allowed).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }

    /// The worst outcome (fail > warn > skip > pass).
    pub fn worst(&self) -> Outcome {
        self.checks
            .iter()
            .map(|c| c.outcome)
            .max()
            .unwrap_or(Outcome::Pass)
    }

    /// The result of check `number`, if present.
    pub fn check(&self, number: u8) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.number == number)
    }
}
