//! The gate: which task types the loops of one process may claim right now. It holds a type
//! back while its circuit breaker is open (its runs kept failing transiently) or while a
//! quota bucket its handler charges is spent, so an outage or a spent quota costs no
//! attempts and no claims.
//!
//! **Circuit breaker, per task type, shared by every loop of the run.** Each finished
//! attempt gives a `Verdict`: the source answered (success, a permanent error, a
//! deferral), failed transiently (a `Retryable` error or the handler's time limit), or
//! neither (a panic, a lost lease, a release). After [`BreakerSettings::threshold`]
//! consecutive transient failures the breaker opens for [`BreakerSettings::cool_down`]: the
//! type is not claimed. Then it is half-open: one claim of the type (the probe) is let
//! through; if the source answers, the breaker closes; if it fails transiently again, it
//! opens for twice the previous cool-down, up to [`BreakerSettings::max_cool_down`]. Any
//! answer closes it, whichever attempt gives it.
//!
//! **Quota holds.** With a quota ledger, the gate reads [`QuotaLedger::usage`] at most once
//! a [`QUOTA_REFRESH`] (and again right after one of its attempts was deferred) and holds
//! back every type whose handler declares (see
//! [`prismq_domain::TaskHandler::quota_buckets`]) a bucket whose `exhausted_until` is ahead.
//!
//! A run limited to one task (`prismq collect`) is not gated: it claims its task, which is
//! deferred (and says so) when its quota is spent.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use prismq_domain::ports::{HeldType, HoldReason, QuotaLedger};
use prismq_domain::{TaskId, TaskType, Timestamp};

/// How often the gate reads the quota ledger's usage, at most.
pub const QUOTA_REFRESH: Duration = Duration::from_secs(1);

/// When a task type's circuit breaker opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive transient failures of a type (across the process's loops) that open it.
    pub threshold: u32,
    /// The first open period.
    pub cool_down: Duration,
    /// The longest open period (it doubles while probes keep failing).
    pub max_cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            threshold: 5,
            cool_down: Duration::from_secs(30),
            max_cool_down: Duration::from_secs(300),
        }
    }
}

/// What one finished attempt says about its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The source answered: success, a permanent error.
    Answered,
    /// The source answered with a deferral (quota spent, rate limit): as `Answered`, and
    /// the quota marks are read again before the next claim, so a bucket this run just
    /// found spent holds its types back at once rather than up to [`QUOTA_REFRESH`] later.
    Deferred,
    /// The source failed transiently: a `Retryable` error, or the handler's time limit.
    Transient,
    /// Says nothing about the source: a panic, a lost lease, a release, no handler.
    Neutral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// No probe claimed yet.
    Free,
    /// A loop is claiming with the type in its filter.
    Reserved,
    /// The probe is this task.
    Running(TaskId),
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed,
    Open {
        until: Instant,
        until_ts: Timestamp,
        cool: Duration,
    },
    HalfOpen {
        cool: Duration,
        probe: Probe,
    },
}

#[derive(Debug, Clone, Copy)]
struct Breaker {
    /// Consecutive transient failures (not reset by opening, only by an answer).
    failures: u32,
    state: State,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            failures: 0,
            state: State::Closed,
        }
    }
}

/// What a loop may claim now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admission {
    /// The types to put in the claim filter (never empty unless nothing may be claimed).
    pub types: Vec<TaskType>,
    /// A half-open type whose probe this loop claims for; hand it back with
    /// [`Gate::claimed`].
    pub probe: Option<TaskType>,
}

#[derive(Debug, Default)]
struct QuotaView {
    read_at: Option<Instant>,
    /// Spent buckets and when they reset.
    spent: BTreeMap<String, Timestamp>,
}

