//! Dashboard sessions: held in server memory (nothing is written to the store, so no
//! migration), keyed by random 256-bit ids sent back in an HttpOnly, `SameSite=Strict`
//! cookie (`Secure` when the server speaks TLS), each with its own CSRF token, ended by
//! sign-out or after an idle time. Tokens are compared in constant time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use parking_lot::Mutex;
use rand::RngCore;
use subtle::ConstantTimeEq;

use prismq_domain::ports::{ApiKey, Scope};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "prismq_session";
/// The cookie that carries the sign-in form's CSRF token before there is a session.
pub const SIGNIN_COOKIE: &str = "prismq_signin";

/// The most sessions held at once; the least recently used goes beyond it.
pub const MAX_SESSIONS: usize = 10_000;

/// 32 random bytes from the operating system's generator, as 64 hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The key it was opened with (as it was at sign-in).
    pub key: ApiKey,
    /// The token every form of this session carries.
    pub csrf: String,
    last_seen: Instant,
}

/// Every open session.
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle: Duration,
}

impl Sessions {
    /// No sessions; each ends after `idle` without a request.
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
        }
    }

    /// The idle time after which a session ends.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Opens a session for `key` at `now`; its id.
    pub fn open(&self, key: ApiKey, now: Instant) -> String {
        let id = random_token();
        let mut map = self.map.lock();
        map.retain(|_, s| now.saturating_duration_since(s.last_seen) < self.idle);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session {
                key,
                csrf: random_token(),
                last_seen: now,
            },
        );
        id
    }

    /// The live session with this id at `now`; `touch` restarts its idle time. An expired
    /// one is removed and `None` comes back.
    pub fn get(&self, id: &str, now: Instant, touch: bool) -> Option<Session> {
        let mut map = self.map.lock();
        let s = map.get_mut(id)?;
        if now.saturating_duration_since(s.last_seen) >= self.idle {
            map.remove(id);
            return None;
        }
        if touch {
            s.last_seen = now;
        }
        Some(s.clone())
    }

    /// Ends the session (sign-out).
    pub fn close(&self, id: &str) {
        self.map.lock().remove(id);
    }

    /// How many sessions are held (expired ones included until they are next looked at).
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Session {
    /// Whether its key grants `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.key.allows(scope)
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` header for `name=value`, HttpOnly and `SameSite=Strict` on the whole
/// site, `Secure` when `secure`; `value` empty clears it.
pub fn set_cookie(headers: &mut HeaderMap, name: &str, value: &str, secure: bool) {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if value.is_empty() {
        c.push_str("; Max-Age=0");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        headers.append(SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::ports::ApiKeyId;

    fn key() -> ApiKey {
        ApiKey {
            id: ApiKeyId(1),
            name: "k".into(),
            prefix: "pqk_0000".into(),
            scopes: vec![Scope::Read],
            rate_limit: 60,
            active: true,
            created_at: prismq_domain::Timestamp::UNIX_EPOCH,
            last_used_at: None,
        }
    }

    #[test]
    fn tokens_are_256_bits_of_hex_and_differ() {
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_token());
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &random_token()));
        assert!(!same_token(&a, &a[..63]));
    }

    #[test]
    fn a_session_ends_after_its_idle_time_unless_used() {
        let s = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let id = s.open(key(), t0);
        assert!(s.get(&id, t0 + Duration::from_secs(50), true).is_some());
        // Used at 50 s: still alive at 100 s.
        assert!(s.get(&id, t0 + Duration::from_secs(100), false).is_some());
        // Not touched at 100 s: gone at 110 s.
        assert!(s.get(&id, t0 + Duration::from_secs(110), false).is_none());
        assert!(s.is_empty());
        let id = s.open(key(), t0);
        s.close(&id);
        assert!(s.get(&id, t0, true).is_none());
    }

    #[test]
    fn cookies_are_found_by_name_and_set_strict() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; prismq_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        let mut out = HeaderMap::new();
        set_cookie(&mut out, SESSION_COOKIE, "x", true);
        set_cookie(&mut out, SIGNIN_COOKIE, "", false);
        let all: Vec<_> = out.get_all(SET_COOKIE).iter().collect();
        assert_eq!(
            all[0],
            "prismq_session=x; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            all[1],
            "prismq_signin=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }
}
