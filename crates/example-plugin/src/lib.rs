//! A minimal PrismQ plugin: the template an outside team copies (see `docs/plugin-guide.md`).
//!
//! It handles one task type, `example_echo`, whose parameters name a text and how many items
//! to produce; each item is a `ContentItem` with source `example_echo`. It depends on
//! `prismq-domain` alone, reads typed parameters with `prismq_domain::params::parse`, stops early
//! when cancelled, and exports one [`PLUGIN`] value: the one line the app's plugin list adds.

use async_trait::async_trait;
use prismq_domain::param_spec::{ParamKind, ParamSpec};
use prismq_domain::settings::Section;
use prismq_domain::task::{Task, TaskType};
use prismq_domain::{
    ContentItem, Plugin, PluginContext, Registrar, TaskContext, TaskError, TaskHandler, TaskResult,
    ValidationError,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The task type this plugin handles.
pub const TASK_TYPE: &str = "example_echo";

/// What `example_echo` accepts, quoted in every parameter error.
const ACCEPTED: &str = "{\"text\": 1–200 characters, \"times\": 1–100}";

/// `example_echo` parameters, read by [`prismq_domain::params::parse`] (which refuses unknown
/// keys by name).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EchoParams {
    /// What to echo: 1–200 characters.
    pub text: String,
    /// How many items to produce: 1–100 (default 1).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl EchoParams {
    /// Parses and checks parameters.
    ///
    /// # Errors
    /// A [`ValidationError`] naming the parameter, what was wrong and what is accepted.
    pub fn parse(params: &Map<String, Value>) -> Result<Self, ValidationError> {
        let p: EchoParams = prismq_domain::params::parse(params, ACCEPTED)?;
        let chars = p.text.chars().count();
        if !(1..=200).contains(&chars) {
            return Err(ValidationError::new(
                "text",
                format!("the text is {chars} characters long"),
                "1 to 200 characters",
            ));
        }
        if !(1..=100).contains(&p.times) {
            return Err(ValidationError::new(
                "times",
                format!("{} is out of range", p.times),
                "an integer from 1 to 100",
            ));
        }
        Ok(p)
    }
}

/// The `example_echo` handler.
#[derive(Debug, Default)]
pub struct EchoHandler;

#[async_trait]
impl TaskHandler for EchoHandler {
    fn task_type(&self) -> TaskType {
        TaskType::new(TASK_TYPE).unwrap_or_else(|_| unreachable!("a constant, valid task type"))
    }

    fn validate(&self, params: &Map<String, Value>) -> Result<(), ValidationError> {
        EchoParams::parse(params).map(|_| ())
    }

    fn params(&self) -> Option<Vec<ParamSpec>> {
        Some(vec![
            ParamSpec::required(
                "text",
                "What to echo",
                ParamKind::Text {
                    max_chars: 200,
                    examples: &["an idea"],
                },
            ),
            ParamSpec::optional(
                "times",
                "How many items to produce",
                ParamKind::Integer {
                    min: 1,
                    max: 100,
                    default: Some(1),
                },
            ),
        ])
    }

    async fn handle(&self, task: &Task, ctx: &TaskContext) -> Result<TaskResult, TaskError> {
        let empty = Map::new();
        let p = EchoParams::parse(task.params.as_object().unwrap_or(&empty))?;
        let mut items = Vec::new();
        for i in 0..p.times {
            if ctx.is_cancelled() {
                return Err(TaskError::retryable(
                    "cancelled before all items were produced",
                ));
            }
            items.push(ContentItem::new(
                TASK_TYPE,
                format!("{}-{i}", task.id),
                p.text.clone(),
            ));
        }
        // Progress notes are advisory: a failure to write one does not fail the task.
        let _ = ctx
            .progress(format!("echoed {} items", items.len()), Value::Null)
            .await;
        // `..TaskResult::default()` keeps this compiling when the result gains fields.
        Ok(TaskResult {
            summary: format!("{} items", items.len()),
            counters: BTreeMap::from([("items".to_owned(), items.len() as u64)]),
            items,
            ..TaskResult::default()
        })
    }
}

/// The plugin: no configuration section, no external tool, one handler.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoPlugin;

/// The value the app's plugin list holds (`&prismq_example_plugin::PLUGIN`).
pub static PLUGIN: EchoPlugin = EchoPlugin;

impl Plugin for EchoPlugin {
    fn name(&self) -> &'static str {
        "example"
    }

    fn register(
        &self,
        registrar: &mut dyn Registrar,
        _section: &Section,
        _ctx: &PluginContext,
    ) -> Result<(), ValidationError> {
        registrar.add(Arc::new(EchoHandler))
    }
}

/// `docs/plugin-guide.md`, whose Rust blocks are compiled and run as this crate's doc tests,
/// so the guide's signatures cannot drift from the app's.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/plugin-guide.md")]
pub struct PluginGuide;
