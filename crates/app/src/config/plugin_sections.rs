//! The plugins' sections of the configuration. Each plugin declares its keys
//! ([`Plugin::settings`]); the loader checks keys and maps environment variables with them
//! (`loader::Known`), and hands each plugin its own section (every layer merged) to type and check
//! ([`Plugin::check_settings`]), and keeps the section for the plugin's registration and the
//! effective values for `prismq config show`. A refusal becomes a [`ConfigError`] with the
//! value's origin.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use prismq_domain::settings::{Section, SettingError, SettingValue};
use prismq_domain::Plugin;

use super::{ConfigError, Origin};

/// One plugin's section: as given, and as the plugin typed it.
#[derive(Debug, Clone, PartialEq)]
struct PluginSection {
    section: Section,
    effective: Map<String, Value>,
}

/// Every plugin's section, by plugin name. Serializes as each plugin's effective values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginSections {
    sections: BTreeMap<String, PluginSection>,
}

impl Serialize for PluginSections {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.sections.iter().map(|(k, v)| (k, &v.effective)))
    }
}

fn config_error(e: SettingError, origins: &BTreeMap<String, Origin>) -> ConfigError {
    let origin = origins.get(&e.key).cloned().unwrap_or(Origin::Default);
    ConfigError::InvalidValue {
        key: e.key,
        value: e.value,
        problem: e.problem,
        accepted: e.accepted,
        origin,
    }
}

impl PluginSections {
    /// Each plugin's section from `raw` (absent sections are empty), typed by its plugin.
    ///
    /// # Errors
    /// The first setting a plugin refuses, with its origin from `origins`.
    pub(super) fn build(
        plugins: &[&dyn Plugin],
        mut raw: BTreeMap<String, BTreeMap<String, SettingValue>>,
        origins: &BTreeMap<String, Origin>,
    ) -> Result<PluginSections, ConfigError> {
        let mut sections = BTreeMap::new();
        for p in plugins {
            let section = Section::new(p.name(), raw.remove(p.name()).unwrap_or_default());
            let effective = p
                .check_settings(&section)
                .map_err(|e| config_error(e, origins))?;
            sections.insert(p.name().to_owned(), PluginSection { section, effective });
        }
        Ok(PluginSections { sections })
    }

    /// Every plugin's defaults (a section that names nothing).
    pub(super) fn defaults(plugins: &[&dyn Plugin]) -> PluginSections {
        PluginSections::build(plugins, BTreeMap::new(), &BTreeMap::new()).unwrap_or_default()
    }

    /// The section of the plugin `name`: empty when it was not loaded.
    pub fn section(&self, name: &str) -> Section {
        self.sections.get(name).map_or_else(
            || Section::new(name, BTreeMap::new()),
            |s| s.section.clone(),
        )
    }

    /// Sets `section.key` to `value` and has `plugin` type the section again.
    ///
    /// # Errors
    /// The value refused, as when it is loaded (origin: default).
    pub(super) fn set(
        &mut self,
        plugin: &dyn Plugin,
        key: &str,
        value: SettingValue,
    ) -> Result<(), ConfigError> {
        let mut section = self.section(plugin.name());
        section.set(key, value);
        let effective = plugin
            .check_settings(&section)
            .map_err(|e| config_error(e, &BTreeMap::new()))?;
        self.sections.insert(
            plugin.name().to_owned(),
            PluginSection { section, effective },
        );
        Ok(())
    }
}
