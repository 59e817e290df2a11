//! The untyped stage of loading: every section as a struct with `deny_unknown_fields` whose
//! leaves are [`Raw`] values as a layer gave them (a TOML integer, an environment string, …).
//! The key list is generated from the same declaration, so the two cannot drift apart.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A leaf value before typing.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// `true` / `false`.
    Bool(bool),
    /// Any integer.
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// Text (every environment variable and command-line override arrives as text).
    Str(String),
    /// An array.
    List(Vec<Raw>),
    /// A table where a value was expected.
    Table,
}

impl Raw {
    /// The value as it is quoted back in an error message.
    pub fn render(&self) -> String {
        match self {
            Raw::Bool(b) => b.to_string(),
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) => f.to_string(),
            Raw::Str(s) => format!("{:?}", prismq_domain::task::truncate_for_message(s)),
            Raw::List(items) => {
                let inner: Vec<String> = items.iter().map(Raw::render).collect();
                format!("[{}]", inner.join(", "))
            }
            Raw::Table => "a table".to_owned(),
        }
    }

    /// What kind of value it is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Raw::Bool(_) => "a boolean",
            Raw::Int(_) => "an integer",
            Raw::Float(_) => "a number",
            Raw::Str(_) => "a string",
            Raw::List(_) => "a list",
            Raw::Table => "a table",
        }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a configuration value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(i128::from(v)))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(i128::from(v)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        i128::try_from(v)
            .map(Raw::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Raw>()? {
            items.push(item);
        }
        Ok(Raw::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Raw::Table)
    }
}

macro_rules! raw_sections {
    ($( $section:ident : $ty:ident { $($field:ident),* $(,)? } )*) => {
        $(
            #[derive(Debug, Default, serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            pub(crate) struct $ty {
                $( #[serde(default)] pub $field: Option<Raw>, )*
            }
        )*

        /// Every section, as the raw stage sees it.
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawConfig {
            $( #[serde(default)] pub $section: $ty, )*
        }

        /// The sections' names.
        pub const SECTIONS: &[&str] = &[$(stringify!($section)),*];

        /// Every setting's key, `section.field`.
        pub const KEYS: &[&str] = &[$($(concat!(stringify!($section), ".", stringify!($field)),)*)*];
    };
}

raw_sections! {
    database: RawDatabase { path, url, synchronous, busy_timeout, schema, pool_size }
    worker: RawWorker {
        concurrency, strategy, task_types, region, lease, heartbeat_interval,
        idle_backoff_min, idle_backoff_max, handler_timeout, shutdown_grace, server_ca_cert,
    }
    retry: RawRetry { base, cap, max_attempts }
    youtube: RawYoutube {
        backend, api_key, api_base_url, ytdlp_path, request_timeout, ytdlp_timeout,
        quota_units_per_day, search_calls_per_day, baselines_on_demand,
    }
    logging: RawLogging { level, format }
    ideas: RawIdeas {
        window, baseline_min_age_days, min_sample, score_min_age_days, growth_min_span_minutes,
    }
    server: RawServer { bind, tls_cert, tls_key, body_limit, request_timeout }
}

/// Keys whose values are secrets: never quoted back.
pub const SECRET_KEYS: &[&str] = &["youtube.api_key"];
