//! Schedules: a task enqueued on a timetable (`every 6h` or a cron expression in a time
//! zone), with the slot arithmetic every store and worker shares.
//!
//! A *slot* is an instant the timetable names. `every D` slots are the multiples of `D`
//! since the Unix epoch (so every process computes the same ones); cron slots are the wall
//! clock times the expression matches in the schedule's zone, read with jiff's time zone
//! database and croner's daylight-saving rules: a time skipped by a spring-forward runs
//! once, at the first instant after the gap, and a time repeated by a fall-back runs once,
//! at its first occurrence.
//!
//! Catch-up: a schedule whose next slot is due fires once, for the latest slot at or before
//! now, and its next slot becomes the first one after that. Slots missed while nothing ran
//! are skipped, never replayed as a burst ([`Schedule::firing`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ValidationError;
use crate::task::{truncate_for_message, NewTask, Priority, TaskId, TaskType};
use crate::Timestamp;

/// A schedule's identity in its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScheduleId(pub i64);

impl fmt::Display for ScheduleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The shortest `every` interval accepted.
pub const MIN_EVERY: Duration = Duration::from_secs(60);
/// The longest `every` interval accepted (366 days).
pub const MAX_EVERY: Duration = Duration::from_secs(366 * 86_400);
/// The largest jitter accepted.
pub const MAX_JITTER: Duration = Duration::from_secs(3_600);
/// The longest schedule name accepted.
pub const MAX_NAME_LEN: usize = 64;
/// The zone a schedule uses when it names none.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

const EVERY_ACCEPTED: &str =
    "a duration from 1m to 366d in whole seconds, such as 6h, 90m, 1h30m or 1d (units s, m, h, d)";
const CRON_ACCEPTED: &str = "a cron expression of exactly 5 fields (minute hour day-of-month month day-of-week), such as \"0 */6 * * *\"; steps are 1 or more";
const ZONE_ACCEPTED: &str =
    "an IANA time zone name such as UTC, Europe/Prague or America/Los_Angeles";
const NAME_ACCEPTED: &str = "1 to 64 characters of letters, digits, '-', '_' and '.', starting with a letter or digit (e.g. channels-6h)";
const JITTER_ACCEPTED: &str =
    "a duration from 0s to 1h (units s, m, h), shorter than the schedule's interval";

