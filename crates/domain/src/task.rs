//! The task model: what enqueue takes (`NewTask`, validated), what the queue holds (`Task`),
//! and the lease that fences one attempt.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

use crate::error::ValidationError;
use crate::status::TaskStatus;
use crate::Timestamp;

pub use crate::lease::{Lease, LeaseToken, WorkerId};
pub use crate::priority::Priority;

/// A task's identity in its queue: positive and increasing in enqueue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub i64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The longest task type name accepted.
pub const MAX_TASK_TYPE_LEN: usize = 64;

/// A task type name such as `channel_scrape`: lowercase ASCII letters, digits and `_`,
/// starting with a letter, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TaskType(String);

impl TaskType {
    /// Validates `name` as a task type.
    ///
    /// # Errors
    /// Empty names, names over 64 characters, and names with characters other than
    /// lowercase ASCII letters, digits and `_` (or not starting with a letter).
    pub fn new(name: impl Into<String>) -> Result<Self, ValidationError> {
        let name = name.into();
        const ACCEPTED: &str =
            "1 to 64 characters of a-z, 0-9 and _, starting with a letter (e.g. channel_scrape)";
        if name.is_empty() {
            return Err(ValidationError::new(
                "type",
                "the task type is empty",
                ACCEPTED,
            ));
        }
        if name.len() > MAX_TASK_TYPE_LEN {
            return Err(ValidationError::new(
                "type",
                format!("the task type is {} characters long", name.len()),
                ACCEPTED,
            ));
        }
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !first_ok
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ValidationError::new(
                "type",
                format!(
                    "{:?} has characters outside the allowed set",
                    truncate_for_message(&name)
                ),
                ACCEPTED,
            ));
        }
        Ok(TaskType(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TaskType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TaskType::new(s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TaskType {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskType::new(s)
    }
}

/// What a worker must offer to run a task. Today only a region (an ISO 3166-1 alpha-2 code):
/// a task with a region is claimed only by workers configured for that region; a task
/// without one by any worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compatibility {
    /// The region a worker must serve, e.g. `US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl Compatibility {
    /// Validates and normalises (uppercases) the region.
    ///
    /// # Errors
    /// A region that is not two ASCII letters.
    pub fn with_region(region: &str) -> Result<Self, ValidationError> {
        let r = region.trim();
        if r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()) {
            Ok(Compatibility {
                region: Some(r.to_ascii_uppercase()),
            })
        } else {
            Err(ValidationError::new(
                "region",
                format!(
                    "{:?} is not a two-letter region code",
                    truncate_for_message(region)
                ),
                "an ISO 3166-1 alpha-2 code such as US, GB or DE",
            ))
        }
    }

    /// These requirements as every engine stores them: the region normalised as
    /// [`Compatibility::with_region`] does (` gb` is `GB`), so that a claim, which compares
    /// it with its worker's upper-case region, finds the task.
    ///
    /// # Errors
    /// A region that is not two ASCII letters.
    pub fn normalised(&self) -> Result<Self, ValidationError> {
        match &self.region {
            Some(region) => Compatibility::with_region(region),
            None => Ok(Compatibility::default()),
        }
    }
}

/// The largest serialized params accepted by default (1 MiB).
pub const DEFAULT_MAX_PARAMS_BYTES: usize = 1024 * 1024;
/// The longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// The most attempts a task may be given.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

/// A task to enqueue. Build it with [`NewTask::new`], adjust the public fields or use the
/// builder methods, and call [`NewTask::validate`] (adapters call it again before writing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// The task type; a handler for it must be registered for enqueue to accept it.
    pub task_type: TaskType,
    /// The handler's parameters: a JSON object.
    pub params: Value,
    /// 1–10, default 5.
    pub priority: Priority,
    /// Not claimable before this instant; `None` means now. Within
    /// [`time_range`](crate::time_range) (2000-01-01 to 9999-01-01).
    pub run_after: Option<Timestamp>,
    /// Attempts before dead-lettering; `None` takes the queue's retry policy default.
    pub max_attempts: Option<u32>,
    /// Enqueueing the same key twice creates one task.
    pub idempotency_key: Option<String>,
    /// What a worker must offer to claim it.
    pub compatibility: Compatibility,
}

