//! `Load` for `MemoryStore`: the neutral rows of a dump (`memory/dump.rs` says what each
//! column holds) written into the fake.
//!
//! A load works on a staging copy of the state: every batch is checked and applied to it at
//! once (a duplicate key is `Duplicate`, a log, snapshot or sighting naming a task or record
//! the store does not hold, or a value the store cannot hold, is `Invalid` naming the table,
//! column and row), and the first refused batch ends the session (later writes and the
//! commit are refused: drop it and start again). The commit applies the session's rows
//! again, under the lock, to the state as it is then, and swaps the result in: another
//! writer's changes made meanwhile are kept, or the commit is refused when they clash
//! (after `clear`, though, the load replaces the tables whole, such changes included).
//! Dropping the session changes nothing. After the commit every id
//! generator continues after the largest id loaded (ids are never reused), the idempotency
//! keys index the loaded tasks, and loaded histories, sightings and baselines are in the
//! order the ports read them.

mod cells;
mod tables;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use prismq_domain::ports::dump::{Row, DUMP_TABLES};
use prismq_domain::ports::{Load, LoadSession, StorageError};
use prismq_domain::{PortError, ValidationError};

use cells::Cells;

use super::dump::counts;
use super::{MemoryStore, State, MEMORY_ENGINE};

/// The state a load writes into, with the indexes its checks need.
struct Loader {
    st: State,
    /// Each record's key by its id.
    result_keys: HashMap<i64, (String, String)>,
    metric_ids: HashSet<i64>,
    sighting_ids: HashSet<i64>,
    /// (task, record) of every sighting by a task: one each.
    task_sightings: HashSet<(i64, i64)>,
    schedule_ids: HashSet<i64>,
    /// Records and channels whose history, sightings or baselines the load added to.
    touched_results: HashSet<(String, String)>,
    touched_channels: HashSet<String>,
    /// Rows written per table.
    written: Vec<u64>,
}

impl Loader {
    fn new(st: State) -> Loader {
        let mut l = Loader {
            st,
            result_keys: HashMap::new(),
            metric_ids: HashSet::new(),
            sighting_ids: HashSet::new(),
            task_sightings: HashSet::new(),
            schedule_ids: HashSet::new(),
            touched_results: HashSet::new(),
            touched_channels: HashSet::new(),
            written: vec![0; DUMP_TABLES.len()],
        };
        for (key, e) in &l.st.results {
            l.result_keys.insert(e.id, key.clone());
            l.metric_ids.extend(e.history.iter().map(|(id, _)| *id));
            for (id, s) in &e.sightings {
                l.sighting_ids.insert(*id);
                if let Some(t) = s.task_id {
                    l.task_sightings.insert((t.0, e.id));
                }
            }
        }
        l.schedule_ids = l.st.schedules.values().map(|s| s.id.0).collect();
        l
    }

    /// Empties every table of the format; id generators, API keys and counts of rows
    /// written stay.
    fn clear(&mut self) {
        let st = &mut self.st;
        st.tasks.clear();
        st.keys.clear();
        st.started.clear();
        st.logs.clear();
        st.workers.clear();
        st.results.clear();
        st.baselines.clear();
        st.quota.clear();
        st.schedules.clear();
        self.result_keys.clear();
        self.metric_ids.clear();
        self.sighting_ids.clear();
        self.task_sightings.clear();
        self.schedule_ids.clear();
        self.touched_results.clear();
        self.touched_channels.clear();
    }

