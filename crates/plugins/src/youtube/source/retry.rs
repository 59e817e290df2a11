//! Retrying one Data API request within the attempt: which failures are worth another try
//! at once (a refused or dropped connection, a timeout, a 5xx, a 429), and how long to wait
//! before it (capped exponential backoff with jitter, or the server's Retry-After when it
//! is short). Quota errors and other 4xx answers are never retried here.

use prismq_domain::Timestamp;
use rand::Rng;
use std::time::Duration;

use super::SourceError;

/// How one request is retried within an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRetry {
    /// Tries in all, the first included (1 turns retrying off).
    pub tries: u32,
    /// The delay before the second try; each later one doubles it.
    pub base: Duration,
    /// The longest delay between tries; also the longest Retry-After waited for within
    /// the attempt (a longer one goes up to the runtime, which defers the task).
    pub cap: Duration,
}

impl Default for RequestRetry {
    /// 3 tries, 0.5 s then 1 s (each jittered down to half), at most 4 s apart.
    fn default() -> Self {
        RequestRetry {
            tries: 3,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(4),
        }
    }
}

impl RequestRetry {
    /// How long to wait before try `tried + 1` after try `tried` (counted from 1) failed
    /// with `e` at `now`; `None` when `e` is not worth another try within the attempt or
    /// the tries are used up.
    pub fn delay(&self, e: &SourceError, tried: u32, now: Timestamp) -> Option<Duration> {
        if tried >= self.tries {
            return None;
        }
        match e {
            SourceError::Transient { .. } | SourceError::Timeout | SourceError::Network(_) => {
                Some(self.backoff(tried))
            }
            SourceError::RateLimited { retry_at: None } => Some(self.backoff(tried)),
            SourceError::RateLimited { retry_at: Some(t) } => {
                let wait = t.duration_since(now);
                let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
                (wait <= self.cap).then_some(wait)
            }
            _ => None,
        }
    }

    /// The jittered delay after try `tried`: uniform in [d/2, d] with d = base·2^(tried−1)
    /// capped at `cap`, so tries never bunch up yet always wait at least half the step.
    fn backoff(&self, tried: u32) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << tried.saturating_sub(1).min(16))
            .min(self.cap);
        let half = step / 2;
        let extra = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn transient_failures_back_off_within_bounds_then_stop() {
        let r = RequestRetry::default();
        let now = at("2026-11-20T12:00:00Z");
        for e in [
            SourceError::Transient { status: 503 },
            SourceError::Timeout,
            SourceError::Network("connection refused".into()),
            SourceError::RateLimited { retry_at: None },
        ] {
            for _ in 0..50 {
                let d1 = r.delay(&e, 1, now).unwrap();
                assert!((250..=500).contains(&(d1.as_millis() as u64)), "{d1:?}");
                let d2 = r.delay(&e, 2, now).unwrap();
                assert!((500..=1000).contains(&(d2.as_millis() as u64)), "{d2:?}");
            }
            assert_eq!(r.delay(&e, 3, now), None, "{e:?}");
        }
        let many = RequestRetry {
            tries: 10,
            ..RequestRetry::default()
        };
        let d = many.delay(&SourceError::Timeout, 9, now).unwrap();
        assert!(d <= Duration::from_secs(4) && d >= Duration::from_secs(2));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let r = RequestRetry::default();
        let now = at("2026-11-20T12:00:00Z");
        let soon = SourceError::RateLimited {
            retry_at: Some(at("2026-11-20T12:00:03Z")),
        };
        assert_eq!(r.delay(&soon, 1, now), Some(Duration::from_secs(3)));
        let late = SourceError::RateLimited {
            retry_at: Some(at("2026-11-20T12:02:00Z")),
        };
        assert_eq!(r.delay(&late, 1, now), None, "the runtime defers it");
        let past = SourceError::RateLimited {
            retry_at: Some(at("2026-11-20T11:00:00Z")),
        };
        assert_eq!(r.delay(&past, 1, now), Some(Duration::ZERO));
    }

    #[test]
    fn quota_and_refusals_are_not_retried() {
        let r = RequestRetry::default();
        let now = at("2026-11-20T12:00:00Z");
        for e in [
            SourceError::QuotaExhausted {
                bucket: super::super::Bucket::General,
                until: now,
            },
            SourceError::KeyInvalid,
            SourceError::Forbidden {
                reason: "forbidden".into(),
            },
            SourceError::BadRequest {
                status: 400,
                reason: "x".into(),
                location: None,
            },
            SourceError::Redirected { status: 302 },
            SourceError::NotFound { what: "x".into() },
            SourceError::Decode("eof".into()),
            SourceError::TooLarge { limit: 1 },
            SourceError::Cancelled,
        ] {
            assert_eq!(r.delay(&e, 1, now), None, "{e:?}");
        }
    }
}
