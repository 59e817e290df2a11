//! How each table's rows become the fake's state: one method per table of the format, each
//! converting a row to the domain's values and refusing a duplicate key or a dangling
//! reference.

use std::str::FromStr;
use std::time::Duration;

use prismq_domain::growth::{Growth, GrowthWindow, WindowRate};
use prismq_domain::outlier::{AgeBasis, Baseline, OutlierScore, VideoFormat};
use prismq_domain::ports::{
    ChannelBaseline, Heartbeat, LogLevel, LogRecord, MetricSnapshot, TaskEvent, WorkerInfo,
};
use prismq_domain::schedule::{Cadence, Schedule, ScheduleId};
use prismq_domain::{
    ClaimingStrategy, Compatibility, ContentItem, LeaseToken, Metrics, PortError, Priority,
    Sighting, Task, TaskId, TaskStatus, TaskType, WorkerId,
};
use serde_json::{Map, Value};

use super::cells::{dangling, duplicate, level_of, Cells};
use super::Loader;
use crate::memory::dump::GROWTH_COLUMNS;
use crate::memory::quota::Bucket;
use crate::memory::results::ResultEntry;
use crate::memory::workers::WorkerEntry;

impl Loader {
    pub(super) fn task(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = TaskId(c.req_int("id")?);
        let task_type = c.parsed("type", TaskType::new(c.req_text("type")?))?;
        let params = c.req_json("params")?;
        if !params.is_object() {
            return Err(c.bad("params", format!("holds {params}"), "a JSON object"));
        }
        let priority = c.parsed("priority", Priority::new(c.req_int("priority")?))?;
        let status = c.parsed("status", TaskStatus::from_str(&c.req_text("status")?))?;
        let attempts = c.fit("attempts", c.req_int("attempts")?, "0 or more")?;
        let max_attempts: u32 = c.fit("max_attempts", c.req_int("max_attempts")?, "1 to 100")?;
        if !(1..=100).contains(&max_attempts) {
            return Err(c.bad("max_attempts", format!("holds {max_attempts}"), "1 to 100"));
        }
        let claimed_by = c
            .text("claimed_by")?
            .map(|w| c.parsed("claimed_by", WorkerId::new(w)))
            .transpose()?;
        let compatibility: Compatibility = c.json_as(
            "compatibility",
            serde_json::from_value(c.req_json("compatibility")?),
            "a JSON object with at most a \"region\"",
        )?;
        let task = Task {
            id,
            task_type,
            params,
            priority,
            status,
            attempts,
            max_attempts,
            run_after: c.req_time("run_after")?,
            lease_expires_at: c.time("lease_expires_at")?,
            claimed_by,
            lease_token: c.int("lease_token")?.map(LeaseToken),
            idempotency_key: c.text("idempotency_key")?,
            compatibility,
            last_error: c.text("last_error")?,
            summary: c.json("summary")?,
            created_at: c.req_time("created_at")?,
            updated_at: c.req_time("updated_at")?,
            finished_at: c.time("finished_at")?,
            lapses: c.fit("lapses", c.req_int("lapses")?, "0 or more")?,
        };
        let started = c.time("started_at")?;
        let st = &mut self.st;
        if st.tasks.contains_key(&id) {
            return Err(duplicate("task_queue", c.n, format!("task {id}")));
        }
        if let Some(key) = &task.idempotency_key {
            if let Some(other) = st.keys.get(key) {
                return Err(duplicate(
                    "task_queue",
                    c.n,
                    format!("idempotency key {key:?}, held by task {other}"),
                ));
            }
            st.keys.insert(key.clone(), id);
        }
        if let Some(s) = started {
            st.started.insert(id, s);
        }
        // The `enqueued` entry the format leaves out, read from the row as the SQL
        // adapters read it.
        st.logs.insert(
            id,
            vec![LogRecord {
                task_id: id,
                at: task.created_at,
                level: LogLevel::Info,
                event: TaskEvent::Enqueued,
                message: "enqueued".into(),
                details: Value::Null,
            }],
        );
        st.last_id = st.last_id.max(id.0);
        st.tasks.insert(id, task);
        Ok(())
    }