    fn write(&mut self, ti: usize, rows: &[Row]) -> Result<(), PortError> {
        let t = DUMP_TABLES.get(ti).ok_or_else(|| {
            PortError::Invalid(ValidationError::new(
                "table",
                format!("{ti} is no table of the dump format"),
                format!("0 to {}", DUMP_TABLES.len() - 1),
            ))
        })?;
        for r in rows {
            self.written[ti] += 1;
            let c = Cells::new(t, r, self.written[ti])?;
            match t.name {
                "task_queue" => self.task(&c)?,
                "task_logs" => self.log(&c)?,
                "workers" => self.worker(&c)?,
                "results" => self.result(&c)?,
                "result_sightings" => self.sighting(&c)?,
                "result_metrics" => self.metric(&c)?,
                "quota_usage" => self.quota(&c)?,
                "schedules" => self.schedule(&c)?,
                "channel_baselines" => self.baseline(&c)?,
                other => unreachable!("DUMP_TABLES has no table {other} the fake does not know"),
            }
        }
        Ok(())
    }

    /// The state with what was loaded in the order the ports read it: a record's history
    /// by capture time and its sightings by sighting time (then by id), a channel's
    /// baselines by format and basis.
    fn finish(mut self) -> State {
        for key in &self.touched_results {
            if let Some(e) = self.st.results.get_mut(key) {
                e.history.sort_by_key(|(id, s)| (s.captured_at, *id));
                e.sightings.sort_by_key(|(id, s)| (s.seen_at, *id));
            }
        }
        for channel in &self.touched_channels {
            if let Some(list) = self.st.baselines.get_mut(channel) {
                list.sort_by_key(|b| (b.baseline.format, b.baseline.basis));
            }
        }
        self.st
    }
}

/// A load into the fake in progress.
struct MemoryLoad {
    store: MemoryStore,
    /// The state as the session sees it (for its checks and counts).
    staging: Loader,
    /// Whether the session cleared the tables (the commit starts from empty ones).
    cleared: bool,
    /// Every batch written since the session began (or last cleared), applied again at
    /// commit.
    batches: Vec<(usize, Vec<Row>)>,
    /// Why an earlier write failed.
    failed: Option<String>,
}

impl MemoryLoad {
    fn refuse_after_failure(&self) -> Result<(), StorageError> {
        match &self.failed {
            None => Ok(()),
            Some(why) => Err(StorageError::Port(PortError::Invalid(
                ValidationError::new(
                    "load",
                    format!(
                        "an earlier write of this load was refused ({why}); nothing was loaded"
                    ),
                    "a new load, begun after fixing the rows",
                ),
            ))),
        }
    }
}

#[async_trait]
impl Load for MemoryStore {
    async fn begin_load(&self) -> Result<Box<dyn LoadSession>, StorageError> {
        let staging = Loader::new(self.state().clone());
        Ok(Box::new(MemoryLoad {
            store: self.clone(),
            staging,
            cleared: false,
            batches: Vec::new(),
            failed: None,
        }))
    }
}

#[async_trait]
impl LoadSession for MemoryLoad {
    fn engine(&self) -> &'static str {
        MEMORY_ENGINE
    }

    async fn existing_rows(&mut self) -> Result<u64, StorageError> {
        Ok(counts(&self.staging.st).iter().sum())
    }

    async fn clear(&mut self) -> Result<(), StorageError> {
        self.refuse_after_failure()?;
        self.staging.clear();
        self.cleared = true;
        self.batches.clear();
        Ok(())
    }

    async fn write(&mut self, table: usize, rows: Vec<Row>) -> Result<(), StorageError> {
        self.refuse_after_failure()?;
        if let Err(e) = self.staging.write(table, &rows) {
            self.failed = Some(e.to_string());
            return Err(e.into());
        }
        self.batches.push((table, rows));
        Ok(())
    }

    async fn counts(&mut self) -> Result<Vec<u64>, StorageError> {
        Ok(counts(&self.staging.st))
    }

    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        self.refuse_after_failure()?;
        let mut live = self.store.state();
        let mut next = Loader::new(live.clone());
        if self.cleared {
            next.clear();
        }
        for (table, rows) in &self.batches {
            next.write(*table, rows)?;
        }
        *live = next.finish();
        Ok(())
    }
}