/// Parses a duration such as `6h`, `90m`, `1h30m`, `45s`, `1d` or `250ms` (whole units,
/// summed; `ms` parses so that it can be refused with a clear message).
///
/// # Errors
/// Text that is not one or more `<integer><unit>` parts; the error names `field`.
pub fn parse_duration(
    field: &str,
    text: &str,
    accepted: &str,
) -> Result<Duration, ValidationError> {
    let t = text.trim();
    let bad = || {
        ValidationError::new(
            field,
            format!("{:?} is not a duration", truncate_for_message(text)),
            accepted,
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(n.checked_mul(3_600).ok_or_else(bad)?),
            "d" => Duration::from_secs(n.checked_mul(86_400).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        rest = rest[unit_len..].trim_start();
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
}

/// Formats whole seconds the way [`parse_duration`] reads them (`6h`, `1h30m`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

/// When a schedule's slots fall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Every this many seconds, counted from the Unix epoch.
    EverySecs(u64),
    /// A 5-field cron expression, read in the schedule's zone.
    Cron(String),
}

/// What [`Cadence::one_of`] accepts.
const ONE_OF_ACCEPTED: &str = "exactly one of every DURATION or cron EXPR";

impl Cadence {
    /// `--every TEXT`: 1 minute to 366 days, whole seconds.
    ///
    /// # Errors
    /// `every` for text that is no duration, is under a minute (`0s`, `1ms`), over 366 days
    /// or not whole seconds.
    pub fn every(text: &str) -> Result<Cadence, ValidationError> {
        let d = parse_duration("every", text, EVERY_ACCEPTED)?;
        if d < MIN_EVERY {
            return Err(ValidationError::new(
                "every",
                format!(
                    "{:?} is shorter than the minimum of 1 minute",
                    truncate_for_message(text)
                ),
                EVERY_ACCEPTED,
            ));
        }
        if d > MAX_EVERY {
            return Err(ValidationError::new(
                "every",
                format!("{:?} is longer than 366 days", truncate_for_message(text)),
                EVERY_ACCEPTED,
            ));
        }
        if d.subsec_nanos() != 0 {
            return Err(ValidationError::new(
                "every",
                format!("{:?} is not whole seconds", truncate_for_message(text)),
                EVERY_ACCEPTED,
            ));
        }
        Ok(Cadence::EverySecs(d.as_secs()))
    }

    /// Exactly one of an `every` duration and a `cron` expression (an empty text counts as
    /// not given), as a form or an API body names them.
    ///
    /// # Errors
    /// `every` when neither is given, `cron` when both are, and the errors of
    /// [`Cadence::every`] and [`Cadence::cron`].
    pub fn one_of(every: Option<&str>, cron: Option<&str>) -> Result<Cadence, ValidationError> {
        fn given(t: Option<&str>) -> Option<&str> {
            t.filter(|t| !t.trim().is_empty())
        }
        match (given(every), given(cron)) {
            (Some(e), None) => Cadence::every(e),
            (None, Some(c)) => Cadence::cron(c),
            (None, None) => Err(ValidationError::new(
                "every",
                "neither every nor cron is given",
                ONE_OF_ACCEPTED,
            )),
            (Some(_), Some(_)) => Err(ValidationError::new(
                "cron",
                "both every and cron are given",
                ONE_OF_ACCEPTED,
            )),
        }
    }

    /// `--cron EXPR`: exactly 5 fields, parsed by croner (no seconds, no year field).
    ///
    /// # Errors
    /// `cron` for any other number of fields, a step of 0 (`*/0`) or any field croner
    /// refuses, quoting its reason.
    pub fn cron(expr: &str) -> Result<Cadence, ValidationError> {
        let e = expr.split_whitespace().collect::<Vec<_>>().join(" ");
        let fields = e.split(' ').filter(|f| !f.is_empty()).count();
        if fields != 5 {
            return Err(ValidationError::new(
                "cron",
                format!(
                    "{:?} has {fields} field{}",
                    truncate_for_message(expr),
                    if fields == 1 { "" } else { "s" }
                ),
                CRON_ACCEPTED,
            ));
        }
        if e.split(' ').any(|f| {
            f.split(',').any(|p| {
                p.split_once('/')
                    .is_some_and(|(_, s)| s.trim_start_matches('0').is_empty())
            })
        }) {
            return Err(ValidationError::new(
                "cron",
                format!("{:?} has a step of 0", truncate_for_message(expr)),
                CRON_ACCEPTED,
            ));
        }
        parse_cron(&e).map_err(|why| {
            ValidationError::new(
                "cron",
                format!(
                    "{:?} is not a valid expression: {why}",
                    truncate_for_message(expr)
                ),
                CRON_ACCEPTED,
            )
        })?;
        Ok(Cadence::Cron(e))
    }

    /// The interval of an `every` cadence.
    pub fn interval(&self) -> Option<Duration> {
        match self {
            Cadence::EverySecs(s) => Some(Duration::from_secs(*s)),
            Cadence::Cron(_) => None,
        }
    }

    /// The first slot strictly after `after`, in `zone`.
    ///
    /// # Errors
    /// `cron` when the expression matches no time before the year 5000 (e.g. `0 0 30 2 *`).
    pub fn next_after(
        &self,
        zone: &TimeZone,
        after: Timestamp,
    ) -> Result<Timestamp, ValidationError> {
        match self {
            Cadence::EverySecs(secs) => {
                let step = i64::try_from(*secs).unwrap_or(i64::MAX / 1_000) * 1_000;
                let ms = after.as_millisecond();
                Ok(from_ms((ms.div_euclid(step) + 1) * step))
            }
            Cadence::Cron(expr) => {
                let cron = parse_cron(expr).map_err(|why| never_matches(expr, &why))?;
                let at = after.to_zoned(zone.clone());
                let next = cron
                    .find_next_occurrence(&at, false)
                    .map_err(|e| never_matches(expr, &e.to_string()))?;
                Ok(next.timestamp())
            }
        }
    }

    /// The latest slot at or before `at`, in `zone`.
    ///
    /// # Errors
    /// As [`Cadence::next_after`].
    pub fn latest_at_or_before(
        &self,
        zone: &TimeZone,
        at: Timestamp,
    ) -> Result<Timestamp, ValidationError> {
        match self {
            Cadence::EverySecs(secs) => {
                let step = i64::try_from(*secs).unwrap_or(i64::MAX / 1_000) * 1_000;
                Ok(from_ms(at.as_millisecond().div_euclid(step) * step))
            }
            Cadence::Cron(expr) => {
                let cron = parse_cron(expr).map_err(|why| never_matches(expr, &why))?;
                let z = at.to_zoned(zone.clone());
                let prev = cron
                    .find_previous_occurrence(&z, true)
                    .map_err(|e| never_matches(expr, &e.to_string()))?;
                Ok(prev.timestamp())
            }
        }
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cadence::EverySecs(s) => {
                write!(f, "every {}", format_duration(Duration::from_secs(*s)))
            }
            Cadence::Cron(e) => write!(f, "cron {e}"),
        }
    }
}

fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| e.to_string())
}

