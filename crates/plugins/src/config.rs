//! The plugin's configuration: which backend, the API key (a secret that never prints),
//! the API base URL, the yt-dlp path, timeouts, the response cap and the quota table.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

use prismq_domain::ValidationError;

use crate::youtube::source::quota::QuotaConfig;

/// The official Data API base URL: `youtube.api_base_url`'s default.
pub const DEFAULT_API_BASE_URL: &str = "https://www.googleapis.com/youtube/v3";

/// What `youtube.api_base_url` accepts.
pub const API_BASE_URL_ACCEPTED: &str = "an https:// URL such as https://www.googleapis.com/youtube/v3, or an http:// URL whose host is loopback (localhost, 127.0.0.0/8 or [::1]); the API key goes with every request, so plain http:// is refused for any other host";

/// Checks the Data API base URL: https:// to any host; http:// only to a loopback host
/// (local stand-ins), since every request carries the API key. `Err` holds what is wrong;
/// [`API_BASE_URL_ACCEPTED`] says what is accepted.
///
/// # Errors
/// Not a URL, another scheme, no host, or plain http:// to a host that is not loopback.
pub fn check_api_base_url(text: &str) -> Result<Url, String> {
    if text.chars().any(char::is_whitespace) {
        return Err("contains whitespace".to_owned());
    }
    let url = Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => Ok(url),
        ("http", Some(host)) if is_loopback(&host) => Ok(url),
        ("http" | "https", None) => Err("the URL has no host".to_owned()),
        ("http", _) => Err(
            "plain http:// to a host that is not loopback would send the API key in clear text"
                .to_owned(),
        ),
        (scheme, _) => Err(format!("the scheme {scheme}: is neither https: nor http:")),
    }
}

/// `localhost`, an address in 127.0.0.0/8, or `[::1]`; as the URL parser normalised it
/// (lower-cased, `127.1` read as 127.0.0.1), so spellings cannot sneak another host in.
fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// A YouTube Data API key. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    ///
    /// # Errors
    /// An empty key, or one with whitespace or control characters.
    pub fn new(key: impl Into<String>) -> Result<Self, ValidationError> {
        let key = key.into();
        if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValidationError::new(
                "youtube.api_key",
                "the key is empty or contains spaces or control characters",
                "the key exactly as the Google Cloud console shows it (e.g. AIza…)",
            ));
        }
        Ok(ApiKey(key))
    }

    /// The key itself, for building a request. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Which source the handlers read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// The Data API when a key is configured, else yt-dlp.
    #[default]
    Auto,
    /// The YouTube Data API (needs `api_key`).
    Api,
    /// yt-dlp.
    Ytdlp,
}

/// The YouTube plugin's settings, read from the `[youtube]` section of the configuration by
/// [`YoutubeConfig::from_section`] (`crate::section`).
#[derive(Clone, PartialEq, Eq)]
pub struct YoutubeConfig {
    /// Which backend (default auto).
    pub backend: Backend,
    /// The Data API key.
    pub api_key: Option<ApiKey>,
    /// The Data API base URL (default the official one).
    pub api_base_url: String,
    /// The yt-dlp executable (default `yt-dlp`, looked up on PATH).
    pub ytdlp_path: PathBuf,
    /// Whole-request timeout for the Data API, in seconds (default 30).
    pub request_timeout_secs: u64,
    /// Time limit of one yt-dlp run, in seconds (default 300).
    pub ytdlp_timeout_secs: u64,
    /// Largest Data API response accepted, in bytes (default 8 MiB).
    pub max_response_bytes: u64,
    /// Quota limits and prices.
    pub quota: QuotaConfig,
    /// `trending_scrape` and `keyword_search` tasks without a `baselines` parameter enqueue
    /// a scrape of each found channel that has no baseline yet (default false).
    pub baselines_on_demand: bool,
}

impl fmt::Debug for YoutubeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YoutubeConfig")
            .field("backend", &self.backend)
            .field("api_key", &self.api_key)
            .field("api_base_url", &self.api_base_url)
            .field("ytdlp_path", &self.ytdlp_path)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("ytdlp_timeout_secs", &self.ytdlp_timeout_secs)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("quota", &self.quota)
            .field("baselines_on_demand", &self.baselines_on_demand)
            .finish()
    }
}

impl Default for YoutubeConfig {
    fn default() -> Self {
        YoutubeConfig {
            backend: Backend::Auto,
            api_key: None,
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            ytdlp_path: PathBuf::from("yt-dlp"),
            request_timeout_secs: 30,
            ytdlp_timeout_secs: 300,
            max_response_bytes: 8 * 1024 * 1024,
            quota: QuotaConfig::default(),
            baselines_on_demand: false,
        }
    }
}