impl NewTask {
    /// A task of `task_type` with `params` and every other field at its default.
    pub fn new(task_type: TaskType, params: Value) -> Self {
        NewTask {
            task_type,
            params,
            priority: Priority::DEFAULT,
            run_after: None,
            max_attempts: None,
            idempotency_key: None,
            compatibility: Compatibility::default(),
        }
    }

    /// Sets the priority.
    pub fn priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self
    }

    /// Sets the earliest instant the task may run.
    pub fn run_after(mut self, at: Timestamp) -> Self {
        self.run_after = Some(at);
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the maximum number of attempts.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// Sets the compatibility requirements.
    pub fn compatibility(mut self, c: Compatibility) -> Self {
        self.compatibility = c;
        self
    }

    /// Checks everything that does not need a handler: params are a JSON object no larger than
    /// `max_params_bytes` when serialized, the idempotency key is 1–255 bytes without control
    /// characters, max_attempts is 1–100, the region (if any) is two letters, and `run_after`
    /// (if any) lies within [`time_range`](crate::time_range), so every instant stored reads
    /// back on every engine and none jumps the queue from the distant past.
    ///
    /// # Errors
    /// The first problem found, naming the field.
    pub fn validate(&self, max_params_bytes: usize) -> Result<(), ValidationError> {
        let size = params_size(self.params_map()?);
        self.check_rest(size, max_params_bytes)
    }

    /// [`validate`](Self::validate), and the params serialized: what a store writes, made
    /// once where `validate` and then `to_string` would serialize them twice.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn validated_params(&self, max_params_bytes: usize) -> Result<String, ValidationError> {
        let text = serde_json::to_string(self.params_map()?)
            .expect("a map of JSON values always serializes");
        self.check_rest(text.len(), max_params_bytes)?;
        Ok(text)
    }

    /// The params as a map, or the error that says they are not an object.
    fn params_map(&self) -> Result<&Map<String, Value>, ValidationError> {
        self.params.as_object().ok_or_else(|| {
            ValidationError::new(
                "params",
                format!(
                    "params are a JSON {}, not an object",
                    json_kind(&self.params)
                ),
                "a JSON object such as {\"query\": \"rust\"}",
            )
        })
    }

    /// Every check of [`validate`](Self::validate) after the params' kind, given their
    /// serialized `size`.
    fn check_rest(&self, size: usize, max_params_bytes: usize) -> Result<(), ValidationError> {
        if size > max_params_bytes {
            return Err(ValidationError::new(
                "params",
                format!("params are {size} bytes when serialized"),
                format!("at most {max_params_bytes} bytes"),
            ));
        }
        if let Some(key) = &self.idempotency_key {
            const ACCEPTED: &str = "1 to 255 bytes of printable text";
            if key.is_empty() {
                return Err(ValidationError::new(
                    "idempotency_key",
                    "the key is empty",
                    ACCEPTED,
                ));
            }
            if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
                return Err(ValidationError::new(
                    "idempotency_key",
                    format!("the key is {} bytes long", key.len()),
                    ACCEPTED,
                ));
            }
            if key.chars().any(char::is_control) {
                return Err(ValidationError::new(
                    "idempotency_key",
                    "the key contains control characters",
                    ACCEPTED,
                ));
            }
        }
        if let Some(n) = self.max_attempts {
            if !(1..=MAX_ATTEMPTS_LIMIT).contains(&n) {
                return Err(ValidationError::new(
                    "max_attempts",
                    format!("{n} is out of range"),
                    format!("an integer from 1 to {MAX_ATTEMPTS_LIMIT}"),
                ));
            }
        }
        if let Some(region) = &self.compatibility.region {
            Compatibility::with_region(region)?;
        }
        if let Some(at) = self.run_after {
            crate::time_range::check("run_after", at)?;
        }
        Ok(())
    }

    /// The params as a JSON object (empty if they are not one; validate first).
    pub fn params_object(&self) -> Option<&Map<String, Value>> {
        self.params.as_object()
    }
}

