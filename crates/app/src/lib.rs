//! PrismQ's application layer: typed configuration ([`config`]), the plugin registry
//! ([`registry`]), the worker runtime (`runtime`) and the composition root (`wiring`).

pub mod config;
pub mod registry;

pub use config::{Config, ConfigError, LoadOptions};
pub use registry::PluginRegistry;