    pub(super) fn log(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let task = TaskId(c.req_int("task_id")?);
        if !self.st.tasks.contains_key(&task) {
            return Err(dangling(c, "task_id", format!("task {task}"), "task"));
        }
        let level = level_of(c, &c.req_text("level")?)?;
        let event_text = c.req_text("event")?;
        let event = TaskEvent::parse(&event_text).ok_or_else(|| {
            let names: Vec<&str> = TaskEvent::ALL.iter().map(|e| e.as_str()).collect();
            c.bad("event", format!("holds {event_text:?}"), names.join(", "))
        })?;
        let record = LogRecord {
            task_id: task,
            at: c.req_time("at")?,
            level,
            event,
            message: c.req_text("message")?,
            details: c.json("details")?.unwrap_or(Value::Null),
        };
        self.st.logs.entry(task).or_default().push(record);
        Ok(())
    }

    pub(super) fn worker(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = c.parsed("id", WorkerId::new(c.req_text("id")?))?;
        let capabilities: Vec<TaskType> = c.json_as(
            "capabilities",
            serde_json::from_value(c.req_json("capabilities")?),
            "a JSON array of task type names",
        )?;
        let strategy = c.parsed(
            "strategy",
            ClaimingStrategy::from_str(&c.req_text("strategy")?),
        )?;
        let stopped = match c.req_text("status")?.as_str() {
            "active" => false,
            "stopped" => true,
            other => return Err(c.bad("status", format!("holds {other:?}"), "active or stopped")),
        };
        let entry = WorkerEntry {
            info: WorkerInfo {
                id: id.clone(),
                hostname: c.req_text("hostname")?,
                pid: c.fit("pid", c.req_int("pid")?, "a process id, 0 to 4294967295")?,
                capabilities,
                strategy,
            },
            started_at: c.req_time("started_at")?,
            heartbeat_at: c.req_time("heartbeat_at")?,
            heartbeat: Heartbeat {
                current_task: c.int("current_task_id")?.map(TaskId),
                tasks_done: c.fit("tasks_done", c.req_int("tasks_done")?, "0 or more")?,
                tasks_failed: c.fit("tasks_failed", c.req_int("tasks_failed")?, "0 or more")?,
                held: Vec::new(),
            },
            stopped,
        };
        if self.st.workers.contains_key(&id) {
            return Err(duplicate("workers", c.n, format!("worker {id}")));
        }
        self.st.workers.insert(id, entry);
        Ok(())
    }

