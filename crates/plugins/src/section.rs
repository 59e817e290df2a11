//! The `[youtube]` section of PrismQ's configuration, read into [`YoutubeConfig`]: the keys
//! (`backend`, `api_key`, …, every one settable as `PRISMQ_YOUTUBE__<KEY>`, the key also as
//! `YOUTUBE_API_KEY`), their parsing and ranges, and their effective values for
//! `prismq config show`. Errors name `youtube.<key>`, the value and what is accepted.

use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Duration;

use prismq_domain::setting_values::{
    boolean, format_duration, integer, non_empty_text, text, whole_seconds, Bad,
};
use prismq_domain::settings::{Section, SettingError, SettingSpec, SettingValue, REDACTED};

use crate::config::{check_api_base_url, ApiKey, Backend, YoutubeConfig, API_BASE_URL_ACCEPTED};

/// The section's name.
pub const SECTION: &str = "youtube";

/// Every key of `[youtube]`, in the order `prismq config show` lists them.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec::new("backend"),
    SettingSpec::secret("api_key", &["YOUTUBE_API_KEY"]),
    SettingSpec::new("api_base_url"),
    SettingSpec::new("ytdlp_path"),
    SettingSpec::new("request_timeout"),
    SettingSpec::new("ytdlp_timeout"),
    SettingSpec::new("quota_units_per_day"),
    SettingSpec::new("search_calls_per_day"),
    SettingSpec::new("baselines_on_demand"),
];

const BACKEND_ACCEPTED: &str = "api, ytdlp, auto";

impl Backend {
    /// The name the configuration uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Api => "api",
            Backend::Ytdlp => "ytdlp",
            Backend::Auto => "auto",
        }
    }
}

fn backend(v: &SettingValue) -> Result<Backend, Bad> {
    let s = text(v, BACKEND_ACCEPTED)?;
    match s.trim().to_ascii_lowercase().as_str() {
        "api" => Ok(Backend::Api),
        "ytdlp" => Ok(Backend::Ytdlp),
        "auto" => Ok(Backend::Auto),
        _ => Err(Bad::new("not one of the accepted values", BACKEND_ACCEPTED)),
    }
}

fn secs(min: u64, max: u64) -> impl Fn(&SettingValue) -> Result<u64, Bad> {
    move |v| {
        whole_seconds(v, Duration::from_secs(min), Duration::from_secs(max))
            .map(|d| d.as_secs().max(1))
    }
}

impl YoutubeConfig {
    /// Reads `section`; keys it does not set keep [`YoutubeConfig::default`]'s values.
    ///
    /// # Errors
    /// The first bad value, naming `youtube.<key>`, the value (the API key redacted), what
    /// is wrong and what is accepted.
    pub fn from_section(section: &Section) -> Result<YoutubeConfig, SettingError> {
        let d = YoutubeConfig::default();
        let backend = section.get("backend", d.backend, backend)?;
        let api_key = section.get_secret("api_key", d.api_key, |v| {
            const ACC: &str = "a YouTube Data API key: text without spaces";
            let s = non_empty_text(ACC)(v)?;
            if s.chars().any(char::is_whitespace) {
                return Err(Bad::new("contains whitespace", ACC));
            }
            ApiKey::new(s)
                .map(Some)
                .map_err(|e| Bad::new(e.problem, ACC))
        })?;
        let api_base_url = section.get("api_base_url", d.api_base_url, |v| {
            let s = non_empty_text(API_BASE_URL_ACCEPTED)(v)?;
            check_api_base_url(&s).map_err(|p| Bad::new(p, API_BASE_URL_ACCEPTED))?;
            Ok(s.trim_end_matches('/').to_owned())
        })?;
        let ytdlp_path = section.get("ytdlp_path", d.ytdlp_path, |v| {
            non_empty_text("an executable's name on PATH or a path to it")(v).map(PathBuf::from)
        })?;
        let request_timeout_secs =
            section.get("request_timeout", d.request_timeout_secs, secs(1, 3_600))?;
        let ytdlp_timeout_secs =
            section.get("ytdlp_timeout", d.ytdlp_timeout_secs, secs(1, 86_400))?;
        let mut quota = d.quota;
        quota.general_daily_units =
            section.get("quota_units_per_day", quota.general_daily_units, |v| {
                integer(v, 1, 1_000_000_000)
            })?;
        quota.search_daily_units =
            section.get("search_calls_per_day", quota.search_daily_units, |v| {
                integer(v, 1, 1_000_000_000)
            })?;
        let baselines_on_demand =
            section.get("baselines_on_demand", d.baselines_on_demand, boolean)?;
        Ok(YoutubeConfig {
            backend,
            api_key,
            api_base_url,
            ytdlp_path,
            request_timeout_secs,
            ytdlp_timeout_secs,
            max_response_bytes: d.max_response_bytes,
            quota,
            baselines_on_demand,
        })
    }

