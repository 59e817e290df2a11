//! The plugin's entry point: [`register`] builds the configured source and adds the five
//! handlers to the app's registrar.

use prismq_domain::plugin_host::BucketLimit;
use prismq_domain::{PluginContext, Registrar, TaskType, ValidationError};
use std::sync::Arc;

use crate::config::{ResolvedBackend, YoutubeConfig};
use crate::youtube::api::ApiHandler;
use crate::youtube::channel::ChannelHandler;
use crate::youtube::common::{self, TASK_TYPES};
use crate::youtube::keyword::KeywordHandler;
use crate::youtube::refresh::RefreshHandler;
use crate::youtube::source::data_api::{DataApiSettings, DataApiSource};
use crate::youtube::source::quota::QuotaGate;
use crate::youtube::source::retry::RequestRetry;
use crate::youtube::source::ytdlp::YtDlpSource;
use crate::youtube::source::VideoSource;
use crate::youtube::trending::TrendingHandler;

/// The task types [`register`] adds.
pub fn task_types() -> Vec<TaskType> {
    TASK_TYPES.iter().map(|t| common::task_type(t)).collect()
}

/// Each Data API quota bucket: its ledger name, its daily limit under `quota`, and the next
/// reset after `now` (midnight Pacific time), for operators' views of the ledger.
pub fn quota_limits(
    quota: &crate::youtube::source::quota::QuotaConfig,
    now: prismq_domain::Timestamp,
) -> Vec<BucketLimit> {
    use crate::youtube::source::quota::{next_reset, Bucket};
    let resets_at = next_reset(now);
    [Bucket::General, Bucket::Search, Bucket::Stats]
        .into_iter()
        .map(|b| BucketLimit {
            bucket: b.ledger_name().to_owned(),
            limit: quota.limit(b),
            resets_at,
        })
        .collect()
}

/// Builds the Data API source from `config`, or `None` without a key.
///
/// # Errors
/// A bad setting, named `youtube.<field>`.
pub fn data_api_source(
    config: &YoutubeConfig,
    deps: &PluginContext,
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

/// Registers `channel_scrape`, `trending_scrape`, `keyword_search`, `api_scrape` and
/// `refresh_stats`.
///
/// The backend is chosen once here: `api` (needs `api_key`), `ytdlp`, or `auto` (the API
/// when a key is configured, else yt-dlp). `trending_scrape` always uses the API; without a
/// key its tasks fail permanently with a message saying what to configure; so does
/// `refresh_stats`, which reads statistics from the API alone.
///
/// # Errors
/// A bad setting (`youtube.<field>`), or a task type already registered (`type`).
pub fn register(
    registrar: &mut dyn Registrar,
    config: YoutubeConfig,
    deps: PluginContext,
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
        TrendingHandler::new(api.clone()).with_baselines_on_demand(config.baselines_on_demand),
    ))?;
    registrar.add(Arc::new(RefreshHandler::new(
        api,
        deps.tracked.clone(),
        deps.clock.clone(),
    )))?;
    registrar.add(Arc::new(
        KeywordHandler::new(main.clone(), deps.clock.clone())
            .with_baselines_on_demand(config.baselines_on_demand),
    ))?;
    registrar.add(Arc::new(ApiHandler::new(main)))?;
    Ok(())
}
