//! The explicit plugin list. Adding a source is one line in [`PLUGINS`] (and a dependency):
//! see `docs/plugin-guide.md`.

use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{Clock, QuotaLedger, TrackedVideos};
use prismq_domain::ValidationError;

use super::AppError;
use crate::config::{Config, YoutubeBackend};
use crate::registry::PluginRegistry;

/// What the app offers plugins besides their configuration.
#[derive(Clone)]
pub struct PluginContext {
    /// The shared quota ledger.
    pub quota: Arc<dyn QuotaLedger>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Which videos are tracked (read by statistics refreshes).
    pub tracked: Arc<dyn TrackedVideos>,
}

impl std::fmt::Debug for PluginContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginContext")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// A plugin's registration, adapted to the app: it reads its own section of the
/// configuration and adds its handlers.
pub type RegisterFn =
    fn(&mut PluginRegistry, &Config, &PluginContext) -> Result<(), ValidationError>;

/// One entry of the plugin list.
#[derive(Debug, Clone, Copy)]
pub struct PluginEntry {
    /// A short name for error messages.
    pub name: &'static str,
    /// Its registration.
    pub register: RegisterFn,
}

/// Every plugin [`super::App::open`] registers, in order.
pub const PLUGINS: &[PluginEntry] = &[
    PluginEntry {
        name: "youtube",
        register: register_youtube,
    },
    // Another source: PluginEntry { name: "my_source", register: register_my_source },
];

pub(super) fn build_registry(
    plugins: &[PluginEntry],
    config: &Config,
    ctx: &PluginContext,
) -> Result<PluginRegistry, AppError> {
    let mut registry = PluginRegistry::new();
    for p in plugins {
        (p.register)(&mut registry, config, ctx).map_err(|source| AppError::Plugin {
            plugin: p.name,
            source,
        })?;
    }
    Ok(registry)
}

/// A quota bucket's daily limit as configured, and when its day next resets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BucketLimit {
    /// The bucket's name in the quota ledger.
    pub bucket: String,
    /// Units a day.
    pub limit: u64,
    /// The next reset after now.
    pub resets_at: prismq_domain::Timestamp,
}

/// Every quota bucket the plugins charge, with its limit under `config`, as of `now`.
pub fn quota_limits(config: &Config, now: prismq_domain::Timestamp) -> Vec<BucketLimit> {
    let quota = prismq_plugins::youtube::source::quota::QuotaConfig {
        general_daily_units: config.youtube.quota_units_per_day,
        search_daily_units: config.youtube.search_calls_per_day,
        ..Default::default()
    };
    prismq_plugins::quota_limits(&quota, now)
        .into_iter()
        .map(|(bucket, limit, resets_at)| BucketLimit {
            bucket,
            limit,
            resets_at,
        })
        .collect()
}

/// The quota buckets each registered task type charges, with the plugins built from
/// `config` over `ctx`; `None` when a plugin refuses its configuration.
pub fn quota_buckets_by_type(
    config: &Config,
    ctx: &PluginContext,
) -> Option<std::collections::BTreeMap<String, Vec<String>>> {
    let registry = build_registry(PLUGINS, config, ctx).ok()?;
    Some(
        registry
            .task_types()
            .into_iter()
            .filter_map(|t| {
                let buckets = registry.handler(&t)?.quota_buckets();
                Some((t.to_string(), buckets))
            })
            .collect(),
    )
}

/// The YouTube plugin (`prismq-plugins`) with the `[youtube]` section.
fn register_youtube(
    registry: &mut PluginRegistry,
    config: &Config,
    ctx: &PluginContext,
) -> Result<(), ValidationError> {
    use prismq_plugins::{ApiKey, Backend, PluginDeps, YoutubeConfig};
    let y = &config.youtube;
    let secs = |d: Duration| d.as_secs().max(1);
    let mut plugin = YoutubeConfig {
        backend: match y.backend {
            YoutubeBackend::Api => Backend::Api,
            YoutubeBackend::Ytdlp => Backend::Ytdlp,
            YoutubeBackend::Auto => Backend::Auto,
        },
        api_key: y
            .api_key
            .as_ref()
            .map(|k| ApiKey::new(k.expose()))
            .transpose()?,
        api_base_url: y.api_base_url.clone(),
        ytdlp_path: y.ytdlp_path.clone(),
        request_timeout_secs: secs(y.request_timeout),
        ytdlp_timeout_secs: secs(y.ytdlp_timeout),
        baselines_on_demand: y.baselines_on_demand,
        ..YoutubeConfig::default()
    };
    plugin.quota.general_daily_units = y.quota_units_per_day;
    plugin.quota.search_daily_units = y.search_calls_per_day;
    let deps = PluginDeps {
        quota: ctx.quota.clone(),
        clock: ctx.clock.clone(),
        tracked: ctx.tracked.clone(),
    };
    prismq_plugins::register(registry, plugin, deps)
}
