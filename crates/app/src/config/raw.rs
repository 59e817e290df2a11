//! The untyped stage of loading: every section of the app's own as a struct with
//! `deny_unknown_fields` whose leaves are [`Raw`] values as a layer gave them (a TOML integer,
//! an environment string, …). The key list is generated from the same declaration, so the two
//! cannot drift apart. The plugins' sections are declared by the plugins (`plugin_sections`).

pub(crate) use prismq_domain::settings::SettingValue as Raw;

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

        /// The app's own sections' names (the plugins' come from their declarations).
        pub const SECTIONS: &[&str] = &[$(stringify!($section)),*];

        /// Every key of the app's own sections, `section.field`.
        pub const KEYS: &[&str] = &[$($(concat!(stringify!($section), ".", stringify!($field)),)*)*];
    };
}

raw_sections! {
    database: RawDatabase { path, url, synchronous, busy_timeout, page_size, schema, pool_size }
    worker: RawWorker {
        concurrency, strategy, task_types, region, lease, heartbeat_interval,
        idle_backoff_min, idle_backoff_max, handler_timeout, shutdown_grace, prefetch, server_ca_cert,
    }
    retry: RawRetry { base, cap, max_attempts }
    logging: RawLogging { level, format }
    ideas: RawIdeas {
        window, baseline_min_age_days, min_sample, score_min_age_days, growth_min_span_minutes,
    }
    server: RawServer { bind, tls_cert, tls_key, body_limit, request_timeout }
}