/// The per-process gate; see the module documentation.
pub(crate) struct Gate {
    settings: BreakerSettings,
    /// False for a run limited to one task: the gate then admits everything.
    enabled: bool,
    quota: Option<Arc<dyn QuotaLedger>>,
    /// The quota buckets of each capability that declares any.
    buckets: BTreeMap<TaskType, Vec<String>>,
    breakers: Mutex<BTreeMap<TaskType, Breaker>>,
    quota_view: tokio::sync::Mutex<QuotaView>,
    /// Set by a deferral: read the quota marks again before the next claim.
    quota_stale: AtomicBool,
    /// The last quota view, readable without waiting (for heartbeats).
    spent: Mutex<BTreeMap<String, Timestamp>>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("settings", &self.settings)
            .field("enabled", &self.enabled)
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `now + d` on the wall clock, saturating.
fn wall_after(d: Duration) -> Timestamp {
    let d = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
    Timestamp::now().checked_add(d).unwrap_or(Timestamp::MAX)
}

impl Gate {
    /// A gate with these breaker settings over `quota` (if any), for types whose handlers
    /// charge `buckets`. `enabled` false: admits everything, always.
    pub fn new(
        settings: BreakerSettings,
        enabled: bool,
        quota: Option<Arc<dyn QuotaLedger>>,
        buckets: BTreeMap<TaskType, Vec<String>>,
    ) -> Self {
        Gate {
            settings,
            enabled,
            quota,
            buckets: buckets.into_iter().filter(|(_, b)| !b.is_empty()).collect(),
            breakers: Mutex::default(),
            quota_view: tokio::sync::Mutex::default(),
            quota_stale: AtomicBool::new(false),
            spent: Mutex::default(),
        }
    }

    /// Reads the ledger's usage when the last read is older than [`QUOTA_REFRESH`]. A
    /// failed read keeps the last view (logged).
    async fn refresh_quota(&self) {
        let Some(ledger) = &self.quota else { return };
        if self.buckets.is_empty() {
            return;
        }
        let mut view = self.quota_view.lock().await;
        let stale = self.quota_stale.swap(false, Ordering::SeqCst);
        if !stale && view.read_at.is_some_and(|at| at.elapsed() < QUOTA_REFRESH) {
            return;
        }
        match ledger.usage().await {
            Ok(usage) => {
                view.spent = usage
                    .into_iter()
                    .filter_map(|u| u.exhausted_until.map(|t| (u.bucket, t)))
                    .collect();
                *lock(&self.spent) = view.spent.clone();
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the quota ledger; quota holds unchanged")
            }
        }
        view.read_at = Some(Instant::now());
    }

    /// The spent bucket (and its reset) that holds `t` back, if any.
    fn quota_hold(&self, t: &TaskType, spent: &BTreeMap<String, Timestamp>) -> Option<HeldType> {
        let buckets = self.buckets.get(t)?;
        buckets.iter().find_map(|b| {
            spent.get(b).map(|until| HeldType {
                task_type: t.clone(),
                until: Some(*until),
                reason: HoldReason::Quota { bucket: b.clone() },
            })
        })
    }

    /// Moves open breakers whose cool-down is over to half-open.
    fn tick(breakers: &mut BTreeMap<TaskType, Breaker>, now: Instant) {
        for b in breakers.values_mut() {
            if let State::Open { until, cool, .. } = b.state {
                if now >= until {
                    b.state = State::HalfOpen {
                        cool,
                        probe: Probe::Free,
                    };
                }
            }
        }
    }

    /// What a loop may claim now among `capabilities`: every type not held, plus at most one
    /// half-open type whose probe nobody has claimed yet (reserved for this loop).
    pub async fn admit(&self, capabilities: &[TaskType]) -> Admission {
        if !self.enabled {
            return Admission {
                types: capabilities.to_vec(),
                probe: None,
            };
        }
        self.refresh_quota().await;
        let spent = lock(&self.spent).clone();
        let mut breakers = lock(&self.breakers);
        Self::tick(&mut breakers, Instant::now());
        let mut admission = Admission {
            types: Vec::new(),
            probe: None,
        };
        for t in capabilities {
            if self.quota_hold(t, &spent).is_some() {
                continue;
            }
            match breakers.get_mut(t).map(|b| &mut b.state) {
                None | Some(State::Closed) => admission.types.push(t.clone()),
                Some(State::HalfOpen { probe, .. })
                    if *probe == Probe::Free && admission.probe.is_none() =>
                {
                    *probe = Probe::Reserved;
                    admission.probe = Some(t.clone());
                    admission.types.push(t.clone());
                }
                Some(_) => {}
            }
        }
        admission
    }

