//! PrismQ's YouTube plugins: the five task handlers (`channel_scrape`, `trending_scrape`,
//! `keyword_search`, `api_scrape`, `refresh_stats`) and the sources they read, a quota-aware YouTube Data
//! API client and a yt-dlp adapter.
//!
//! The crate depends on `prismq-domain` alone of PrismQ's crates. The app registers it with
//! one call to [`register`].
#![deny(missing_docs)]

pub mod config;
pub mod registry;
pub mod youtube;

pub use config::{ApiKey, Backend, YoutubeConfig};
pub use registry::{quota_limits, register, task_types, PluginDeps};
