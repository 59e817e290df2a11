//! PrismQ's application layer: typed configuration ([`config`]), the plugin registry
//! ([`registry`]), the worker runtime ([`runtime`]) and the composition root ([`wiring`]).

pub mod config;
pub mod registry;
pub mod runtime;
pub mod wiring;

pub use config::{Config, ConfigError, LoadOptions};
pub use registry::PluginRegistry;
pub use runtime::{RunOptions, RunReport, Runtime, RuntimeError, WorkerSettings};
pub use wiring::{App, AppError, PluginContext, PluginEntry, Ports, PLUGINS};