fn never_matches(expr: &str, why: &str) -> ValidationError {
    ValidationError::new(
        "cron",
        format!("{:?} matches no time: {why}", truncate_for_message(expr)),
        CRON_ACCEPTED,
    )
}

fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

/// Looks up an IANA zone name in jiff's bundled database.
///
/// # Errors
/// `tz` for a name the database does not know.
pub fn time_zone(name: &str) -> Result<TimeZone, ValidationError> {
    jiff::tz::db().get(name.trim()).map_err(|_| {
        ValidationError::new(
            "tz",
            format!("{:?} is not a known time zone", truncate_for_message(name)),
            ZONE_ACCEPTED,
        )
    })
}

/// Checks a schedule name.
///
/// # Errors
/// `name` when empty, longer than 64 characters or with characters outside the set.
pub fn check_name(name: &str) -> Result<(), ValidationError> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() {
        return Err(ValidationError::new(
            "name",
            "the name is empty",
            NAME_ACCEPTED,
        ));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(ValidationError::new(
            "name",
            format!("the name is {} characters long", name.chars().count()),
            NAME_ACCEPTED,
        ));
    }
    if !ok_first
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ValidationError::new(
            "name",
            format!(
                "{:?} has characters outside the allowed set",
                truncate_for_message(name)
            ),
            NAME_ACCEPTED,
        ));
    }
    Ok(())
}

/// A schedule to add. Build it, then [`NewSchedule::validate`] (stores call it again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSchedule {
    /// Unique among the store's schedules.
    pub name: String,
    /// The type of the tasks it enqueues.
    pub task_type: TaskType,
    /// Their params (a JSON object, checked by the handler at `schedule add`).
    pub params: Value,
    /// Their priority.
    pub priority: Priority,
    /// When its slots fall.
    pub cadence: Cadence,
    /// The IANA zone its cron expression is read in (default UTC).
    pub time_zone: String,
    /// Each slot's task becomes runnable up to this much after the slot (the same offset in
    /// every process, derived from the schedule and the slot). JSON: `jitter_secs`.
    #[serde(rename = "jitter_secs", with = "whole_secs")]
    pub jitter: Duration,
}

impl NewSchedule {
    /// A schedule of `task_type` with `params` on `cadence`, priority 5, UTC, no jitter.
    pub fn new(
        name: impl Into<String>,
        task_type: TaskType,
        params: Value,
        cadence: Cadence,
    ) -> Self {
        NewSchedule {
            name: name.into(),
            task_type,
            params,
            priority: Priority::DEFAULT,
            cadence,
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
            jitter: Duration::ZERO,
        }
    }

