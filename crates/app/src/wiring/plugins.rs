//! The explicit plugin list. Adding a source is one line in [`PLUGINS`] (and a dependency):
//! see `docs/plugin-guide.md`.

use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{Clock, QuotaLedger};
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
    };
    prismq_plugins::register(registry, plugin, deps)
}
