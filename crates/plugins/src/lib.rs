//! PrismQ's YouTube plugins: the five task handlers (`channel_scrape`, `trending_scrape`,
//! `keyword_search`, `api_scrape`, `refresh_stats`) and the sources they read, a quota-aware YouTube Data
//! API client and a yt-dlp adapter.
//!
//! The crate depends on `prismq-domain` alone of PrismQ's crates. The app lists [`PLUGIN`]
//! (a [`prismq_domain::Plugin`]): it reads its `[youtube]` section, registers the handlers,
//! says whether a task can run here (an API key, yt-dlp on `PATH`) and stops yt-dlp on an
//! immediate exit.
#![deny(missing_docs)]

pub mod config;
pub mod plugin;
pub mod registry;
pub mod section;
pub mod youtube;

pub use config::{ApiKey, Backend, YoutubeConfig, DEFAULT_API_BASE_URL};
pub use plugin::{YoutubePlugin, PLUGIN};
pub use registry::{quota_limits, register, task_types};
