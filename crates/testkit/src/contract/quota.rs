//! Obligations of `QuotaLedger`: charging within a limit, exhaustion until the window's
//! end, window rollover, explicit exhaustion marks, and never granting past the limit.

use std::time::Duration;

use prismq_domain::ports::QuotaDecision;

use super::support::setup;
use super::{ContractEnv, Subject};
use crate::fixtures::plus_secs;

/// try_consume charges the units and answers the remaining ones; used reports the charge.
pub async fn grant_charges_and_reports_remaining(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let end = plus_secs(clock.now(), 3600);
    assert_eq!(s.quota.used("api").await.unwrap(), 0, "never used");
    assert_eq!(
        s.quota.try_consume("api", 30, 100, end).await.unwrap(),
        QuotaDecision::Granted { remaining: 70 }
    );
    assert_eq!(
        s.quota.try_consume("api", 70, 100, end).await.unwrap(),
        QuotaDecision::Granted { remaining: 0 },
        "the last units fit exactly"
    );
    assert_eq!(s.quota.used("api").await.unwrap(), 100);
}

/// A charge that would pass the limit is refused with the window's end and charges nothing.
pub async fn over_limit_is_exhausted_until_window_end(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let end = plus_secs(clock.now(), 3600);
    s.quota.try_consume("api", 90, 100, end).await.unwrap();
    assert_eq!(
        s.quota.try_consume("api", 11, 100, end).await.unwrap(),
        QuotaDecision::Exhausted { until: end }
    );
    assert_eq!(s.quota.used("api").await.unwrap(), 90, "nothing charged");
    assert_eq!(
        s.quota.try_consume("api", 10, 100, end).await.unwrap(),
        QuotaDecision::Granted { remaining: 0 }
    );
}

/// Once the window ends (its end ≤ now) usage starts again from 0 in the new window.
pub async fn window_rollover_starts_from_zero(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let end = plus_secs(clock.now(), 3600);
    s.quota.try_consume("api", 100, 100, end).await.unwrap();
    clock.set(end);
    assert_eq!(s.quota.used("api").await.unwrap(), 0, "window ended");
    let next_end = plus_secs(end, 86_400);
    assert_eq!(
        s.quota.try_consume("api", 40, 100, next_end).await.unwrap(),
        QuotaDecision::Granted { remaining: 60 }
    );
    assert_eq!(s.quota.used("api").await.unwrap(), 40);
    assert_eq!(
        s.quota.try_consume("api", 61, 100, next_end).await.unwrap(),
        QuotaDecision::Exhausted { until: next_end }
    );
}

/// mark_exhausted makes every try_consume answer Exhausted { until } until then, even with
/// room left; afterwards charges are granted again.
pub async fn mark_exhausted_blocks_until_then(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let end = plus_secs(clock.now(), 3600);
    s.quota.try_consume("api", 10, 100, end).await.unwrap();
    let until = plus_secs(clock.now(), 600);
    s.quota.mark_exhausted("api", until).await.unwrap();
    for units in [0, 1, 50] {
        assert_eq!(
            s.quota.try_consume("api", units, 100, end).await.unwrap(),
            QuotaDecision::Exhausted { until }
        );
    }
    assert_eq!(s.quota.used("api").await.unwrap(), 10);
    clock.advance(Duration::from_secs(599));
    assert_eq!(
        s.quota.try_consume("api", 1, 100, end).await.unwrap(),
        QuotaDecision::Exhausted { until }
    );
    clock.set(until);
    assert_eq!(
        s.quota.try_consume("api", 1, 100, end).await.unwrap(),
        QuotaDecision::Granted { remaining: 89 }
    );
    // A bucket never charged can be marked too.
    s.quota.mark_exhausted("fresh", end).await.unwrap();
    assert_eq!(
        s.quota.try_consume("fresh", 1, 100, end).await.unwrap(),
        QuotaDecision::Exhausted { until: end }
    );
}

/// Buckets are independent.
pub async fn buckets_are_independent(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let end = plus_secs(clock.now(), 3600);
    s.quota.try_consume("search", 100, 100, end).await.unwrap();
    s.quota.mark_exhausted("search", end).await.unwrap();
    assert_eq!(
        s.quota.try_consume("videos", 5, 100, end).await.unwrap(),
        QuotaDecision::Granted { remaining: 95 }
    );
    assert_eq!(
        (
            s.quota.used("search").await.unwrap(),
            s.quota.used("videos").await.unwrap(),
            s.quota.used("other").await.unwrap()
        ),
        (100, 5, 0)
    );
}

/// Concurrent callers racing for the last units never get more than the limit between them.
pub async fn racing_consumers_never_exceed_the_limit(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let end = plus_secs(clock.now(), 3600);
    let mut handles = Vec::new();
    for _ in 0..8 {
        let q = s.quota.clone();
        handles.push(tokio::spawn(async move {
            let mut granted = 0u64;
            for _ in 0..20 {
                if let QuotaDecision::Granted { .. } =
                    q.try_consume("api", 7, 500, end).await.unwrap()
                {
                    granted += 7;
                }
                tokio::task::yield_now().await;
            }
            granted
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    // 500 / 7 = 71 grants fit; 160 were asked for.
    assert_eq!(total, 71 * 7);
    assert_eq!(s.quota.used("api").await.unwrap(), 497);
}

/// usage lists every bucket by name with its use in the current window, 0 once the window
/// ended, and an exhaustion mark only while it is ahead.
pub async fn usage_lists_buckets_by_name(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    assert!(s.quota.usage().await.unwrap().is_empty());
    let end = plus_secs(clock.now(), 3600);
    s.quota.try_consume("search", 3, 100, end).await.unwrap();
    s.quota
        .try_consume("general", 40, 10_000, end)
        .await
        .unwrap();
    let until = plus_secs(clock.now(), 600);
    s.quota.mark_exhausted("search", until).await.unwrap();
    let u = s.quota.usage().await.unwrap();
    let names: Vec<&str> = u.iter().map(|b| b.bucket.as_str()).collect();
    assert_eq!(names, ["general", "search"]);
    assert_eq!(
        (u[0].used, u[0].window_end, u[0].exhausted_until),
        (40, end, None)
    );
    assert_eq!((u[1].used, u[1].exhausted_until), (3, Some(until)));
    clock.set(until);
    assert_eq!(s.quota.usage().await.unwrap()[1].exhausted_until, None);
    clock.set(end);
    let u = s.quota.usage().await.unwrap();
    assert_eq!(
        (u[0].used, u[1].used),
        (0, 0),
        "an ended window reports nothing used"
    );
}