/// The backend actually used after `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedBackend {
    /// The Data API.
    Api,
    /// yt-dlp.
    Ytdlp,
}

impl YoutubeConfig {
    /// `auto` resolved: the API when a key is configured, else yt-dlp.
    pub fn resolved_backend(&self) -> ResolvedBackend {
        match (self.backend, &self.api_key) {
            (Backend::Api, _) | (Backend::Auto, Some(_)) => ResolvedBackend::Api,
            (Backend::Ytdlp, _) | (Backend::Auto, None) => ResolvedBackend::Ytdlp,
        }
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The yt-dlp time limit.
    pub fn ytdlp_timeout(&self) -> Duration {
        Duration::from_secs(self.ytdlp_timeout_secs)
    }

    /// Checks the settings and parses the base URL.
    ///
    /// # Errors
    /// The first bad setting, named `youtube.<field>`.
    pub fn validate(&self) -> Result<Url, ValidationError> {
        if self.backend == Backend::Api && self.api_key.is_none() {
            return Err(ValidationError::new(
                "youtube.api_key",
                "backend is api but no API key is configured",
                "a YouTube Data API key, or backend = \"ytdlp\" or \"auto\"",
            ));
        }
        let url = check_api_base_url(&self.api_base_url).map_err(|problem| {
            ValidationError::new(
                "youtube.api_base_url",
                format!("{:?}: {problem}", self.api_base_url),
                API_BASE_URL_ACCEPTED,
            )
        })?;
        for (field, value, max) in [
            (
                "youtube.request_timeout_secs",
                self.request_timeout_secs,
                3_600,
            ),
            (
                "youtube.ytdlp_timeout_secs",
                self.ytdlp_timeout_secs,
                86_400,
            ),
        ] {
            if value == 0 || value > max {
                return Err(ValidationError::new(
                    field,
                    format!("{value} is out of range"),
                    format!("1 to {max} seconds"),
                ));
            }
        }
        if self.max_response_bytes < 1024 {
            return Err(ValidationError::new(
                "youtube.max_response_bytes",
                format!(
                    "{} is too small for any API answer",
                    self.max_response_bytes
                ),
                "at least 1024 bytes (default 8 MiB)",
            ));
        }
        if self.quota.general_daily_units == 0 || self.quota.search_daily_units == 0 {
            return Err(ValidationError::new(
                "youtube.quota",
                "a daily limit is 0",
                "positive daily limits (defaults: 10000 general units, 100 search calls)",
            ));
        }
        if self.ytdlp_path.as_os_str().is_empty() {
            return Err(ValidationError::new(
                "youtube.ytdlp_path",
                "the path is empty",
                "a path to the yt-dlp executable, or a name on PATH (default yt-dlp)",
            ));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_never_prints() {
        let cfg = YoutubeConfig {
            api_key: Some(ApiKey::new("AIzaSECRET").unwrap()),
            ..YoutubeConfig::default()
        };
        let shown = format!(
            "{cfg:?} {} {:?}",
            cfg.api_key.as_ref().unwrap(),
            cfg.api_key
        );
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(ApiKey::new("").is_err());
        assert!(ApiKey::new("a b").is_err());
    }

    #[test]
    fn backend_resolution_and_validation() {
        let mut cfg = YoutubeConfig::default();
        assert_eq!(cfg.resolved_backend(), ResolvedBackend::Ytdlp);
        cfg.api_key = Some(ApiKey::new("k").unwrap());
        assert_eq!(cfg.resolved_backend(), ResolvedBackend::Api);
        cfg.backend = Backend::Ytdlp;
        assert_eq!(cfg.resolved_backend(), ResolvedBackend::Ytdlp);
        assert!(cfg.validate().is_ok());
        let bad = YoutubeConfig {
            backend: Backend::Api,
            ..YoutubeConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "youtube.api_key");
        let bad = YoutubeConfig {
            api_base_url: "ftp://x/".into(),
            ..YoutubeConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "youtube.api_base_url");
        let bad = YoutubeConfig {
            api_base_url: "http://api.example.com/youtube/v3".into(),
            ..YoutubeConfig::default()
        };
        let e = bad.validate().unwrap_err();
        assert_eq!(e.field, "youtube.api_base_url");
        assert!(e.problem.contains("clear text"), "{e}");
        for ok in [
            "http://127.0.0.1:9/v3",
            "http://[::1]:9",
            "http://localhost/v3",
        ] {
            let cfg = YoutubeConfig {
                api_base_url: ok.into(),
                ..YoutubeConfig::default()
            };
            assert!(cfg.validate().is_ok(), "{ok}");
        }
        let bad = YoutubeConfig {
            request_timeout_secs: 0,
            ..YoutubeConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().field,
            "youtube.request_timeout_secs"
        );
    }
}
