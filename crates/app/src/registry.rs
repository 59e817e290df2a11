//! The plugin registry: one handler per task type, filled by the plugins' `register`
//! functions through [`prismq_domain::Registrar`], consulted at enqueue (validation) and by
//! the worker runtime (dispatch and the claim filter).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use prismq_domain::task::DEFAULT_MAX_PARAMS_BYTES;
use prismq_domain::{NewTask, Registrar, TaskHandler, TaskType, ValidationError};

/// Handlers by task type.
#[derive(Clone)]
pub struct PluginRegistry {
    handlers: BTreeMap<TaskType, Arc<dyn TaskHandler>>,
    max_params_bytes: usize,
}

impl fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("task_types", &self.handlers.keys().collect::<Vec<_>>())
            .field("max_params_bytes", &self.max_params_bytes)
            .finish()
    }
}

impl Default for PluginRegistry {
    fn default() -> Self {
        PluginRegistry::new()
    }
}

impl PluginRegistry {
    /// An empty registry that accepts params up to the domain's default size.
    pub fn new() -> Self {
        PluginRegistry {
            handlers: BTreeMap::new(),
            max_params_bytes: DEFAULT_MAX_PARAMS_BYTES,
        }
    }

    /// The same registry with another params size limit.
    pub fn with_max_params_bytes(mut self, max: usize) -> Self {
        self.max_params_bytes = max;
        self
    }

    /// The registered task types, sorted.
    pub fn task_types(&self) -> Vec<TaskType> {
        self.handlers.keys().cloned().collect()
    }

    /// The handler for `task_type`, if registered.
    pub fn handler(&self, task_type: &TaskType) -> Option<Arc<dyn TaskHandler>> {
        self.handlers.get(task_type).cloned()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// Checks a task before it is queued: the domain's checks ([`NewTask::validate`]), then
    /// that a handler exists, then the handler's own parameter check, whose field is nested
    /// under `params` (`params.top_n`).
    ///
    /// # Errors
    /// The first problem found. An unknown type is refused on field `type` with the list of
    /// registered types as the accepted values.
    pub fn validate(&self, task: &NewTask) -> Result<(), ValidationError> {
        task.validate(self.max_params_bytes)?;
        let Some(handler) = self.handlers.get(&task.task_type) else {
            return Err(ValidationError::new(
                "type",
                format!("no handler is registered for {:?}", task.task_type.as_str()),
                self.accepted_types(),
            ));
        };
        let params = task.params_object().ok_or_else(|| {
            // validate() above already refused non-objects; kept for robustness.
            ValidationError::new("params", "params are not a JSON object", "a JSON object")
        })?;
        handler.validate(params).map_err(|e| e.within("params"))
    }

    fn accepted_types(&self) -> String {
        if self.handlers.is_empty() {
            "none: no plugin is registered".to_owned()
        } else {
            self.handlers
                .keys()
                .map(TaskType::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

impl Registrar for PluginRegistry {
    fn add(&mut self, handler: Arc<dyn TaskHandler>) -> Result<(), ValidationError> {
        let t = handler.task_type();
        if self.handlers.contains_key(&t) {
            return Err(ValidationError::new(
                "type",
                format!("a handler for {:?} is already registered", t.as_str()),
                "one handler per task type: remove one of the plugins registering it",
            ));
        }
        self.handlers.insert(t, handler);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use prismq_domain::{Task, TaskContext, TaskError, TaskResult};
    use serde_json::{json, Map, Value};

    struct Needs(&'static str);

    #[async_trait]
    impl TaskHandler for Needs {
        fn task_type(&self) -> TaskType {
            TaskType::new(self.0).unwrap()
        }
        fn validate(&self, params: &Map<String, Value>) -> Result<(), ValidationError> {
            match params.get("query") {
                Some(Value::String(s)) if !s.is_empty() => Ok(()),
                _ => Err(ValidationError::new(
                    "query",
                    "missing or empty",
                    "non-empty text",
                )),
            }
        }
        async fn handle(&self, _: &Task, _: &TaskContext) -> Result<TaskResult, TaskError> {
            Ok(TaskResult::default())
        }
    }

    fn registry() -> PluginRegistry {
        let mut r = PluginRegistry::new();
        r.add(Arc::new(Needs("keyword_search"))).unwrap();
        r.add(Arc::new(Needs("api_scrape"))).unwrap();
        r
    }

    fn task(t: &str, params: Value) -> NewTask {
        NewTask::new(TaskType::new(t).unwrap(), params)
    }

    #[test]
    fn duplicate_type_is_refused() {
        let mut r = registry();
        let e = r.add(Arc::new(Needs("api_scrape"))).unwrap_err();
        assert_eq!(e.field, "type");
        assert!(e.problem.contains("api_scrape"), "{e}");
        assert_eq!(r.task_types().len(), 2);
    }

    #[test]
    fn task_types_are_sorted() {
        let names: Vec<String> = registry()
            .task_types()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["api_scrape", "keyword_search"]);
        assert!(PluginRegistry::new().is_empty());
    }

    #[test]
    fn unknown_type_lists_registered_ones() {
        let e = registry()
            .validate(&task("trending_scrape", json!({})))
            .unwrap_err();
        assert_eq!(e.field, "type");
        assert_eq!(e.accepted, "api_scrape, keyword_search");
        let e = PluginRegistry::new()
            .validate(&task("trending_scrape", json!({})))
            .unwrap_err();
        assert!(e.accepted.contains("no plugin"), "{e}");
    }

    #[test]
    fn handler_errors_nest_under_params() {
        let e = registry()
            .validate(&task("keyword_search", json!({"query": ""})))
            .unwrap_err();
        assert_eq!(e.field, "params.query");
        assert!(registry()
            .validate(&task("keyword_search", json!({"query": "rust"})))
            .is_ok());
    }

    #[test]
    fn domain_checks_run_first() {
        let e = registry()
            .validate(&task("keyword_search", json!([1])))
            .unwrap_err();
        assert_eq!(e.field, "params");
        let small = registry().with_max_params_bytes(8);
        let e = small
            .validate(&task("keyword_search", json!({"query": "a long query"})))
            .unwrap_err();
        assert_eq!(e.field, "params");
        let e = registry()
            .validate(&task("keyword_search", json!({"query": "q"})).max_attempts(0))
            .unwrap_err();
        assert_eq!(e.field, "max_attempts");
    }
}
