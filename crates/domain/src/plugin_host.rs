//! What a plugin crate and the app exchange: the [`Plugin`] trait a plugin crate exports one
//! value of (the app's plugin list holds `&PLUGIN`), and the [`PluginContext`] of shared
//! ports the app hands it. Every hook but [`Plugin::name`] and [`Plugin::register`] has a
//! default that does nothing, so a plugin without configuration or external tools writes
//! two methods.

use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

use crate::error::ValidationError;
use crate::param_spec::TaskForm;
use crate::plugin::Registrar;
use crate::ports::{Clock, QuotaLedger, TrackedVideos};
use crate::settings::{Section, SettingError, SettingSpec};
use crate::task::TaskType;
use crate::Timestamp;

/// The shared ports a plugin may use besides its configuration.
#[derive(Clone)]
pub struct PluginContext {
    /// The shared quota ledger (every worker and process on one store shares it).
    pub quota: Arc<dyn QuotaLedger>,
    /// The clock every "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Which videos are tracked (read by statistics refreshes).
    pub tracked: Arc<dyn TrackedVideos>,
}

impl fmt::Debug for PluginContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginContext")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// What a plugin says about its set-up for `prismq validate`: facts worth showing, and
/// warnings about a source that cannot work as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// One line each (`youtube backend: auto`).
    pub details: Vec<String>,
    /// One line each, saying what to set or install.
    pub warnings: Vec<String>,
}

/// A quota bucket's daily limit as configured, and when its day next resets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BucketLimit {
    /// The bucket's name in the quota ledger.
    pub bucket: String,
    /// Units a day.
    pub limit: u64,
    /// The next reset after now.
    pub resets_at: Timestamp,
}

/// A source of tasks: one value per plugin crate, listed in the app's plugin list.
pub trait Plugin: Send + Sync {
    /// The plugin's name, lower-case: also its configuration section (`[youtube]`) and the
    /// prefix of its environment variables (`PRISMQ_YOUTUBE__…`).
    fn name(&self) -> &'static str;

    /// The keys of its section. None (the default): the section is refused if present.
    fn settings(&self) -> &'static [SettingSpec] {
        &[]
    }

    /// Types and checks `section`, returning every setting's effective value as JSON
    /// (defaults filled in, secrets as [`crate::settings::REDACTED`], `null` when unset),
    /// which `prismq config show` prints. Runs when the configuration loads, so a bad
    /// value is refused before any command runs.
    ///
    /// # Errors
    /// The first bad setting.
    fn check_settings(&self, section: &Section) -> Result<Map<String, Value>, SettingError> {
        let _ = section;
        Ok(Map::new())
    }

    /// Adds the plugin's handlers, built from `section` over `ctx`.
    ///
    /// # Errors
    /// A bad setting (field `section.key`), or a task type already registered (`type`).
    fn register(
        &self,
        registrar: &mut dyn Registrar,
        section: &Section,
        ctx: &PluginContext,
    ) -> Result<(), ValidationError>;

    /// Whether a task of `task_type` (one of this plugin's) can run here as configured,
    /// checked by `prismq collect` before it enqueues. `Err` is one line saying what to
    /// set or install. Default: ready.
    ///
    /// # Errors
    /// A missing key, tool or other prerequisite.
    fn check_ready(&self, section: &Section, task_type: &TaskType) -> Result<(), String> {
        let _ = (section, task_type);
        Ok(())
    }

    /// The plugin's set-up for `prismq validate`'s configuration check. Default: nothing.
    fn diagnose(&self, section: &Section) -> Diagnosis {
        let _ = section;
        Diagnosis::default()
    }

    /// Every quota bucket the plugin charges, with its daily limit under `section`, as of
    /// `now`. Default: none.
    fn quota_limits(&self, section: &Section, now: Timestamp) -> Vec<BucketLimit> {
        let _ = (section, now);
        Vec::new()
    }

    /// Its task types' typed forms on the command line (`prismq enqueue channel …`), each
    /// built from its declared parameters. Needs no configuration: the command line is
    /// parsed before any loads. Default: none (`prismq enqueue raw` reaches every type).
    fn forms(&self) -> &'static [TaskForm] {
        &[]
    }

    /// The process is about to exit at once (a second Ctrl-C) without running destructors:
    /// stop what would outlive it (external tools in their own process groups). Must not
    /// block. Default: nothing.
    fn abort(&self) {}
}