    /// Checks the name, the params (a JSON object), the zone, the cadence (parsed again) and
    /// the jitter (0 to 1 hour, whole seconds, shorter than an `every` interval).
    ///
    /// # Errors
    /// The first problem found, naming the field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_name(&self.name)?;
        NewTask::new(self.task_type.clone(), self.params.clone())
            .validate(crate::task::DEFAULT_MAX_PARAMS_BYTES)?;
        time_zone(&self.time_zone)?;
        match &self.cadence {
            Cadence::EverySecs(s) => {
                Cadence::every(&format!("{s}s"))?;
            }
            Cadence::Cron(e) => {
                Cadence::cron(e)?;
            }
        }
        check_jitter(self.jitter, &self.cadence)
    }

    /// The first slot after `now` (where a new schedule starts).
    ///
    /// # Errors
    /// As [`NewSchedule::validate`], or a cron expression that matches no time.
    pub fn first_slot(&self, now: Timestamp) -> Result<Timestamp, ValidationError> {
        self.validate()?;
        self.cadence.next_after(&time_zone(&self.time_zone)?, now)
    }
}

/// Checks a jitter against [`MAX_JITTER`] and the cadence.
///
/// # Errors
/// `jitter` when over an hour, not whole seconds, or not shorter than an `every` interval.
pub fn check_jitter(jitter: Duration, cadence: &Cadence) -> Result<(), ValidationError> {
    let shown = format_duration(jitter);
    if jitter > MAX_JITTER || jitter.subsec_nanos() != 0 {
        return Err(ValidationError::new(
            "jitter",
            format!("{shown} is over 1 hour or not whole seconds"),
            JITTER_ACCEPTED,
        ));
    }
    if cadence.interval().is_some_and(|i| jitter >= i) {
        return Err(ValidationError::new(
            "jitter",
            format!("{shown} is not shorter than the interval ({cadence})"),
            JITTER_ACCEPTED,
        ));
    }
    Ok(())
}

/// Parses `--jitter TEXT`.
///
/// # Errors
/// `jitter` for text that is not a duration.
pub fn parse_jitter(text: &str) -> Result<Duration, ValidationError> {
    parse_duration("jitter", text, JITTER_ACCEPTED)
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Its identity.
    pub id: ScheduleId,
    /// Its unique name.
    pub name: String,
    /// The type of the tasks it enqueues.
    pub task_type: TaskType,
    /// Their params.
    pub params: Value,
    /// Their priority.
    pub priority: Priority,
    /// When its slots fall.
    pub cadence: Cadence,
    /// The zone its cron expression is read in.
    pub time_zone: String,
    /// The largest offset after a slot at which its task becomes runnable. JSON:
    /// `jitter_secs`.
    #[serde(rename = "jitter_secs", with = "whole_secs")]
    pub jitter: Duration,
    /// Paused schedules fire nothing; their slots are skipped, not caught up.
    pub paused: bool,
    /// The next slot it fires for.
    pub next_slot: Timestamp,
    /// The slot it last fired for (a run-now is not a slot).
    pub last_slot: Option<Timestamp>,
    /// The task it last enqueued (by a slot or a run-now).
    pub last_task: Option<TaskId>,
    /// When it was added.
    pub created_at: Timestamp,
}

/// What firing a due schedule does: enqueue one task for `slot`, then wait for `next_slot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The slot fired for: the latest slot at or before now.
    pub slot: Timestamp,
    /// The first slot after `slot` (and after now).
    pub next_slot: Timestamp,
    /// True when slots between the stored next slot and `slot` were skipped (downtime).
    pub caught_up: bool,
}

/// A task a store enqueued for a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    /// The schedule.
    pub schedule: ScheduleId,
    /// Its name.
    pub name: String,
    /// The slot fired for.
    pub slot: Timestamp,
    /// The task enqueued.
    pub task: TaskId,
    /// True when missed slots were skipped to fire this one.
    pub caught_up: bool,
}

impl Schedule {
    /// The schedule's zone.
    ///
    /// # Errors
    /// `tz` when the stored name is no longer in the database.
    pub fn zone(&self) -> Result<TimeZone, ValidationError> {
        time_zone(&self.time_zone)
    }