    pub(super) fn result(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = c.req_int("id")?;
        let tags: Vec<String> = c.json_as(
            "tags",
            serde_json::from_value(c.req_json("tags")?),
            "a JSON array of strings",
        )?;
        let extra: Map<String, Value> = c.json_as(
            "extra",
            serde_json::from_value(c.req_json("extra")?),
            "a JSON object",
        )?;
        let rank = c
            .int("last_rank")?
            .map(|r| c.fit::<u32>("last_rank", r, "1 or more"))
            .transpose()?;
        if rank == Some(0) {
            return Err(c.bad("last_rank", "holds 0", "1 or more"));
        }
        let item = ContentItem {
            platform: c.req_text("platform")?,
            source: c.req_text("last_source")?,
            source_id: c.req_text("source_id")?,
            rank,
            title: c.req_text("title")?,
            description: c.text("description")?,
            url: c.text("url")?,
            tags,
            channel: c.text("channel")?,
            channel_id: c.text("channel_id")?,
            published_at: c.time("published_at")?,
            duration_secs: c.int("duration")?,
            metrics: Metrics {
                views: c.int("views")?,
                likes: c.int("likes")?,
                comments: c.int("comments")?,
            },
            extra,
        };
        let format = c
            .text("video_format")?
            .map(|f| c.parsed("video_format", VideoFormat::from_str(&f)))
            .transpose()?;
        let outlier = match c.real("outlier_score")? {
            None => None,
            Some(score) => Some(OutlierScore {
                score,
                basis: c.parsed(
                    "outlier_basis",
                    AgeBasis::from_str(&c.req_text("outlier_basis")?),
                )?,
                baseline: {
                    let v = c.real("outlier_baseline")?;
                    c.need("outlier_baseline", v)?
                },
                sample: c.fit("outlier_sample", c.req_int("outlier_sample")?, "0 or more")?,
                views: c.req_int("outlier_views")?,
            }),
        };
        let mut growth = Growth::default();
        for (w, (rate, span)) in GrowthWindow::ALL.into_iter().zip(GROWTH_COLUMNS) {
            // A rate without its span reads as a span of 0, as the SQL adapters read it.
            if let Some(views_per_hour) = c.real(rate)? {
                growth.set(
                    w,
                    Some(WindowRate {
                        views_per_hour,
                        span_secs: c.int(span)?.unwrap_or(0),
                    }),
                );
            }
        }
        let entry = ResultEntry {
            id,
            first_seen_at: c.req_time("first_seen_at")?,
            last_seen_at: c.req_time("last_seen_at")?,
            last_task_id: c.int("last_task_id")?.map(TaskId),
            history: Vec::new(),
            first_views: c.int("first_views")?,
            first_metrics_at: c.req_time("first_metrics_at")?,
            metrics_at: c.req_time("metrics_at")?,
            sightings: Vec::new(),
            format,
            at_7d: c.int("views_7d")?,
            at_30d: c.int("views_30d")?,
            outlier,
            growth,
            item,
        };
        let key = (entry.item.platform.clone(), entry.item.source_id.clone());
        if self.result_keys.contains_key(&id) {
            return Err(duplicate("results", c.n, format!("result id {id}")));
        }
        if self.st.results.contains_key(&key) {
            return Err(duplicate(
                "results",
                c.n,
                format!("result {}/{}", key.0, key.1),
            ));
        }
        self.st.last_result_id = self.st.last_result_id.max(id);
        self.result_keys.insert(id, key.clone());
        self.st.results.insert(key, entry);
        Ok(())
    }

    /// The record `col` names, for a row of its history or sightings.
    fn record(&mut self, c: &Cells<'_>, col: &str) -> Result<&mut ResultEntry, PortError> {
        let id = c.req_int(col)?;
        let key = self
            .result_keys
            .get(&id)
            .ok_or_else(|| dangling(c, col, format!("result {id}"), "result"))?;
        self.touched_results.insert(key.clone());
        self.st
            .results
            .get_mut(key)
            .ok_or_else(|| dangling(c, col, format!("result {id}"), "result"))
    }

    pub(super) fn sighting(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = c.req_int("id")?;
        let result = c.req_int("result_id")?;
        let rank = c
            .int("rank")?
            .map(|r| c.fit::<u32>("rank", r, "1 or more"))
            .transpose()?;
        if rank == Some(0) {
            return Err(c.bad("rank", "holds 0", "1 or more"));
        }
        let s = Sighting {
            source: c.req_text("source")?,
            task_id: c.int("task_id")?.map(TaskId),
            rank,
            seen_at: c.req_time("seen_at")?,
        };
        if self.sighting_ids.contains(&id) {
            return Err(duplicate("result_sightings", c.n, format!("sighting {id}")));
        }
        if let Some(t) = s.task_id {
            if self.task_sightings.contains(&(t.0, result)) {
                return Err(duplicate(
                    "result_sightings",
                    c.n,
                    format!("a second sighting of result {result} by task {t}"),
                ));
            }
        }
        let task = s.task_id;
        self.record(c, "result_id")?.sightings.push((id, s));
        self.sighting_ids.insert(id);
        if let Some(t) = task {
            self.task_sightings.insert((t.0, result));
        }
        self.st.last_sighting_id = self.st.last_sighting_id.max(id);
        Ok(())
    }