fn params_size(map: &Map<String, Value>) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0);
    // Writing to a counter cannot fail; a map of JSON values always serializes.
    let _ = serde_json::to_writer(&mut c, map);
    c.0
}

/// The JSON kind of a value, for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Shortens text quoted back in an error message to at most 80 characters.
pub fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// A task as the queue holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Its identity.
    pub id: TaskId,
    /// Which handler runs it.
    pub task_type: TaskType,
    /// The handler's parameters (a JSON object).
    pub params: Value,
    /// 1–10.
    pub priority: Priority,
    /// Where it is in its lifecycle.
    pub status: TaskStatus,
    /// Claims so far, including the current one; a free deferral, a release and a lapsed
    /// lease give their attempt back.
    pub attempts: u32,
    /// Attempts before it is dead-lettered.
    pub max_attempts: u32,
    /// Not claimable before this instant.
    pub run_after: Timestamp,
    /// When the current lease lapses, while claimed or running.
    pub lease_expires_at: Option<Timestamp>,
    /// The worker holding (or that last held) the lease.
    pub claimed_by: Option<WorkerId>,
    /// The token fencing the current attempt's writes.
    pub lease_token: Option<LeaseToken>,
    /// The key that made enqueue idempotent, if any.
    pub idempotency_key: Option<String>,
    /// What a worker must offer to claim it.
    pub compatibility: Compatibility,
    /// The last attempt's error message.
    pub last_error: Option<String>,
    /// The handler's summary of a completed run.
    pub summary: Option<Value>,
    /// When it was enqueued.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it reached completed, failed or cancelled.
    pub finished_at: Option<Timestamp>,
    /// How many times its lease lapsed and was taken back (the worker died or froze). Counted
    /// apart from `attempts`; see [`MAX_LAPSES`](crate::lease::MAX_LAPSES). Absent from older
    /// JSON, read as 0.
    #[serde(default)]
    pub lapses: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tt(s: &str) -> TaskType {
        TaskType::new(s).unwrap()
    }

    #[test]
    fn task_type_accepts_snake_case() {
        assert_eq!(tt("channel_scrape").as_str(), "channel_scrape");
        assert!(TaskType::new("a").is_ok());
        assert!(TaskType::new("a".repeat(64)).is_ok());
    }

    #[test]
    fn task_type_rejections_name_the_problem() {
        for (input, needle) in [
            ("", "empty"),
            ("Channel", "outside the allowed set"),
            ("9lives", "outside the allowed set"),
            ("has space", "outside the allowed set"),
            ("drop;table", "outside the allowed set"),
        ] {
            let e = TaskType::new(input).unwrap_err();
            assert_eq!(e.field, "type");
            assert!(e.problem.contains(needle), "{input:?}: {e}");
            assert!(e.accepted.contains("a-z"), "{e}");
        }
        let e = TaskType::new("a".repeat(65)).unwrap_err();
        assert!(e.problem.contains("65 characters"), "{e}");
    }

    #[test]
    fn new_task_validation() {
        let ok = NewTask::new(tt("t"), json!({"a": 1}));
        assert!(ok.validate(DEFAULT_MAX_PARAMS_BYTES).is_ok());

        let e = NewTask::new(tt("t"), json!([1, 2]))
            .validate(1024)
            .unwrap_err();
        assert_eq!(e.field, "params");
        assert!(e.problem.contains("array"), "{e}");

        let e = NewTask::new(tt("t"), json!("x"))
            .validate(1024)
            .unwrap_err();
        assert!(e.problem.contains("string"), "{e}");

        let big = json!({"s": "x".repeat(2000)});
        let e = NewTask::new(tt("t"), big).validate(1024).unwrap_err();
        assert!(e.problem.contains("bytes"), "{e}");
        assert!(e.accepted.contains("1024"), "{e}");

        let e = ok.clone().idempotency_key("").validate(1024).unwrap_err();
        assert_eq!(e.field, "idempotency_key");
        let e = ok
            .clone()
            .idempotency_key("k".repeat(256))
            .validate(1024)
            .unwrap_err();
        assert!(e.problem.contains("256 bytes"), "{e}");
        let e = ok
            .clone()
            .idempotency_key("a\0b")
            .validate(1024)
            .unwrap_err();
        assert!(e.problem.contains("control"), "{e}");
        assert!(ok
            .clone()
            .idempotency_key("k".repeat(255))
            .validate(1024)
            .is_ok());

        let e = ok.clone().max_attempts(0).validate(1024).unwrap_err();
        assert_eq!(e.field, "max_attempts");

        let mut bad_region = ok.clone();
        bad_region.compatibility.region = Some("USA".into());
        assert_eq!(bad_region.validate(1024).unwrap_err().field, "region");
    }

    #[test]
    fn validated_params_are_the_serialized_text_and_agree_with_validate() {
        let params = json!({"q": "ünïcode \"quoted\"", "n": [1, 2.5, null], "m": {"k": true}});
        let text = params.to_string();
        let exact = text.len();
        let task = NewTask::new(tt("t"), params);
        assert_eq!(task.validated_params(exact).unwrap(), text);
        assert!(task.validate(exact).is_ok());
        // One byte under the size: both refuse, naming the same size and limit.
        let a = task.validate(exact - 1).unwrap_err();
        let b = task.validated_params(exact - 1).unwrap_err();
        assert_eq!(a, b);
        assert!(a.problem.contains(&format!("{exact} bytes")), "{a}");
        // Every other check still runs after the size.
        let e = task
            .clone()
            .max_attempts(0)
            .validated_params(exact)
            .unwrap_err();
        assert_eq!(e.field, "max_attempts");
        let e = NewTask::new(tt("t"), json!([1]))
            .validated_params(1024)
            .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.problem.contains("array")),
            ("params", true)
        );
    }

    #[test]
    fn run_after_must_lie_within_the_accepted_range() {
        use crate::time_range::{EARLIEST, LATEST, RANGE};
        let ok = NewTask::new(tt("t"), json!({}));
        for at in [EARLIEST, LATEST, "2026-01-31T08:00:00Z".parse().unwrap()] {
            assert!(ok.clone().run_after(at).validate(1024).is_ok(), "{at}");
        }
        for at in [
            "0001-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "9999-12-30T22:00:00.5Z",
        ] {
            let e = ok
                .clone()
                .run_after(at.parse().unwrap())
                .validate(1024)
                .unwrap_err();
            assert_eq!(e.field, "run_after", "{at}");
            assert!(e.problem.contains(RANGE), "{at}: {e}");
        }
        let e = ok.run_after(Timestamp::MAX).validate(1024).unwrap_err();
        assert!(e.problem.contains("outside the accepted range"), "{e}");
    }

    #[test]
    fn compatibility_normalises_region() {
        assert_eq!(
            Compatibility::with_region(" us ")
                .unwrap()
                .region
                .as_deref(),
            Some("US")
        );
        assert!(Compatibility::with_region("U1").is_err());
        let given = Compatibility {
            region: Some(" gb".into()),
        };
        assert_eq!(given.normalised().unwrap().region.as_deref(), Some("GB"));
        assert_eq!(
            Compatibility::default().normalised().unwrap(),
            Compatibility::default()
        );
        let bad = Compatibility {
            region: Some("GBR".into()),
        };
        assert_eq!(bad.normalised().unwrap_err().field, "region");
    }

    #[test]
    fn long_values_are_truncated_in_messages() {
        let e = TaskType::new("X".repeat(1000)).unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
    }
}