    /// After a claim made with `admission`: whether the claimed task (of `claimed`'s type)
    /// must be handed back unrun because its type's breaker opened meanwhile, or another
    /// loop's probe of it is running. Gives back an unused probe reservation.
    pub fn claimed(&self, admission: &Admission, claimed: Option<(TaskId, &TaskType)>) -> bool {
        if !self.enabled {
            return false;
        }
        let mut breakers = lock(&self.breakers);
        let mine = admission.probe.as_ref();
        if let Some(p) = mine {
            if let Some(Breaker {
                state: State::HalfOpen { probe, .. },
                ..
            }) = breakers.get_mut(p)
            {
                if *probe == Probe::Reserved {
                    *probe = match claimed {
                        Some((id, t)) if t == p => Probe::Running(id),
                        _ => Probe::Free,
                    };
                }
            }
        }
        let Some((id, t)) = claimed else { return false };
        match breakers.get(t).map(|b| b.state) {
            Some(State::Open { .. }) => true,
            Some(State::HalfOpen {
                probe: Probe::Running(p),
                ..
            }) => p != id,
            Some(State::HalfOpen {
                probe: Probe::Reserved,
                ..
            }) => true,
            _ => false,
        }
    }

    /// Records what an attempt of task `id` (of type `t`) said about its source.
    pub fn record(&self, t: &TaskType, id: TaskId, verdict: Verdict) {
        let verdict = if verdict == Verdict::Deferred {
            self.quota_stale.store(true, Ordering::SeqCst);
            Verdict::Answered
        } else {
            verdict
        };
        if !self.enabled || verdict == Verdict::Neutral && !self.is_probe(t, id) {
            return;
        }
        let settings = self.settings;
        let mut breakers = lock(&self.breakers);
        let b = breakers.entry(t.clone()).or_default();
        let open = |cool: Duration| State::Open {
            until: Instant::now() + cool,
            until_ts: wall_after(cool),
            cool,
        };
        match (verdict, b.state) {
            (Verdict::Answered | Verdict::Deferred, state) => {
                if !matches!(state, State::Closed) {
                    tracing::info!(task_type = %t, "the source answered; circuit breaker closed");
                }
                *b = Breaker::default();
            }
            (Verdict::Transient, State::Closed) => {
                b.failures += 1;
                if b.failures >= settings.threshold.max(1) {
                    tracing::warn!(
                        task_type = %t,
                        failures = b.failures,
                        cool_down_s = settings.cool_down.as_secs(),
                        "circuit breaker open: this type is not claimed until the cool-down ends"
                    );
                    b.state = open(settings.cool_down);
                }
            }
            (
                Verdict::Transient,
                State::HalfOpen {
                    cool,
                    probe: Probe::Running(p),
                },
            ) if p == id => {
                b.failures += 1;
                let cool = (cool * 2).min(settings.max_cool_down.max(settings.cool_down));
                tracing::warn!(
                    task_type = %t,
                    failures = b.failures,
                    cool_down_s = cool.as_secs(),
                    "the probe failed too; circuit breaker open again"
                );
                b.state = open(cool);
            }
            (Verdict::Transient, _) => b.failures += 1,
            (Verdict::Neutral, State::HalfOpen { cool, .. }) => {
                b.state = State::HalfOpen {
                    cool,
                    probe: Probe::Free,
                };
            }
            (Verdict::Neutral, _) => {}
        }
    }

    fn is_probe(&self, t: &TaskType, id: TaskId) -> bool {
        matches!(
            lock(&self.breakers).get(t).map(|b| b.state),
            Some(State::HalfOpen { probe: Probe::Running(p), .. }) if p == id
        )
    }

