//! The API key port: keys for `prismq serve`, stored only as a SHA-256 hash of the secret
//! with a display prefix, a name, scopes, a per-key rate limit and an active flag.
//!
//! The secret itself (`pqk_` and 64 hex digits: 256 random bits) is made by the caller,
//! shown once and never stored; [`KeyHash::of`] is all a store ever sees of it.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{PortError, ValidationError};
use crate::Timestamp;

/// What every secret starts with, so a leaked one is recognisable.
pub const SECRET_PREFIX: &str = "pqk_";
/// Hex digits after [`SECRET_PREFIX`] (256 bits).
pub const SECRET_HEX_LEN: usize = 64;
/// Characters of the secret kept as its display prefix (`pqk_` and 8 hex digits).
pub const DISPLAY_PREFIX_LEN: usize = SECRET_PREFIX.len() + 8;
/// The longest key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;
/// The highest rate limit a key may have, in requests per minute.
pub const MAX_RATE_LIMIT: u32 = 100_000;
/// The rate limit of a key created without one, in requests per minute.
pub const DEFAULT_RATE_LIMIT: u32 = 600;

/// A key's id, assigned by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKeyId(pub i64);

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a key may do. `admin` includes every other scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read tasks, logs, results, stats, workers and task types.
    Read,
    /// Put tasks on the queue.
    Enqueue,
    /// Claim and run tasks (remote workers).
    Work,
    /// Cancel and retry tasks, manage the dead-letter queue; includes every other scope.
    Admin,
}

/// The scope names, as accepted.
pub const SCOPES_ACCEPTED: &str = "read, enqueue, work, admin";

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Enqueue, Scope::Work, Scope::Admin];

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Enqueue => "enqueue",
            Scope::Work => "work",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "scope",
                    format!("{:?} is not a scope", crate::task::truncate_for_message(s)),
                    SCOPES_ACCEPTED,
                )
            })
    }
}

/// Scopes as stored: their names joined with commas, in order, without repeats.
pub fn scopes_to_text(scopes: &[Scope]) -> String {
    let mut s = scopes.to_vec();
    s.sort();
    s.dedup();
    s.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(",")
}

/// Scopes from their stored text.
///
/// # Errors
/// An unknown name.
pub fn scopes_from_text(text: &str) -> Result<Vec<Scope>, ValidationError> {
    let mut s = text
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(str::parse)
        .collect::<Result<Vec<Scope>, _>>()?;
    s.sort();
    s.dedup();
    Ok(s)
}

/// The SHA-256 hash of a secret: all a store keeps of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash([u8; 32]);

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

impl KeyHash {
    /// The hash of `secret`.
    pub fn of(secret: &str) -> KeyHash {
        let digest = Sha256::digest(secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(&digest);
        KeyHash(out)
    }

    /// The hash as 64 lowercase hex digits (as stored).
    pub fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// A hash from its stored hex form.
    ///
    /// # Errors
    /// Anything but 64 hex digits.
    pub fn from_hex(text: &str) -> Result<KeyHash, ValidationError> {
        let bad = || ValidationError::new("hash", "not a SHA-256 hash", "64 hex digits");
        if text.len() != 64 || !text.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
            let pair = std::str::from_utf8(chunk).map_err(|_| bad())?;
            out[i] = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(KeyHash(out))
    }

    /// Whether both hashes are equal, compared in constant time.
    pub fn matches(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A presented secret, split into what a store looks it up by.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedKey {
    /// Its display prefix.
    pub prefix: String,
    /// Its hash.
    pub hash: KeyHash,
}

impl fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl PresentedKey {
    /// Reads a secret as presented by a client. The message never repeats the secret.
    ///
    /// # Errors
    /// Anything but `pqk_` and 64 lowercase hex digits.
    pub fn parse(secret: &str) -> Result<PresentedKey, ValidationError> {
        let ok = secret.len() == SECRET_PREFIX.len() + SECRET_HEX_LEN
            && secret.starts_with(SECRET_PREFIX)
            && secret[SECRET_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(ValidationError::new(
                "api key",
                "not a PrismQ API key",
                "pqk_ followed by 64 lowercase hex digits, as `prismq keys create` printed it",
            ));
        }
        Ok(PresentedKey {
            prefix: secret[..DISPLAY_PREFIX_LEN].to_owned(),
            hash: KeyHash::of(secret),
        })
    }
}

/// A key to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// A name for people (who or what uses it).
    pub name: String,
    /// The secret's first [`DISPLAY_PREFIX_LEN`] characters.
    pub prefix: String,
    /// The secret's hash.
    pub hash: KeyHash,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Requests per minute.
    pub rate_limit: u32,
}

impl NewApiKey {
    /// The key for `secret` (see [`PresentedKey::parse`]).
    ///
    /// # Errors
    /// A malformed secret.
    pub fn for_secret(
        secret: &str,
        name: impl Into<String>,
        scopes: Vec<Scope>,
        rate_limit: u32,
    ) -> Result<NewApiKey, ValidationError> {
        let p = PresentedKey::parse(secret)?;
        Ok(NewApiKey {
            name: name.into(),
            prefix: p.prefix,
            hash: p.hash,
            scopes,
            rate_limit,
        })
    }

    /// Checks the name (1 to [`MAX_KEY_NAME_CHARS`] characters, one line, no control
    /// characters), the scopes (at least one), the rate limit (1 to [`MAX_RATE_LIMIT`]) and
    /// the prefix's shape.
    ///
    /// # Errors
    /// The first field that is wrong.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let chars = self.name.chars().count();
        if self.name.trim().is_empty() || chars > MAX_KEY_NAME_CHARS {
            return Err(ValidationError::new(
                "name",
                format!("a name of {chars} characters"),
                format!("1 to {MAX_KEY_NAME_CHARS} characters"),
            ));
        }
        if !crate::text::is_one_line(&self.name) {
            return Err(ValidationError::new(
                "name",
                "it contains control characters or line breaks",
                "one line of printable text",
            ));
        }
        if self.scopes.is_empty() {
            return Err(ValidationError::new(
                "scopes",
                "no scope given",
                format!("one or more of {SCOPES_ACCEPTED}"),
            ));
        }
        if !(1..=MAX_RATE_LIMIT).contains(&self.rate_limit) {
            return Err(ValidationError::new(
                "rate_limit",
                format!("{} is out of range", self.rate_limit),
                format!("requests per minute from 1 to {MAX_RATE_LIMIT}"),
            ));
        }
        if self.prefix.len() != DISPLAY_PREFIX_LEN || !self.prefix.starts_with(SECRET_PREFIX) {
            return Err(ValidationError::new(
                "prefix",
                "not a display prefix",
                format!("the secret's first {DISPLAY_PREFIX_LEN} characters"),
            ));
        }
        Ok(())
    }
}

/// A stored key, without its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// Its name.
    pub name: String,
    /// The secret's first characters, to recognise it.
    pub prefix: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Requests per minute.
    pub rate_limit: u32,
    /// False once revoked.
    pub active: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last used, as last recorded (at most once a minute).
    pub last_used_at: Option<Timestamp>,
}

