//! The plugins as the composition root uses them: building the registry from a plugin list
//! over a [`PluginContext`], and asking the plugins what they need ([`check_ready`],
//! [`diagnose`], [`quota_limits`]). The list itself is [`crate::plugins::PLUGINS`].

use std::collections::BTreeMap;

use prismq_domain::plugin_host::Diagnosis;
use prismq_domain::{Plugin, TaskType};

use super::AppError;
use crate::config::Config;
use crate::registry::PluginRegistry;

pub use crate::plugins::PLUGINS;
pub use prismq_domain::plugin_host::BucketLimit;
pub use prismq_domain::PluginContext;

/// One entry of the plugin list.
pub type PluginEntry = &'static dyn Plugin;

pub(super) fn build_registry(
    plugins: &[PluginEntry],
    config: &Config,
    ctx: &PluginContext,
) -> Result<PluginRegistry, AppError> {
    let mut registry = PluginRegistry::new();
    for p in plugins {
        p.register(&mut registry, &config.plugin_section(p.name()), ctx)
            .map_err(|source| AppError::Plugin {
                plugin: p.name(),
                source,
            })?;
    }
    Ok(registry)
}

/// Every quota bucket the plugins charge, with its limit under `config`, as of `now`.
pub fn quota_limits(config: &Config, now: prismq_domain::Timestamp) -> Vec<BucketLimit> {
    PLUGINS
        .iter()
        .flat_map(|p| p.quota_limits(&config.plugin_section(p.name()), now))
        .collect()
}

/// Whether a task of `task_type` can run here as configured: the first plugin's refusal,
/// one line saying what to set or install.
///
/// # Errors
/// That refusal.
pub fn check_ready(config: &Config, task_type: &TaskType) -> Result<(), String> {
    PLUGINS
        .iter()
        .try_for_each(|p| p.check_ready(&config.plugin_section(p.name()), task_type))
}

/// Every plugin's report on its set-up, merged.
pub fn diagnose(config: &Config) -> Diagnosis {
    let mut all = Diagnosis::default();
    for p in PLUGINS {
        let d = p.diagnose(&config.plugin_section(p.name()));
        all.details.extend(d.details);
        all.warnings.extend(d.warnings);
    }
    all
}

/// The quota buckets each registered task type charges, with the plugins built from
/// `config` over `ctx`; `None` when a plugin refuses its configuration.
pub fn quota_buckets_by_type(
    config: &Config,
    ctx: &PluginContext,
) -> Option<BTreeMap<String, Vec<String>>> {
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