    /// The types held back now among `capabilities`, and why (for heartbeats), from the last
    /// quota view.
    pub fn held(&self, capabilities: &[TaskType]) -> Vec<HeldType> {
        if !self.enabled {
            return Vec::new();
        }
        let spent = lock(&self.spent).clone();
        let mut breakers = lock(&self.breakers);
        Self::tick(&mut breakers, Instant::now());
        let mut held = Vec::new();
        for t in capabilities {
            if let Some(h) = self.quota_hold(t, &spent) {
                held.push(h);
                continue;
            }
            let Some(b) = breakers.get(t) else { continue };
            let until = match b.state {
                State::Closed
                | State::HalfOpen {
                    probe: Probe::Free, ..
                } => continue,
                State::Open { until_ts, .. } => Some(until_ts),
                State::HalfOpen { .. } => None,
            };
            held.push(HeldType {
                task_type: t.clone(),
                until,
                reason: HoldReason::Breaker {
                    failures: b.failures,
                },
            });
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::ports::{QuotaDecision, QuotaUsage};

    fn tt(s: &str) -> TaskType {
        TaskType::new(s).unwrap()
    }

    fn settings() -> BreakerSettings {
        BreakerSettings {
            threshold: 3,
            cool_down: Duration::from_secs(30),
            max_cool_down: Duration::from_secs(100),
        }
    }

    fn gate() -> Gate {
        Gate::new(settings(), true, None, BTreeMap::new())
    }

    fn fail(g: &Gate, t: &TaskType, n: u32) {
        for i in 0..n {
            g.record(t, TaskId(1000 + i64::from(i)), Verdict::Transient);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_transient_failures_and_holds_only_that_type() {
        let (a, b) = (tt("a"), tt("b"));
        let g = gate();
        fail(&g, &a, 2);
        g.record(&a, TaskId(1), Verdict::Answered);
        fail(&g, &a, 2);
        assert_eq!(
            g.admit(&[a.clone(), b.clone()]).await.types,
            vec![a.clone(), b.clone()]
        );
        fail(&g, &a, 1);
        let adm = g.admit(&[a.clone(), b.clone()]).await;
        assert_eq!(adm.types, vec![b.clone()]);
        let held = g.held(&[a.clone(), b.clone()]);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].task_type, a);
        assert_eq!(held[0].reason, HoldReason::Breaker { failures: 3 });
        assert!(held[0].until.is_some());
        // Nothing is left when only the open type is asked for.
        assert!(g.admit(std::slice::from_ref(&a)).await.types.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_lets_one_probe_through_and_its_success_closes() {
        let a = tt("a");
        let g = gate();
        fail(&g, &a, 3);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(g.admit(std::slice::from_ref(&a)).await.types.is_empty());
        tokio::time::advance(Duration::from_secs(1)).await;
        let first = g.admit(std::slice::from_ref(&a)).await;
        assert_eq!(first.probe, Some(a.clone()));
        // A second loop gets nothing while the probe is reserved or running.
        assert!(g.admit(std::slice::from_ref(&a)).await.types.is_empty());
        assert!(!g.claimed(&first, Some((TaskId(7), &a))));
        assert!(g.admit(std::slice::from_ref(&a)).await.types.is_empty());
        let held = g.held(std::slice::from_ref(&a));
        assert_eq!(held[0].until, None, "waiting for the probe");
        // A task of the type claimed by a loop without the probe goes back.
        let other = Admission {
            types: vec![a.clone()],
            probe: None,
        };
        assert!(g.claimed(&other, Some((TaskId(8), &a))));
        g.record(&a, TaskId(7), Verdict::Answered);
        assert_eq!(
            g.admit(std::slice::from_ref(&a)).await.types,
            vec![a.clone()]
        );
        assert!(g.held(std::slice::from_ref(&a)).is_empty());
        // Closed again: it takes the full threshold to open once more.
        fail(&g, &a, 2);
        assert_eq!(
            g.admit(std::slice::from_ref(&a)).await.types,
            vec![a.clone()]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_twice_as_long_up_to_the_cap() {
        let a = tt("a");
        let g = gate();
        fail(&g, &a, 3);
        let mut cool = 30;
        for (round, expect_next) in [(0, 60), (1, 100), (2, 100)] {
            tokio::time::advance(Duration::from_secs(cool)).await;
            let adm = g.admit(std::slice::from_ref(&a)).await;
            assert_eq!(adm.probe, Some(a.clone()), "round {round}");
            let id = TaskId(50 + round);
            assert!(!g.claimed(&adm, Some((id, &a))));
            g.record(&a, id, Verdict::Transient);
            cool = expect_next;
            tokio::time::advance(Duration::from_secs(cool - 1)).await;
            assert!(
                g.admit(std::slice::from_ref(&a)).await.types.is_empty(),
                "round {round}"
            );
            tokio::time::advance(Duration::from_secs(1)).await;
            cool = 0;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unused_probe_reservation_is_given_back() {
        let (a, b) = (tt("a"), tt("b"));
        let g = gate();
        fail(&g, &a, 3);
        tokio::time::advance(Duration::from_secs(30)).await;
        let adm = g.admit(&[a.clone(), b.clone()]).await;
        assert_eq!(adm.probe, Some(a.clone()));
        // The claim found a `b` task instead: the next loop may probe `a`.
        assert!(!g.claimed(&adm, Some((TaskId(3), &b))));
        assert_eq!(
            g.admit(std::slice::from_ref(&a)).await.probe,
            Some(a.clone())
        );
        // A probe that ends saying nothing (lost lease) frees the probe too.
        let adm = Admission {
            types: vec![a.clone()],
            probe: Some(a.clone()),
        };
        assert!(!g.claimed(&adm, Some((TaskId(4), &a))));
        g.record(&a, TaskId(4), Verdict::Neutral);
        assert_eq!(
            g.admit(std::slice::from_ref(&a)).await.probe,
            Some(a.clone())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_limited_to_one_task_is_never_gated() {
        let a = tt("a");
        let g = Gate::new(settings(), false, None, BTreeMap::new());
        fail(&g, &a, 10);
        assert_eq!(
            g.admit(std::slice::from_ref(&a)).await.types,
            vec![a.clone()]
        );
        assert!(g.held(std::slice::from_ref(&a)).is_empty());
    }

    /// A ledger with fixed usage that counts its reads.
    struct Ledger {
        usage: Mutex<Vec<QuotaUsage>>,
        reads: std::sync::atomic::AtomicU32,
    }

    #[async_trait::async_trait]
    impl QuotaLedger for Ledger {
        async fn try_consume(
            &self,
            _: &str,
            _: u64,
            _: u64,
            _: Timestamp,
        ) -> Result<QuotaDecision, prismq_domain::PortError> {
            unreachable!()
        }
        async fn mark_exhausted(
            &self,
            _: &str,
            _: Timestamp,
        ) -> Result<(), prismq_domain::PortError> {
            unreachable!()
        }
        async fn used(&self, _: &str) -> Result<u64, prismq_domain::PortError> {
            unreachable!()
        }
        async fn usage(&self) -> Result<Vec<QuotaUsage>, prismq_domain::PortError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(lock(&self.usage).clone())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_bucket_holds_its_types_and_is_read_at_most_once_a_second() {
        let (search, general, free) = (tt("keyword_search"), tt("channel_scrape"), tt("local"));
        let reset = Timestamp::from_second(1_900_000_000).unwrap();
        let usage = |spent: bool| {
            vec![
                QuotaUsage {
                    bucket: "api.general".into(),
                    used: 3,
                    window_end: reset,
                    exhausted_until: None,
                },
                QuotaUsage {
                    bucket: "api.search".into(),
                    used: 100,
                    window_end: reset,
                    exhausted_until: spent.then_some(reset),
                },
            ]
        };
        let ledger = Arc::new(Ledger {
            usage: Mutex::new(usage(true)),
            reads: Default::default(),
        });
        let buckets = BTreeMap::from([
            (
                search.clone(),
                vec!["api.search".to_owned(), "api.general".to_owned()],
            ),
            (general.clone(), vec!["api.general".to_owned()]),
            (free.clone(), Vec::new()),
        ]);
        let g = Gate::new(settings(), true, Some(ledger.clone()), buckets);
        let all = [search.clone(), general.clone(), free.clone()];
        for _ in 0..50 {
            let adm = g.admit(&all).await;
            assert_eq!(adm.types, vec![general.clone(), free.clone()]);
        }
        assert_eq!(ledger.reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        let held = g.held(&all);
        assert_eq!(
            held,
            vec![HeldType {
                task_type: search.clone(),
                until: Some(reset),
                reason: HoldReason::Quota {
                    bucket: "api.search".into()
                },
            }]
        );
        // A deferral in this process makes the next claim read the marks again at once.
        g.record(&general, TaskId(1), Verdict::Deferred);
        assert_eq!(g.admit(&all).await.types.len(), 2);
        assert_eq!(ledger.reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        // The mark lifts: within a second the type is claimed again.
        *lock(&ledger.usage) = usage(false);
        assert_eq!(g.admit(&all).await.types.len(), 2);
        tokio::time::advance(QUOTA_REFRESH).await;
        assert_eq!(g.admit(&all).await.types, all.to_vec());
        assert_eq!(ledger.reads.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
