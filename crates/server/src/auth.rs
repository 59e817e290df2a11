//! Who is calling: the `Authorization: Bearer pqk_…` key is verified against the store
//! (hashes compared in constant time) on every request — nothing is cached, so a revoked key
//! is refused from the next request on, by every server on the database — metered by a
//! token bucket per key held in memory, and its last use recorded at most once a minute.
//! Handlers then check the scope they need; a long-running one looks the key up again
//! ([`Caller::still_active`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use prismq_domain::ports::{ApiKey, ApiKeyId, PresentedKey, Scope};

use crate::error::ApiError;
use crate::ServerState;

/// How often a key's last use is written, at most.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A token bucket: `capacity` tokens, refilled at `capacity` per minute.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    capacity: f64,
    updated: Instant,
}

impl Bucket {
    /// A full bucket for `per_minute` requests.
    pub fn full(per_minute: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(per_minute),
            capacity: f64::from(per_minute),
            updated: now,
        }
    }

    /// Takes one token at `now`, or says how long until one is there.
    ///
    /// # Errors
    /// The wait until the next token.
    pub fn take(&mut self, per_minute: u32, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(per_minute);
        if (capacity - self.capacity).abs() > f64::EPSILON {
            self.capacity = capacity;
            self.tokens = self.tokens.min(capacity);
        }
        let rate = capacity / 60.0;
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.updated = now.max(self.updated);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

/// The per-key state kept in memory: rate buckets and when the last use was written.
#[derive(Debug, Default)]
pub struct Meter {
    buckets: Mutex<HashMap<ApiKeyId, Bucket>>,
    touched: Mutex<HashMap<ApiKeyId, Instant>>,
}

impl Meter {
    /// Charges one request to `key`.
    ///
    /// # Errors
    /// 429 with the wait.
    pub fn charge(&self, key: &ApiKey, now: Instant) -> Result<(), ApiError> {
        let mut buckets = self.buckets.lock();
        let b = buckets
            .entry(key.id)
            .or_insert_with(|| Bucket::full(key.rate_limit, now));
        b.take(key.rate_limit, now)
            .map_err(|wait| ApiError::rate_limited(key.rate_limit, wait))
    }

    /// Whether the key's last use is due to be written at `now` (and notes that it is).
    pub fn touch_due(&self, id: ApiKeyId, now: Instant) -> bool {
        let mut touched = self.touched.lock();
        match touched.get(&id) {
            Some(at) if now.saturating_duration_since(*at) < TOUCH_EVERY => false,
            _ => {
                touched.insert(id, now);
                true
            }
        }
    }
}

/// The key a request was authenticated with (a request extension), and how it was
/// presented (its prefix and hash, never the secret), to look it up again.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiKey, PresentedKey);

impl Caller {
    /// Looks the key up again: a request that runs long (a claim's long poll) calls this
    /// before each step, so a key revoked meanwhile stops it at once.
    ///
    /// # Errors
    /// 401 when the key is no longer active; the store's errors.
    pub async fn still_active(&self, state: &ServerState) -> Result<(), ApiError> {
        match state.app.keys.verify(&self.1).await? {
            Some(_) => Ok(()),
            None => Err(ApiError::unauthorized(
                "the API key is malformed, unknown or revoked",
            )),
        }
    }

    /// Refuses with 403 unless the key has `scope`.
    ///
    /// # Errors
    /// 403 naming the scope.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "key {} ({}) lacks the {scope} scope this request needs; create a key with --scope {scope}",
                    self.0.prefix, self.0.name
                ),
            ))
        }
    }
}

/// The middleware: 401 without a valid active key, 429 over its rate; otherwise the request
/// goes on with a [`Caller`] extension.
pub async fn authenticate(
    State(state): State<ServerState>,
    mut req: Request,
    next: Next,
) -> Response {
    let presented = req.headers().get(header::AUTHORIZATION).cloned();
    match check(&state, presented).await {
        Ok((key, presented)) => {
            req.extensions_mut().insert(Caller(key, presented));
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn check(
    state: &ServerState,
    authorization: Option<axum::http::HeaderValue>,
) -> Result<(ApiKey, PresentedKey), ApiError> {
    let value = authorization.ok_or_else(|| {
        ApiError::unauthorized(
            "no API key; send `Authorization: Bearer KEY` with a key from `prismq keys create`",
        )
    })?;
    let text = value.to_str().unwrap_or_default();
    let secret = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::unauthorized("the Authorization header is not `Bearer KEY`"))?
        .trim();
    let presented = PresentedKey::parse(secret)
        .map_err(|_| ApiError::unauthorized("the API key is malformed, unknown or revoked"))?;
    let key =
        state.app.keys.verify(&presented).await?.ok_or_else(|| {
            ApiError::unauthorized("the API key is malformed, unknown or revoked")
        })?;
    let now = Instant::now();
    state.meter.charge(&key, now)?;
    if state.meter.touch_due(key.id, now) {
        if let Err(e) = state.app.keys.touch(key.id, state.app.clock.now()).await {
            tracing::warn!(key = %key.prefix, error = %e, "could not record the key's last use");
        }
    }
    Ok((key, presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_spends_its_capacity_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::full(60, t0);
        for _ in 0..60 {
            assert!(b.take(60, t0).is_ok());
        }
        let wait = b.take(60, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
        assert!(b.take(60, t0 + Duration::from_millis(500)).is_err());
        assert!(b.take(60, t0 + Duration::from_secs(1)).is_ok());
        assert!(b.take(60, t0 + Duration::from_secs(1)).is_err());
        // A long pause refills to capacity, never past it.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..60 {
            assert!(b.take(60, later).is_ok());
        }
        assert!(b.take(60, later).is_err());
    }

    #[test]
    fn the_last_use_is_due_at_most_once_a_minute() {
        let m = Meter::default();
        let t0 = Instant::now();
        assert!(m.touch_due(ApiKeyId(1), t0));
        assert!(!m.touch_due(ApiKeyId(1), t0 + Duration::from_secs(59)));
        assert!(m.touch_due(ApiKeyId(2), t0));
        assert!(m.touch_due(ApiKeyId(1), t0 + TOUCH_EVERY));
    }
}