impl ApiKey {
    /// Whether the key grants `scope` (`admin` grants every scope).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// API keys for the HTTP server.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores `key` and returns it as stored.
    ///
    /// An implementation MUST:
    /// - refuse a key that fails [`NewApiKey::validate`] with `Invalid`, writing nothing;
    /// - refuse a hash already stored with `Duplicate`;
    /// - give it the next id (greater than every id before), `active` true, `created_at`
    ///   now and no `last_used_at`; store the scopes without repeats, in order.
    async fn create(&self, key: NewApiKey) -> Result<ApiKey, PortError>;

    /// Every key, revoked ones too, ordered by id.
    async fn list(&self) -> Result<Vec<ApiKey>, PortError>;

    /// Marks the key inactive and returns it; revoking a revoked key changes nothing.
    /// MUST answer `NotFound` for an unknown id.
    async fn revoke(&self, id: ApiKeyId) -> Result<ApiKey, PortError>;

    /// The active key whose prefix and hash are `presented`'s, comparing hashes in constant
    /// time; `None` for an unknown or revoked key. MUST NOT change anything.
    async fn verify(&self, presented: &PresentedKey) -> Result<Option<ApiKey>, PortError>;

    /// Records `at` as the key's last use (never moving it back). MUST answer `NotFound` for
    /// an unknown id. Callers write at most once a minute per key.
    async fn touch(&self, id: ApiKeyId, at: Timestamp) -> Result<(), PortError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "pqk_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn hashes_round_trip_and_compare() {
        let h = KeyHash::of(SECRET);
        assert_eq!(KeyHash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(h.matches(&KeyHash::of(SECRET)));
        assert!(!h.matches(&KeyHash::of("pqk_other")));
        assert!(KeyHash::from_hex("zz").is_err());
        assert_eq!(format!("{h:?}"), "KeyHash(..)");
    }

    #[test]
    fn presented_keys_are_checked_without_echoing_them() {
        let p = PresentedKey::parse(SECRET).unwrap();
        assert_eq!(p.prefix, "pqk_00112233");
        assert!(!format!("{p:?}").contains("44556677"));
        let e = PresentedKey::parse("pqk_secretsecret").unwrap_err();
        assert!(!e.to_string().contains("secretsecret"), "{e}");
        assert!(PresentedKey::parse(&SECRET.to_uppercase()).is_err());
    }

    #[test]
    fn new_keys_are_validated() {
        let ok = NewApiKey::for_secret(SECRET, "bot", vec![Scope::Read], 60).unwrap();
        assert!(ok.validate().is_ok());
        let mut k = ok.clone();
        k.name = " ".into();
        assert_eq!(k.validate().unwrap_err().field, "name");
        let mut k = ok.clone();
        k.name = "a\u{1b}b".into();
        assert_eq!(k.validate().unwrap_err().field, "name");
        let mut k = ok.clone();
        k.scopes.clear();
        assert_eq!(k.validate().unwrap_err().field, "scopes");
        let mut k = ok;
        k.rate_limit = 0;
        assert_eq!(k.validate().unwrap_err().field, "rate_limit");
    }

    #[test]
    fn scopes_parse_store_and_admin_grants_all() {
        assert_eq!("enqueue".parse::<Scope>().unwrap(), Scope::Enqueue);
        assert!("root"
            .parse::<Scope>()
            .unwrap_err()
            .accepted
            .contains("admin"));
        let s = scopes_from_text("work,read,read").unwrap();
        assert_eq!(scopes_to_text(&s), "read,work");
        let key = ApiKey {
            id: ApiKeyId(1),
            name: "a".into(),
            prefix: "pqk_00000000".into(),
            scopes: vec![Scope::Admin],
            rate_limit: 1,
            active: true,
            created_at: Timestamp::UNIX_EPOCH,
            last_used_at: None,
        };
        assert!(Scope::ALL.iter().all(|s| key.allows(*s)));
    }
}
