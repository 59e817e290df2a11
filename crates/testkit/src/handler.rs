//! The handler contract: checks every plugin's `TaskHandler` must pass, whatever its source.
//! A plugin crate calls [`check_handler_contract`] from one of its tests (vector's compliance
//! helpers are the model).

use prismq_domain::task::{NewTask, Priority, Task, TaskId, TaskType};
use prismq_domain::{CancelSignal, TaskContext, TaskError, TaskHandler, TaskStatus, Timestamp};
use serde_json::{Map, Value};
use std::sync::Arc;

use crate::{FakeClock, MemoryStore};

/// Parameters a handler must accept and refuse.
#[derive(Debug, Clone, Default)]
pub struct HandlerCases {
    /// Parameter objects `validate` must accept.
    pub valid: Vec<Value>,
    /// Parameter objects `validate` must refuse, each with the field its error must name.
    pub invalid: Vec<(Value, &'static str)>,
}

fn object(v: &Value) -> &Map<String, Value> {
    v.as_object().expect("handler cases must be JSON objects")
}

/// Asserts the handler contract:
/// 1. `task_type()` is stable across calls;
/// 2. every valid case is accepted and round-trips through `NewTask::validate`;
/// 3. every invalid case is refused with an error naming the expected field, saying what was
///    wrong and what is accepted;
/// 4. an unknown parameter added to a valid case is refused and named (a typo is an error,
///    not a silent default).
///
/// # Panics
/// On any breach, with a message naming the case.
pub fn check_handler_contract(handler: &dyn TaskHandler, cases: &HandlerCases) {
    let task_type = handler.task_type();
    assert_eq!(task_type, handler.task_type(), "task_type() must be stable");
    assert!(!cases.valid.is_empty(), "give at least one valid case");
    for (i, params) in cases.valid.iter().enumerate() {
        if let Err(e) = handler.validate(object(params)) {
            panic!("valid case {i} ({params}) was refused: {e}");
        }
        NewTask::new(task_type.clone(), params.clone())
            .validate(prismq_domain::task::DEFAULT_MAX_PARAMS_BYTES)
            .unwrap_or_else(|e| panic!("valid case {i} fails the domain's own checks: {e}"));
    }
    for (i, (params, field)) in cases.invalid.iter().enumerate() {
        match handler.validate(object(params)) {
            Ok(()) => panic!("invalid case {i} ({params}) was accepted"),
            Err(e) => {
                assert!(
                    e.field.contains(field),
                    "invalid case {i}: error names {:?}, expected {field:?}: {e}",
                    e.field
                );
                assert!(
                    !e.problem.is_empty(),
                    "invalid case {i}: the error must say what was wrong"
                );
                assert!(
                    !e.accepted.is_empty(),
                    "invalid case {i}: the error must say what is accepted"
                );
            }
        }
    }
    let mut typo = object(&cases.valid[0]).clone();
    typo.insert("no_such_parameter".into(), Value::from(1));
    match handler.validate(&typo) {
        Ok(()) => panic!(
            "an unknown parameter was accepted; read parameters with prismq_domain::params::parse"
        ),
        Err(e) => assert!(
            e.to_string().contains("no_such_parameter"),
            "the error for an unknown parameter must name it: {e}"
        ),
    }
}

/// Asserts what every [`TaskError`] a handler returns must hold, whatever its class:
/// 1. the message is one non-empty line (the operator reads it in `tasks list`);
/// 2. every partial item ([`TaskError::partial`]) passes [`ContentItem::validate`], so the
///    runtime can save it before recording the failure (a store refuses the whole batch
///    when one item is invalid, and those items would be lost).
///
/// Call it on the errors your handler tests provoke, especially those that stop a run
/// midway (quota spent on page three, a network error between batches).
///
/// # Panics
/// On any breach, naming it.
///
/// [`ContentItem::validate`]: prismq_domain::ContentItem::validate
pub fn check_task_error(error: &TaskError) {
    assert!(
        !error.message.trim().is_empty(),
        "a task error must say what went wrong: {error:?}"
    );
    assert!(
        !error.message.contains('\n'),
        "a task error's message must be one line: {:?}",
        error.message
    );
    for (i, item) in error.partial.iter().enumerate() {
        if let Err(e) = item.validate() {
            panic!(
                "partial item {i} ({}/{}) would be refused by the result store: {e}",
                item.source, item.source_id
            );
        }
    }
}

/// A task of `handler`'s type with `params`, as a worker would receive it on its first attempt.
pub fn task_for(handler: &dyn TaskHandler, params: Value) -> Task {
    let now = Timestamp::from_second(1_767_225_600).unwrap_or(Timestamp::UNIX_EPOCH);
    Task {
        id: TaskId(1),
        task_type: handler.task_type(),
        params,
        priority: Priority::DEFAULT,
        status: TaskStatus::Running,
        attempts: 1,
        max_attempts: 3,
        run_after: now,
        lease_expires_at: None,
        claimed_by: None,
        lease_token: None,
        idempotency_key: None,
        compatibility: Default::default(),
        last_error: None,
        summary: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
        lapses: 0,
    }
}

/// A context for task 1 whose progress notes go to a fresh in-memory log, with its cancel
/// signal (raise it to test that a handler stops early).
pub fn context() -> (TaskContext, CancelSignal, MemoryStore) {
    let store = MemoryStore::new(Arc::new(FakeClock::default()), Default::default());
    let cancel = CancelSignal::new();
    let ctx = TaskContext::new(TaskId(1), cancel.clone(), Arc::new(store.clone()));
    (ctx, cancel, store)
}

/// The task type named `name`, for tests.
///
/// # Panics
/// When `name` is not a valid task type.
pub fn task_type(name: &str) -> TaskType {
    TaskType::new(name).expect("valid task type")
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::ContentItem;

    #[test]
    fn task_errors_with_valid_partial_items_pass() {
        check_task_error(&TaskError::retryable("network reset; retrying"));
        check_task_error(
            &TaskError::permanent("gone").with_partial(vec![ContentItem::new("s", "a", "A")]),
        );
    }

    #[test]
    #[should_panic(expected = "partial item 1 (s/) would be refused")]
    fn an_invalid_partial_item_is_a_breach() {
        check_task_error(&TaskError::retryable("x").with_partial(vec![
            ContentItem::new("s", "a", "A"),
            ContentItem::new("s", "", "no id"),
        ]));
    }

    #[test]
    #[should_panic(expected = "must be one line")]
    fn a_multi_line_message_is_a_breach() {
        check_task_error(&TaskError::retryable("first\nsecond"));
    }

    #[test]
    #[should_panic(expected = "must say what went wrong")]
    fn an_empty_message_is_a_breach() {
        check_task_error(&TaskError::permanent(" "));
    }
}
