//! PrismQ's application layer: typed configuration ([`config`]), the plugin registry
//! ([`registry`]), the worker runtime ([`runtime`]), the composition root ([`wiring`]) and
//! the log subscriber ([`logging`]).

pub mod config;
pub mod copy;
pub mod logging;
pub mod ops;
pub mod registry;
pub mod runtime;
pub mod wiring;

pub use config::{Config, ConfigError, LoadOptions};
pub use registry::PluginRegistry;
pub use runtime::{RunOptions, RunReport, Runtime, RuntimeError, WorkerSettings};
pub use wiring::{App, AppError, PluginContext, PluginEntry, Ports, PLUGINS};