    /// `None` when paused or not due (`next_slot > now`); otherwise the one firing that
    /// catches up: the latest slot at or before `now` (never before `next_slot`) and the
    /// first slot after it.
    ///
    /// # Errors
    /// A stored zone or expression that no longer reads (a build without that zone).
    pub fn firing(&self, now: Timestamp) -> Result<Option<Firing>, ValidationError> {
        if self.paused || self.next_slot > now {
            return Ok(None);
        }
        let zone = self.zone()?;
        let slot = self
            .cadence
            .latest_at_or_before(&zone, now)?
            .max(self.next_slot);
        let mut next_slot = self.cadence.next_after(&zone, slot)?;
        while next_slot <= now {
            next_slot = self.cadence.next_after(&zone, next_slot)?;
        }
        Ok(Some(Firing {
            slot,
            next_slot,
            caught_up: slot != self.next_slot,
        }))
    }

    /// The idempotency key of the task for `slot`: `schedule:<id>:<slot>`.
    pub fn slot_key(&self, slot: Timestamp) -> String {
        format!("{}{slot}", self.key_prefix())
    }

    /// What the idempotency key of every task this schedule enqueued starts with
    /// (`schedule:<id>:`), for [`crate::ports::TaskFilter::key_prefix`].
    pub fn key_prefix(&self) -> String {
        format!("schedule:{}:", self.id)
    }

    /// The idempotency key of a run-now at `now`: `schedule:<id>:run-now:<now>`.
    pub fn run_now_key(&self, now: Timestamp) -> String {
        format!("{}run-now:{now}", self.key_prefix())
    }

    /// The slot's offset within the jitter: the same in every process (a hash of the
    /// schedule id and the slot), whole seconds from 0 to the jitter.
    pub fn jitter_offset(&self, slot: Timestamp) -> Duration {
        let span = self.jitter.as_secs();
        if span == 0 {
            return Duration::ZERO;
        }
        // splitmix64 of the id and slot: cheap, stable across builds and platforms.
        let mut z = (self.id.0 as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(slot.as_millisecond() as u64);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Duration::from_secs(z % (span + 1))
    }

    /// The task to enqueue for `slot`: the schedule's type, params and priority, runnable
    /// at the slot plus its jitter offset, keyed by [`Schedule::slot_key`].
    pub fn task_for_slot(&self, slot: Timestamp) -> NewTask {
        let offset = jiff::SignedDuration::try_from(self.jitter_offset(slot))
            .unwrap_or(jiff::SignedDuration::ZERO);
        NewTask::new(self.task_type.clone(), self.params.clone())
            .priority(self.priority)
            .run_after(slot.checked_add(offset).unwrap_or(slot))
            .idempotency_key(self.slot_key(slot))
    }

    /// The task a run-now at `now` enqueues: runnable now, keyed by
    /// [`Schedule::run_now_key`].
    pub fn task_for_run_now(&self, now: Timestamp) -> NewTask {
        NewTask::new(self.task_type.clone(), self.params.clone())
            .priority(self.priority)
            .run_after(now)
            .idempotency_key(self.run_now_key(now))
    }

    /// The message the task log notes a fired task with.
    pub fn log_message(&self, slot: Option<Timestamp>) -> String {
        match slot {
            Some(s) => format!("enqueued by schedule {:?} for slot {s}", self.name),
            None => format!("enqueued by schedule {:?} (run-now)", self.name),
        }
    }

    /// The log entry's details: `{"schedule": name, "schedule_id": id, "slot": slot|null}`.
    pub fn log_details(&self, slot: Option<Timestamp>) -> Value {
        serde_json::json!({
            "schedule": self.name,
            "schedule_id": self.id.0,
            "slot": slot.map(|s| s.to_string()),
        })
    }

    /// The first slot after `now`, where a resumed schedule starts again.
    ///
    /// # Errors
    /// As [`Schedule::firing`].
    pub fn next_after(&self, now: Timestamp) -> Result<Timestamp, ValidationError> {
        self.cadence.next_after(&self.zone()?, now)
    }
}

impl FromStr for Cadence {
    type Err = ValidationError;
    /// `every 6h` or `cron 0 */6 * * *`, as [`Cadence`] displays.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().split_once(' ') {
            Some(("every", d)) => Cadence::every(d),
            Some(("cron", e)) => Cadence::cron(e),
            _ => Err(ValidationError::new(
                "cadence",
                format!("{:?} is not a cadence", truncate_for_message(s)),
                "every DURATION or cron EXPRESSION",
            )),
        }
    }
}

/// A `Duration` as whole seconds in JSON.
mod whole_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