    pub(super) fn metric(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = c.req_int("id")?;
        let snapshot = MetricSnapshot {
            captured_at: c.req_time("captured_at")?,
            metrics: Metrics {
                views: c.int("views")?,
                likes: c.int("likes")?,
                comments: c.int("comments")?,
            },
        };
        if self.metric_ids.contains(&id) {
            return Err(duplicate("result_metrics", c.n, format!("snapshot {id}")));
        }
        self.record(c, "result_id")?.history.push((id, snapshot));
        self.metric_ids.insert(id);
        self.st.last_metric_id = self.st.last_metric_id.max(id);
        Ok(())
    }

    pub(super) fn quota(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let name = c.req_text("bucket")?;
        let bucket = Bucket {
            window_end: Some(c.req_time("window_end")?),
            used: c.fit("used", c.req_int("used")?, "0 or more")?,
            exhausted_until: c.time("exhausted_until")?,
        };
        if self.st.quota.contains_key(&name) {
            return Err(duplicate("quota_usage", c.n, format!("bucket {name:?}")));
        }
        self.st.quota.insert(name, bucket);
        Ok(())
    }

    pub(super) fn schedule(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = c.req_int("id")?;
        let cadence = match (c.int("every_secs")?, c.text("cron")?) {
            (Some(secs), None) => Cadence::EverySecs(c.fit("every_secs", secs, "60 or more")?),
            (None, Some(expr)) => Cadence::Cron(expr),
            (every, _) => {
                let problem = if every.is_some() {
                    "sets both every_secs and cron"
                } else {
                    "sets neither every_secs nor cron"
                };
                return Err(c.bad("every_secs", problem, "exactly one of every_secs and cron"));
            }
        };
        let schedule = Schedule {
            id: ScheduleId(id),
            name: c.req_text("name")?,
            task_type: c.parsed("type", TaskType::new(c.req_text("type")?))?,
            params: c.req_json("params")?,
            priority: c.parsed("priority", Priority::new(c.req_int("priority")?))?,
            cadence,
            time_zone: c.req_text("time_zone")?,
            jitter: Duration::from_secs(c.fit(
                "jitter_secs",
                c.req_int("jitter_secs")?,
                "0 or more",
            )?),
            paused: c.req_bool("paused")?,
            next_slot: c.req_time("next_slot")?,
            last_slot: c.time("last_slot")?,
            last_task: c.int("last_task")?.map(TaskId),
            created_at: c.req_time("created_at")?,
        };
        if self.schedule_ids.contains(&id) {
            return Err(duplicate("schedules", c.n, format!("schedule id {id}")));
        }
        if self.st.schedules.contains_key(&schedule.name) {
            return Err(duplicate(
                "schedules",
                c.n,
                format!("schedule {:?}", schedule.name),
            ));
        }
        self.schedule_ids.insert(id);
        self.st.last_schedule_id = self.st.last_schedule_id.max(id);
        self.st.schedules.insert(schedule.name.clone(), schedule);
        Ok(())
    }

    pub(super) fn baseline(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let b = ChannelBaseline {
            channel_id: c.req_text("channel_id")?,
            baseline: Baseline {
                format: c.parsed("format", VideoFormat::from_str(&c.req_text("format")?))?,
                basis: c.parsed("basis", AgeBasis::from_str(&c.req_text("basis")?))?,
                median: c.real("median_views")?,
                sample: c.fit("sample", c.req_int("sample")?, "0 or more")?,
            },
            computed_at: c.req_time("computed_at")?,
        };
        let list = self.st.baselines.entry(b.channel_id.clone()).or_default();
        if list
            .iter()
            .any(|x| (x.baseline.format, x.baseline.basis) == (b.baseline.format, b.baseline.basis))
        {
            return Err(duplicate(
                "channel_baselines",
                c.n,
                format!(
                    "the {} {} baseline of channel {:?}",
                    b.baseline.format.as_str(),
                    b.baseline.basis.as_str(),
                    b.channel_id
                ),
            ));
        }
        self.touched_channels.insert(b.channel_id.clone());
        list.push(b);
        Ok(())
    }
}
