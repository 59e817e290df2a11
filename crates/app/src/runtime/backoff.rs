//! Idle backoff with jitter: how long a worker loop waits after finding nothing to claim (or
//! after a transient store error) before asking again.
//!
//! The k-th consecutive wait (k = 1, 2, …) is drawn uniformly from `[d/2, d]` where
//! `d = min(max, min × 2^(k−1))`, and is never shorter than `min`. A successful claim resets
//! k to 1. Halving the lower bound keeps loops that went idle together from polling in
//! lockstep, while the floor keeps the first retry from being almost immediate.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// Exponential backoff with jitter between `min` and `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    ceiling: Duration,
    rng: SmallRng,
}

impl Backoff {
    /// A backoff from `min` up to `max` (a `max` below `min` is raised to `min`), seeded
    /// from the operating system.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self::with_rng(min, max, SmallRng::from_entropy())
    }

    /// The same with a fixed seed, for reproducible tests.
    pub fn seeded(min: Duration, max: Duration, seed: u64) -> Self {
        Self::with_rng(min, max, SmallRng::seed_from_u64(seed))
    }

    fn with_rng(min: Duration, max: Duration, rng: SmallRng) -> Self {
        let max = max.max(min);
        Backoff {
            min,
            max,
            ceiling: min,
            rng,
        }
    }

    /// The next wait; the one after it may be up to twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.ceiling;
        let lo = u64::try_from((d / 2).as_micros()).unwrap_or(u64::MAX);
        let hi = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let drawn = Duration::from_micros(self.rng.gen_range(lo..=hi));
        self.ceiling = d.saturating_mul(2).min(self.max);
        drawn.max(self.min)
    }

    /// Back to the shortest wait (after a successful claim).
    pub fn reset(&mut self) {
        self.ceiling = self.min;
    }

    /// The current upper bound of the next wait.
    pub fn ceiling(&self) -> Duration {
        self.ceiling
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn grows_doubling_within_jitter_bounds_then_caps() {
        for seed in 0..50 {
            let mut b = Backoff::seeded(ms(50), ms(5000), seed);
            let mut d = ms(50);
            for _ in 0..12 {
                let got = b.next_delay();
                assert!(
                    got >= (d / 2).max(ms(50)) && got <= d,
                    "seed {seed}: {got:?} vs {d:?}"
                );
                d = (d * 2).min(ms(5000));
            }
            assert_eq!(b.ceiling(), ms(5000));
        }
    }

    #[test]
    fn at_the_cap_waits_still_vary() {
        let mut b = Backoff::seeded(ms(50), ms(5000), 7);
        for _ in 0..10 {
            b.next_delay();
        }
        let waits: std::collections::BTreeSet<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(waits.len() > 1);
        assert!(waits.iter().all(|w| *w >= ms(2500) && *w <= ms(5000)));
    }

    #[test]
    fn reset_returns_to_the_minimum() {
        let mut b = Backoff::seeded(ms(50), ms(5000), 1);
        for _ in 0..5 {
            b.next_delay();
        }
        b.reset();
        assert_eq!(
            b.next_delay(),
            ms(50),
            "the first wait is exactly min (its floor)"
        );
    }

    #[test]
    fn max_below_min_is_min() {
        let mut b = Backoff::seeded(ms(100), ms(10), 3);
        for _ in 0..4 {
            assert_eq!(b.next_delay(), ms(100));
        }
    }
}
