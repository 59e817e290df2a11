//! PrismQ's pure domain: the task model, claiming strategies, retry policy, content items,
//! the ports every adapter implements and the plugin trait every source implements.
//!
//! Nothing in this crate performs I/O: no SQL, no HTTP, no filesystem, no async runtime.
//! Adapters (`prismq-storage-sqlite`, …) and plugins (`prismq-plugins`, …) depend on it;
//! it depends on nothing of ours.
#![deny(missing_docs)]

pub mod cancel;
pub mod claiming;
pub mod content;
pub mod error;
pub mod growth;
pub mod lease;
pub mod outlier;
pub mod param_spec;
pub mod params;
pub mod plugin;
pub mod plugin_host;
pub mod ports;
pub mod priority;
pub mod retry;
pub mod schedule;
pub mod schema;
pub mod setting_values;
pub mod settings;
pub mod status;
pub mod task;
pub mod text;
pub mod time_range;

pub use cancel::CancelSignal;
pub use claiming::ClaimingStrategy;
pub use content::{platform_of, ContentItem, Metrics, SaveReport, Sighting};
pub use error::{PortError, ValidationError};
pub use plugin::{FollowUp, Registrar, TaskContext, TaskError, TaskHandler, TaskResult};
pub use plugin_host::{Plugin, PluginContext};
pub use retry::{ErrorClass, RetryDecision, RetryPolicy};
pub use status::TaskStatus;
pub use task::{
    Compatibility, Lease, LeaseToken, NewTask, Priority, Task, TaskId, TaskType, WorkerId,
};

/// An instant in time (UTC), as used for every timestamp in the model.
pub type Timestamp = jiff::Timestamp;
