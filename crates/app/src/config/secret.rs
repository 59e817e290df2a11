//! A secret configuration value: it never prints. `Debug`, `Display`
//! and `Serialize` all give `<redacted>`; only [`Secret::expose`] returns the text.

use serde::{Serialize, Serializer};
use std::fmt;

/// What a secret prints as, everywhere.
pub const REDACTED: &str = "<redacted>";

/// A string that must never reach logs, errors, task logs or the effective-configuration
/// dump.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text, for the one place that needs it (an HTTP client's request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// `url` with the password of its `user:password@` part replaced by `<redacted>`, for any
/// scheme (`postgres://app:pw@db/prismq` → `postgres://app:<redacted>@db/prismq`).
pub fn redact_url_password(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return url.into();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.into();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.into();
    };
    let start = scheme_end + 3 + colon + 1;
    let end = scheme_end + 3 + at;
    format!("{}{REDACTED}{}", &url[..start], &url[end..]).into()
}

/// Serializes an optional URL with its password redacted.
pub(crate) fn ser_redacted_url<S: Serializer>(
    url: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(u) => s.serialize_some(&*redact_url_password(u)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url_password("postgres://app:s3cret@db:5432/q"),
            "postgres://app:<redacted>@db:5432/q"
        );
        assert_eq!(
            redact_url_password("postgresql://app:p@ss@db/q?x=1"),
            "postgresql://app:<redacted>@db/q?x=1"
        );
        assert_eq!(
            redact_url_password("postgres://app@db/q"),
            "postgres://app@db/q"
        );
        assert_eq!(redact_url_password("postgres://db/q"), "postgres://db/q");
        assert_eq!(
            redact_url_password("sqlite:///tmp/q.db"),
            "sqlite:///tmp/q.db"
        );
        assert_eq!(redact_url_password("not a url"), "not a url");
    }

    #[test]
    fn never_prints() {
        let s = Secret::new("AIzaSyTopSecret");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(s.expose(), "AIzaSyTopSecret");
    }
}
