//! The YouTube plugin as the app sees it ([`prismq_domain::Plugin`]): its `[youtube]`
//! section, its registration, what `prismq collect` checks before it starts (an API key, or
//! yt-dlp found), what `prismq validate` reports, its quota buckets, and killing yt-dlp's
//! process groups when the process exits at once.

use serde_json::{Map, Value};

use prismq_domain::plugin_host::{BucketLimit, Diagnosis};
use prismq_domain::settings::{Section, SettingError, SettingSpec};
use prismq_domain::{Plugin, PluginContext, Registrar, TaskType, Timestamp, ValidationError};

use crate::config::{Backend, YoutubeConfig};
use crate::section::{SECTION, SETTINGS};
use crate::youtube::source::ytdlp::locate::find_program;
use crate::youtube::source::ytdlp::process::kill_running_groups;

/// The YouTube plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct YoutubePlugin;

/// The value the app's plugin list holds.
pub static PLUGIN: YoutubePlugin = YoutubePlugin;

/// How to get an API key, in every message that asks for one.
const KEY: &str = "set YOUTUBE_API_KEY to a YouTube Data API v3 key (Google Cloud console → APIs & Services → Credentials)";

/// The section typed; the loader already refused a bad one, so this fails only for a
/// section built by hand.
fn config(section: &Section) -> Result<YoutubeConfig, ValidationError> {
    YoutubeConfig::from_section(section)
        .map_err(|e| ValidationError::new(e.key, format!("{}: {}", e.value, e.problem), e.accepted))
}

impl Plugin for YoutubePlugin {
    fn name(&self) -> &'static str {
        SECTION
    }

    fn settings(&self) -> &'static [SettingSpec] {
        SETTINGS
    }

    fn check_settings(&self, section: &Section) -> Result<Map<String, Value>, SettingError> {
        YoutubeConfig::from_section(section).map(|c| c.effective())
    }

    fn register(
        &self,
        registrar: &mut dyn Registrar,
        section: &Section,
        ctx: &PluginContext,
    ) -> Result<(), ValidationError> {
        crate::registry::register(registrar, config(section)?, ctx.clone())
    }

    fn check_ready(&self, section: &Section, task_type: &TaskType) -> Result<(), String> {
        if !crate::registry::task_types().contains(task_type) {
            return Ok(());
        }
        let y = config(section).map_err(|e| e.to_string())?;
        if y.api_key.is_some() {
            return Ok(());
        }
        if task_type.as_str() == "trending_scrape" {
            return Err(format!(
                "trending needs the YouTube Data API and no API key is configured: {KEY}"
            ));
        }
        if y.backend != Backend::Api && find_program(&y.ytdlp_path).is_none() {
            return Err(format!(
                "no YouTube source is available: {KEY}, or install yt-dlp (`pipx install yt-dlp`, or see https://github.com/yt-dlp/yt-dlp#installation) so that `{}` is on PATH, or set youtube.ytdlp_path to its location",
                y.ytdlp_path.display()
            ));
        }
        Ok(())
    }

    fn diagnose(&self, section: &Section) -> Diagnosis {
        let y = match config(section) {
            Ok(y) => y,
            Err(e) => {
                return Diagnosis {
                    details: Vec::new(),
                    warnings: vec![e.to_string()],
                }
            }
        };
        let mut details = vec![format!("youtube backend: {}", y.backend.as_str())];
        let has_key = y.api_key.is_some();
        let ytdlp = find_program(&y.ytdlp_path);
        let mut warnings = Vec::new();
        match y.backend {
            Backend::Api if !has_key => warnings.push(
                "youtube.backend is api but no API key is set; set YOUTUBE_API_KEY (or youtube.api_key), or choose ytdlp".to_owned(),
            ),
            Backend::Ytdlp | Backend::Auto if !has_key && ytdlp.is_none() => warnings.push(format!(
                "no API key and yt-dlp ({}) was not found; install yt-dlp, set youtube.ytdlp_path, or set YOUTUBE_API_KEY",
                y.ytdlp_path.display()
            )),
            _ => {}
        }
        if let Some(p) = ytdlp {
            details.push(format!("yt-dlp: {}", p.display()));
        }
        Diagnosis { details, warnings }
    }

    fn quota_limits(&self, section: &Section, now: Timestamp) -> Vec<BucketLimit> {
        let quota = YoutubeConfig::from_section(section)
            .map(|c| c.quota)
            .unwrap_or_default();
        crate::registry::quota_limits(&quota, now)
    }

    fn forms(&self) -> &'static [prismq_domain::param_spec::TaskForm] {
        crate::youtube::declare::FORMS
    }

    fn abort(&self) {
        // yt-dlp leads its own process group, out of reach of the terminal's signal, and an
        // immediate exit runs no destructor that would kill it.
        kill_running_groups();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::settings::SettingValue;
    use std::collections::BTreeMap;

    fn section(pairs: &[(&str, &str)]) -> Section {
        Section::new(
            SECTION,
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), SettingValue::Str((*v).to_owned())))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn tt(name: &str) -> TaskType {
        TaskType::new(name).unwrap()
    }

    #[test]
    fn readiness_asks_for_a_key_or_yt_dlp() {
        let missing = [("ytdlp_path", "/nonexistent/yt-dlp")];
        let e = PLUGIN
            .check_ready(&section(&missing), &tt("trending_scrape"))
            .unwrap_err();
        assert!(e.contains("YOUTUBE_API_KEY"), "{e}");
        let e = PLUGIN
            .check_ready(&section(&missing), &tt("channel_scrape"))
            .unwrap_err();
        assert!(e.contains("/nonexistent/yt-dlp"), "{e}");
        assert!(PLUGIN
            .check_ready(&section(&missing), &tt("example_echo"))
            .is_ok());
        let keyed = [("ytdlp_path", "/nonexistent/yt-dlp"), ("api_key", "AIzaK")];
        assert!(PLUGIN
            .check_ready(&section(&keyed), &tt("trending_scrape"))
            .is_ok());
        let d = PLUGIN.diagnose(&section(&[("backend", "api")]));
        assert_eq!(d.details[0], "youtube backend: api");
        assert!(d.warnings[0].contains("YOUTUBE_API_KEY"), "{d:?}");
    }

    #[test]
    fn quota_limits_follow_the_section() {
        let now = Timestamp::from_second(0).unwrap();
        let limits = PLUGIN.quota_limits(&section(&[("search_calls_per_day", "7")]), now);
        let search = limits.iter().find(|l| l.bucket.contains("search")).unwrap();
        assert_eq!(search.limit, 7);
    }
}
