//! PrismQ's application layer: typed configuration ([`config`]), the plugin registry
//! ([`registry`]), the worker runtime ([`runtime`]), the composition root ([`wiring`]), the
//! storage boundary ([`storage`], the one module that knows the engines) and the log
//! subscriber ([`logging`]).

pub mod config;
pub mod copy;
pub mod export;
pub mod logging;
pub mod ops;
pub mod overview;
pub mod plugins;
pub mod registry;
pub mod runtime;
pub mod schedules;
pub mod storage;
pub mod wiring;

pub use config::{Config, ConfigError, LoadOptions};
pub use plugins::abort_all;
pub use registry::PluginRegistry;
pub use runtime::{BreakerSettings, RunOptions, RunReport, Runtime, RuntimeError, WorkerSettings};
pub use wiring::{Access, App, AppError, PluginContext, PluginEntry, Ports, PLUGINS};