    /// Every key of [`SETTINGS`] with its value as `prismq config show` prints it: durations
    /// as `30s`, the API key as `<redacted>` (or `null` when unset).
    pub fn effective(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("backend".into(), json!(self.backend.as_str()));
        m.insert(
            "api_key".into(),
            self.api_key
                .as_ref()
                .map_or(Value::Null, |_| json!(REDACTED)),
        );
        m.insert("api_base_url".into(), json!(self.api_base_url));
        m.insert(
            "ytdlp_path".into(),
            json!(self.ytdlp_path.display().to_string()),
        );
        m.insert(
            "request_timeout".into(),
            json!(format_duration(self.request_timeout())),
        );
        m.insert(
            "ytdlp_timeout".into(),
            json!(format_duration(self.ytdlp_timeout())),
        );
        m.insert(
            "quota_units_per_day".into(),
            json!(self.quota.general_daily_units),
        );
        m.insert(
            "search_calls_per_day".into(),
            json!(self.quota.search_daily_units),
        );
        m.insert(
            "baselines_on_demand".into(),
            json!(self.baselines_on_demand),
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn section(pairs: &[(&str, SettingValue)]) -> Section {
        Section::new(
            SECTION,
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn s(v: &str) -> SettingValue {
        SettingValue::Str(v.to_owned())
    }

    #[test]
    fn an_empty_section_is_the_default_and_every_key_is_shown() {
        let c = YoutubeConfig::from_section(&section(&[])).unwrap();
        assert_eq!(c, YoutubeConfig::default());
        let shown = c.effective();
        let keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        assert_eq!(shown.keys().count(), keys.len());
        for k in keys {
            assert!(shown.contains_key(k), "{k}");
        }
        assert_eq!(shown["request_timeout"], json!("30s"));
        assert_eq!(shown["api_key"], Value::Null);
    }

    #[test]
    fn values_are_typed_and_refusals_name_key_value_and_accepted() {
        let c = YoutubeConfig::from_section(&section(&[
            ("backend", s("YTDLP")),
            ("request_timeout", s("1m30s")),
            ("quota_units_per_day", SettingValue::Int(500)),
            ("api_key", s("AIzaSecret")),
            ("api_base_url", s("http://127.0.0.1:9/v3/")),
        ]))
        .unwrap();
        assert_eq!(c.backend, Backend::Ytdlp);
        assert_eq!(c.request_timeout_secs, 90);
        assert_eq!(c.quota.general_daily_units, 500);
        assert_eq!(c.api_base_url, "http://127.0.0.1:9/v3");
        assert_eq!(c.effective()["api_key"], json!(REDACTED));
        let e =
            YoutubeConfig::from_section(&section(&[("ytdlp_timeout", s("1500ms"))])).unwrap_err();
        assert_eq!(e.key, "youtube.ytdlp_timeout");
        assert_eq!(e.value, "\"1500ms\"");
        assert_eq!(e.problem, "not a whole number of seconds");
        let e = YoutubeConfig::from_section(&section(&[("api_key", s("a b"))])).unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.value.as_str()),
            ("youtube.api_key", REDACTED)
        );
        let e = YoutubeConfig::from_section(&section(&[("backend", s("scrape"))])).unwrap_err();
        assert_eq!(e.accepted, BACKEND_ACCEPTED);
    }
}
