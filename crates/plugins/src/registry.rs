//! The plugin's entry point: [`register`] builds the configured source and adds the four
//! handlers to the app's registrar.

use prismq_domain::ports::{Clock, QuotaLedger};
use prismq_domain::{Registrar, TaskType, ValidationError};
use std::fmt;
use std::sync::Arc;

use crate::config::{ResolvedBackend, YoutubeConfig};
use crate::youtube::api::ApiHandler;
use crate::youtube::channel::ChannelHandler;
use crate::youtube::common::{self, TASK_TYPES};
use crate::youtube::keyword::KeywordHandler;
use crate::youtube::source::data_api::{DataApiSettings, DataApiSource};
use crate::youtube::source::quota::QuotaGate;
use crate::youtube::source::retry::RequestRetry;
use crate::youtube::source::ytdlp::YtDlpSource;
use crate::youtube::source::VideoSource;
use crate::youtube::trending::TrendingHandler;

/// The ports the plugin needs from the app.
#[derive(Clone)]
pub struct PluginDeps {
    /// The shared quota ledger (every worker and process on one store shares it).
    pub quota: Arc<dyn QuotaLedger>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for PluginDeps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginDeps")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// The task types [`register`] adds.
pub fn task_types() -> Vec<TaskType> {
    TASK_TYPES.iter().map(|t| common::task_type(t)).collect()
}

/// Builds the Data API source from `config`, or `None` without a key.
///
/// # Errors
/// A bad setting, named `youtube.<field>`.
pub fn data_api_source(
    config: &YoutubeConfig,
    deps: &PluginDeps,
) -> Result<Option<Arc<dyn VideoSource>>, ValidationError> {
    let base_url = config.validate()?;
    let Some(key) = config.api_key.clone() else {
        return Ok(None);
    };
    let gate = QuotaGate::new(deps.quota.clone(), deps.clock.clone(), config.quota);
    let source = DataApiSource::new(
        DataApiSettings {
            base_url,
            api_key: key,
            timeout: config.request_timeout(),
            max_response_bytes: config.max_response_bytes,
            retry: RequestRetry::default(),
        },
        gate,
    )
    .map_err(|e| ValidationError::new("youtube", e, "a working TLS set-up"))?;
    Ok(Some(Arc::new(source)))
}

/// Registers `channel_scrape`, `trending_scrape`, `keyword_search` and `api_scrape`.
///
/// The backend is chosen once here: `api` (needs `api_key`), `ytdlp`, or `auto` (the API
/// when a key is configured, else yt-dlp). `trending_scrape` always uses the API; without a
/// key its tasks fail permanently with a message saying what to configure.
///
/// # Errors
/// A bad setting (`youtube.<field>`), or a task type already registered (`type`).
pub fn register(
    registrar: &mut dyn Registrar,
    config: YoutubeConfig,
    deps: PluginDeps,
) -> Result<(), ValidationError> {
    let api = data_api_source(&config, &deps)?;
    let main: Arc<dyn VideoSource> = match (config.resolved_backend(), &api) {
        (ResolvedBackend::Api, Some(api)) => api.clone(),
        (ResolvedBackend::Api, None) => {
            return Err(ValidationError::new(
                "youtube.api_key",
                "backend is api but no API key is configured",
                "a YouTube Data API key, or backend = \"ytdlp\" or \"auto\"",
            ))
        }
        (ResolvedBackend::Ytdlp, _) => Arc::new(YtDlpSource::new(
            config.ytdlp_path.clone(),
            config.ytdlp_timeout(),
        )),
    };
    registrar.add(Arc::new(ChannelHandler::new(
        main.clone(),
        deps.clock.clone(),
    )))?;
    registrar.add(Arc::new(
        TrendingHandler::new(api).with_baselines_on_demand(config.baselines_on_demand),
    ))?;
    registrar.add(Arc::new(
        KeywordHandler::new(main.clone(), deps.clock.clone())
            .with_baselines_on_demand(config.baselines_on_demand),
    ))?;
    registrar.add(Arc::new(ApiHandler::new(main)))?;
    Ok(())
}
