//! PrismQ's application layer: typed configuration ([`config`]), the plugin registry
//! (`registry`), the worker runtime (`runtime`) and the composition root (`wiring`).

pub mod config;

pub use config::{Config, ConfigError, LoadOptions};
