//! PrismQ's SQLite adapter: every domain port on one SQLite file, with atomic claims under
//! four strategies, fenced leases, deduplicated results and shared quota.
//!
//! The async ports' claims, starts and completions run at once on the caller's thread when
//! the process's writer connection is free and no write waits (one attempt that never waits
//! for a lock: a zero busy timeout), else on the store's writer thread (`writer.rs`, with group
//! commit); every other async call runs on tokio's blocking pool (`spawn_blocking`). Nothing
//! waits for a lock on a runtime thread. Every write that reads first runs in a
//! `BEGIN IMMEDIATE` transaction; SQLITE_BUSY is retried inside the adapter and surfaces as
//! `PortError::Busy` only after the configured busy timeout. The synchronous `*_blocking`
//! methods are public for benchmarks and tools that have no runtime. Connections that
//! write open through the `prismq-wal` VFS (`prismq_wal_vfs`), which hands each commit's
//! WAL frames to the operating system in one write.

pub mod admin;
mod batch;
mod checkpoint;
mod claims;
mod codec;
mod combine;
mod connection;
mod dump;
mod error;
mod keys;
mod lease;
mod logs;
pub mod migrations;
mod next;
pub mod ops;
mod pragmas;
mod queue;
mod quota;
mod results;
mod schedules;
mod tracked;
mod types;
mod workers;
mod writer;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prismq_domain::ports::Clock;
use prismq_domain::task::DEFAULT_MAX_PARAMS_BYTES;
use prismq_domain::{PortError, RetryPolicy, Timestamp};

pub use claims::{claim_regions, CLAIM_QUERIES};
pub use connection::{check_path, default_db_path, DB_PATH_ENV};
pub use error::StoreError;
pub use migrations::{MigrationStatus, MIGRATIONS};
pub use queue::list_statement;
pub use results::{
    find_sql, query_sql, query_statements, query_statements_with, sample_sql, source_plan,
    SourcePlan, AGE_SNAPSHOTS_SQL, FORMAT_PRESENT_SQL, GROWTH_HISTORY_SQL, RARE_SOURCE_SIGHTINGS,
    SOURCE_SIGHTINGS_SQL, VIDEO_ROWS_SQL,
};
pub use schedules::DUE_SCHEDULES_SQL;

/// How hard SQLite syncs to disk on commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Durable across process crashes; a power loss may roll back the last transactions (WAL).
    #[default]
    Normal,
    /// Durable across power loss too, at a cost in commit latency.
    Full,
}

impl std::str::FromStr for Synchronous {
    type Err = prismq_domain::ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(Synchronous::Normal),
            "full" => Ok(Synchronous::Full),
            _ => Err(prismq_domain::ValidationError::new(
                "database.synchronous",
                format!("{s:?} is not a synchronous mode"),
                "normal, full",
            )),
        }
    }
}

/// The page size of a database file the store creates: a power of two from 512 to 65,536
/// bytes, as SQLite allows. SQLite fixes it when a file's first table is made, so it only
/// applies to new files; an existing file keeps its own until [`ops::set_page_size`]
/// (`prismq db page-size`) rewrites it, or a copy into a new file (`prismq db copy`) moves it.
///
/// Smaller pages make every commit write fewer bytes: a claim or a completion changes four or
/// five pages whatever their size, so at one task a transaction smaller pages drain the queue
/// faster; larger saves (a channel's videos) and batch loads write more pages, and rows fill
/// the pages less evenly. The default, 2 KiB, is where the queue's targets all hold (a
/// million queued tasks within 1.3 times the floor table; saves of many videos a few per cent
/// slower than at 4 KiB);
/// `docs/performance.md` has the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// 2,048 bytes, half SQLite's own default (`docs/performance.md`, item 26).
    pub const DEFAULT: PageSize = PageSize(2048);
    /// What [`PageSize::new`] accepts, for messages.
    pub const ACCEPTED: &'static str =
        "a power of two from 512 to 65536 (bytes): 512, 1024, 2048, 4096, 8192, 16384, 32768 or 65536";

    /// `bytes` if SQLite accepts it as a page size (SQLite ignores any other value silently).
    pub const fn new(bytes: u32) -> Option<PageSize> {
        if bytes.is_power_of_two() && bytes >= 512 && bytes <= 65_536 {
            Some(PageSize(bytes))
        } else {
            None
        }
    }

    /// The size in bytes.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageSize {
    fn default() -> Self {
        PageSize::DEFAULT
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file.
    pub path: PathBuf,
    /// Sync mode.
    pub synchronous: Synchronous,
    /// How long to wait for another writer before answering `Busy`.
    pub busy_timeout: Duration,
    /// Applied by `fail`.
    pub retry: RetryPolicy,
    /// Largest params accepted at enqueue.
    pub max_params_bytes: usize,
    /// Apply pending migrations on open (the default). Off for `migrate` commands and for
    /// commands that only read.
    pub migrate: bool,
    /// A missing file, an empty one, or a SQLite file with no schema objects may become a
    /// new queue (the default): the file (and its directory) is created and, with `migrate`,
    /// the schema. Off, such a path is refused ([`StoreError::Missing`],
    /// [`StoreError::Uninitialised`]) and nothing is created. A SQLite database made by
    /// another application is refused either way ([`StoreError::Foreign`]).
    pub create: bool,
    /// Idle connections kept for reuse.
    pub max_idle_connections: usize,
    /// How channel baselines and outlier scores are computed when results are saved.
    pub outlier: prismq_domain::outlier::OutlierSettings,
    /// The page size of a file this store creates (an existing file keeps its own).
    pub page_size: PageSize,
    /// Open connections through the `prismq-wal` VFS (the default), which hands each
    /// commit's WAL frames to the operating system in one write instead of two a frame
    /// (`prismq_wal_vfs`; the file and its locks are SQLite's own either way). Off, SQLite's
    /// default VFS, for benchmarks that measure what it buys.
    pub batch_wal_writes: bool,
}

impl SqliteOptions {
    /// Defaults for `path`: synchronous NORMAL, 5 s busy timeout, the default retry policy,
    /// 1 MiB params, create a new queue when there is none (with [`PageSize::DEFAULT`]'s
    /// 2 KiB pages), migrate on open, WAL writes batched a commit.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: path.into(),
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            max_params_bytes: DEFAULT_MAX_PARAMS_BYTES,
            migrate: true,
            create: true,
            max_idle_connections: 8,
            outlier: prismq_domain::outlier::OutlierSettings::default(),
            page_size: PageSize::DEFAULT,
            batch_wal_writes: true,
        }
    }
}

#[derive(Debug)]
struct Inner {
    options: SqliteOptions,
    clock: Arc<dyn Clock>,
    pool: connection::Pool,
    /// The connection every write of this process runs on, one at a time. Threads queue on
    /// the mutex instead of meeting at SQLite's lock, whose busy handler sleeps in whole
    /// milliseconds before retrying; and the connection's page cache stays warm, where a
    /// connection that sees another connection's commit must drop its cache. Other
    /// processes still meet at SQLite's lock and its busy timeout. `None` until first use.
    ///
    /// parking_lot's mutex rather than std's: with more writing threads than cores (4
    /// workers on 2), its short adaptive spin and cheaper hand-over took the drain from
    /// 0.81 to 0.95 of the bare loop at 2 workers and from 0.73 to 0.78 at 4
    /// (docs/performance.md).
    writer: parking_lot::Mutex<Option<Connection>>,
    /// Checkpoints the WAL in the background as writes commit.
    checkpointer: checkpoint::Checkpointer,
    /// The WAL file beside the database (its path with `-wal` appended, as SQLite names it).
    wal: PathBuf,
    /// Claims, starts and completions waiting for the writer, run together by its next
    /// holder (group commit).
    waiting: combine::Waiting,
    /// Runs the async ports' writes (`writer.rs`).
    thread: writer::WriterThread,
    /// The database file's identity (device, inode) when it was opened, to notice it being
    /// deleted or replaced under the process; `None` where files have no such identity.
    identity: Option<(u64, u64)>,
    /// When the path was last compared with `identity`, in ms since `opened`.
    identity_checked_ms: AtomicU64,
    /// When the store was opened.
    opened: Instant,
}

/// How often the writer checks that the path still names the file it opened: a worker
/// notices a deleted database within this (plus its idle poll), at the cost of one `stat`
/// per interval, not per write.
const IDENTITY_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The writer connection's page cache, in KiB: SQLite's own default, a tenth of the other
/// connections' 20 MB. Measured, not derived: with 20 MB on the writer the claim p95 at a
/// million tasks was 98–119 µs, with 2 MB 82–95 µs, with 200 MB 238–331 µs
/// (docs/performance.md). Clean pages come from the memory map whatever the cache size, so
/// the writer's cache mostly holds the pages it dirties; a larger pool hands out colder
/// buffers, which is our best explanation, not a proven one.
const WRITER_CACHE_KIB: u32 = 2_000;

/// The SQLite store. Cheap to clone; clones share one connection pool. Implements
/// `TaskQueue`, `WorkerRegistry`, `TaskLog`, `ResultStore` and `QuotaLedger`.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl SqliteStore {
    /// Opens the database at `options.path`. First, without changing anything, it refuses
    /// a path that cannot be a database (a URI, `:memory:`, a directory, a device, a FIFO), a
    /// file on a network filesystem, a file that is not SQLite, a damaged one, and a SQLite
    /// database made by another application. Then: a missing or empty file becomes a new
    /// queue when `options.create` is set (missing directories and the file are created
    /// owner-only) and is refused otherwise; the PRAGMAs are applied and checked; a schema
    /// newer than this binary or with altered migrations is refused; pending migrations are
    /// applied when `options.migrate` is set, and then the growth of records migrated
    /// without it is computed ([`SqliteStore::catch_up_growth_blocking`]).
    ///
    /// # Errors
    /// A [`StoreError`] saying what is wrong and what to do; nothing is written on error.
    pub fn open(options: SqliteOptions, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        connection::check_path(&options.path)?;
        connection::check_local(&options.path)?;
        let found = connection::inspect(&options.path, options.busy_timeout)?;
        if !options.create {
            match found {
                connection::Found::Missing => {
                    return Err(StoreError::Missing {
                        path: options.path.clone(),
                    })
                }
                connection::Found::Empty => {
                    return Err(StoreError::Uninitialised {
                        path: options.path.clone(),
                    })
                }
                connection::Found::Prismq => {}
            }
        }
        connection::prepare_file(&options.path)?;
        let identity =
            connection::file_identity(&options.path).map_err(|source| StoreError::Io {
                action: "reading",
                path: options.path.clone(),
                source,
            })?;
        let mut conn = connection::open_connection(&options)?;
        migrations::check(&conn).map_err(|e| corrupt_at(e, &options.path))?;
        if options.migrate {
            migrations::up(&mut conn, None, clock.now().as_millisecond())
                .map_err(|e| corrupt_at(e, &options.path))?;
        }
        let max_idle = options.max_idle_connections.max(1);
        let mut store =
            SqliteStore::with_pool(connection::Pool::new(conn, max_idle), options, clock);
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner.identity = identity;
        }
        if store.inner.options.migrate {
            store.catch_up_growth_blocking()?;
        }
        Ok(store)
    }

    /// Checks the whole file with `PRAGMA quick_check`: every page readable and every
    /// b-tree well formed (not the index contents, which `validate` checks). For `init` and
    /// `migrate` on an existing file, which would otherwise report a damaged file ready.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] with the first problem found; other database errors.
    pub fn quick_check(&self) -> Result<(), StoreError> {
        let path = &self.inner.options.path;
        let conn = self.inner.pool.take(&self.inner.options)?;
        let out = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get::<_, String>(0))
            .map_err(|e| corrupt_at(StoreError::Port(error::map_err(e)), path));
        match out {
            Ok(answer) if answer == "ok" => {
                self.inner.pool.put(conn);
                Ok(())
            }
            Ok(answer) => Err(StoreError::Corrupt {
                path: path.clone(),
                detail: answer
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .take(300)
                    .collect::<String>()
                    .trim()
                    .to_owned(),
            }),
            // A connection that met corruption is dropped, not reused.
            Err(e) => Err(e),
        }
    }

    /// Refuses a database whose schema is behind this binary, for commands that only read
    /// (they open without migrating, and their queries expect the latest schema).
    ///
    /// # Errors
    /// [`StoreError::SchemaTooOld`]; database errors.
    pub fn require_current(&self) -> Result<(), StoreError> {
        let found = self
            .migration_status()?
            .iter()
            .filter(|m| m.applied_at.is_some())
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        let needed = migrations::latest_version();
        if found < needed {
            return Err(StoreError::SchemaTooOld { found, needed });
        }
        Ok(())
    }

    /// `Gone` when the path no longer names the file this store opened (deleted, or replaced
    /// by another file), checked at most once per [`IDENTITY_CHECK_EVERY`].
    fn check_identity(&self) -> Result<(), PortError> {
        let Some(opened_as) = self.inner.identity else {
            return Ok(());
        };
        let now = u64::try_from(self.inner.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.inner.identity_checked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last)
            < u64::try_from(IDENTITY_CHECK_EVERY.as_millis()).unwrap_or(1_000)
        {
            return Ok(());
        }
        self.inner.identity_checked_ms.store(now, Ordering::Relaxed);
        let path = &self.inner.options.path;
        let what = match connection::file_identity(path) {
            Ok(Some(id)) if id == opened_as => return Ok(()),
            Ok(None) => return Ok(()),
            Ok(Some(_)) => "replaced by another file",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "deleted",
            // Unreadable for another reason (permissions changed, I/O error): SQLite's own
            // errors say more when it next touches the file.
            Err(_) => return Ok(()),
        };
        Err(PortError::Gone(format!(
            "{} was {what} while this process had it open; its writes would go to a file nobody else sees, so it stopped. Restore the file (from `prismq backup`) or run `prismq init`, then start the workers again",
            path.display()
        )))
    }

    /// A store over `pool`, with its writer opened on first use and its checkpoint thread.
    pub(crate) fn with_pool(
        pool: connection::Pool,
        options: SqliteOptions,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mut wal = options.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let checkpointer = checkpoint::Checkpointer::spawn(&options, &wal);
        SqliteStore {
            inner: Arc::new(Inner {
                pool,
                options,
                clock,
                writer: parking_lot::Mutex::new(None),
                checkpointer,
                wal,
                waiting: combine::Waiting::default(),
                thread: writer::WriterThread::default(),
                identity: None,
                identity_checked_ms: AtomicU64::new(0),
                opened: Instant::now(),
            }),
        }
    }

    /// The options it was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.inner.options
    }

    /// Runs `f` with a pooled connection.
    ///
    /// # Errors
    /// `f`'s error, or `Unavailable` when no connection can be opened.
    pub fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, PortError>,
    ) -> Result<T, PortError> {
        let mut conn = self
            .inner
            .pool
            .take(&self.inner.options)
            .map_err(|e| PortError::Unavailable(e.to_string()))?;
        let out = f(&mut conn);
        // A connection that met a storage fault (a full disk, an I/O error) can stay in
        // SQLite's error state, holding its read lock, after the fault clears: that would pin
        // the WAL so no checkpoint completes. Close it; the pool opens a fresh one.
        if !matches!(
            out,
            Err(PortError::Unavailable(_) | PortError::Corrupt(_) | PortError::Gone(_))
        ) {
            self.inner.pool.put(conn);
        }
        out
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the process's writer connection,
    /// retrying the whole transaction while the database is busy, up to the busy timeout
    /// (counted from the call, time spent waiting for this process's other writers
    /// included). `f` may run more than once.
    pub(crate) fn write<T>(
        &self,
        mut f: impl FnMut(&Transaction<'_>) -> Result<T, PortError>,
    ) -> Result<T, PortError> {
        let deadline = Instant::now() + self.inner.options.busy_timeout;
        let mut attempt = 0;
        loop {
            // Not poisoned by a writer that panicked: its transaction rolled back when the
            // `Transaction` dropped, so the connection is still good.
            let mut slot = self.inner.writer.try_lock().unwrap_or_else(|| {
                self.inner.checkpointer.contended();
                self.inner.writer.lock()
            });
            let result = self.transact(&mut slot, deadline, &mut f);
            drop(slot);
            match result {
                Err(PortError::Busy(msg)) => {
                    if Instant::now() >= deadline {
                        return Err(self.busy(&msg));
                    }
                    self.inner.checkpointer.contended();
                    std::thread::sleep(connection::busy_backoff(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `Busy` after the whole budget was spent.
    fn busy(&self, msg: &str) -> PortError {
        PortError::Busy(format!(
            "{msg}; other writers held the database for more than {:?}",
            self.inner.options.busy_timeout
        ))
    }

    /// One attempt at `f` in a `BEGIN IMMEDIATE` transaction on the writer connection in
    /// `slot` (the caller holds the writer lock), opening the connection first if needed and
    /// truncating the WAL when it is due. SQLite's own busy wait gets what is left until
    /// `deadline`.
    fn transact<T>(
        &self,
        slot: &mut Option<Connection>,
        deadline: Instant,
        f: &mut impl FnMut(&Transaction<'_>) -> Result<T, PortError>,
    ) -> Result<T, PortError> {
        self.check_identity()?;
        if slot.is_none() {
            let conn = connection::open_connection(&self.inner.options)
                .map_err(|e| PortError::Unavailable(e.to_string()))?;
            // Checkpoints run on the checkpoint thread, woken after the commit (see below);
            // SQLite's own, which runs inside the commit that crosses it, stays for small
            // writes and is lifted for a large write's commit (`checkpoint.rs`). The journal
            // size limit gives back the space of a long WAL when a write starts it over.
            conn.execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = {};
                 PRAGMA journal_size_limit = {};
                 PRAGMA cache_size = -{WRITER_CACHE_KIB};",
                checkpoint::WRITER_AUTOCHECKPOINT,
                checkpoint::WAL_SIZE_LIMIT,
            ))
            .map_err(error::map_err)?;
            *slot = Some(conn);
        }
        let Some(conn) = slot.as_mut() else {
            unreachable!("the writer connection was opened above")
        };
        // At most half what is left, so the transaction itself still has time.
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(budget) = self
            .inner
            .checkpointer
            .truncation_budget(&self.inner.wal, left)
        {
            self.inner
                .checkpointer
                .truncate_on(conn, budget, self.inner.options.busy_timeout);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let changes = conn.total_changes();
        let checkpointer = &self.inner.checkpointer;
        let result = conn
            .busy_timeout(left)
            .map_err(error::map_err)
            .and_then(|()| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(error::map_err)?;
                let out = f(&tx)?;
                checkpointer.before_commit(&tx, tx.total_changes().wrapping_sub(changes));
                tx.commit().map_err(error::map_err)?;
                Ok(out)
            });
        checkpointer.after_transaction(conn);
        // A connection left inside a transaction (never expected: a dropped `Transaction`
        // rolls back) must not serve the next writer, and one that met a storage fault (a
        // full disk, an I/O error) may keep failing after the fault clears, as SQLite holds
        // the pager in its error state: open a fresh one next time.
        if result.is_ok() && conn.is_autocommit() {
            self.inner.checkpointer.committed(conn);
        }
        if !conn.is_autocommit()
            || matches!(
                result,
                Err(PortError::Unavailable(_) | PortError::Corrupt(_) | PortError::Gone(_))
            )
        {
            *slot = None;
        }
        result
    }

    /// Runs a read-only `f`, retrying while busy like [`SqliteStore::write`].
    pub(crate) fn read<T>(
        &self,
        mut f: impl FnMut(&Connection) -> Result<T, PortError>,
    ) -> Result<T, PortError> {
        let deadline = Instant::now() + self.inner.options.busy_timeout;
        self.with_connection(|conn| {
            let mut attempt = 0;
            loop {
                match f(conn) {
                    Err(PortError::Busy(_)) if Instant::now() < deadline => {
                        std::thread::sleep(connection::busy_backoff(attempt));
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
    }

    /// Runs a blocking closure on tokio's blocking pool.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SqliteStore) -> Result<T, PortError> + Send + 'static,
    ) -> Result<T, PortError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| {
                PortError::Unavailable(format!("a storage task stopped unexpectedly: {e}"))
            })?
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.now().as_millisecond()
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.options.retry
    }

    /// Migration status of this database.
    ///
    /// # Errors
    /// As [`migrations::status`].
    pub fn migration_status(&self) -> Result<Vec<MigrationStatus>, StoreError> {
        let conn = self.inner.pool.take(&self.inner.options)?;
        let out = migrations::status(&conn);
        self.inner.pool.put(conn);
        out
    }

    /// Applies migrations up to `target` (default latest), then, from schema v9 on,
    /// computes the growth of the records still waiting for it
    /// ([`SqliteStore::catch_up_growth_blocking`]).
    ///
    /// # Errors
    /// As [`migrations::up`].
    pub fn migrate_up(&self, target: Option<i64>) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.inner.pool.take(&self.inner.options)?;
        let out = migrations::up(&mut conn, target, self.now_ms())
            .and_then(|done| Ok((done, migrations::current_version(&conn)?)));
        self.inner.pool.put(conn);
        let (done, at) = out?;
        if at >= migrations::GROWTH_CATCH_UP_VERSION {
            self.catch_up_growth_blocking()?;
        }
        Ok(done)
    }

    /// Reverts migrations down to `target`.
    ///
    /// # Errors
    /// As [`migrations::down`].
    pub fn migrate_down(&self, target: i64) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.inner.pool.take(&self.inner.options)?;
        let out = migrations::down(&mut conn, target);
        self.inner.pool.put(conn);
        out
    }
}

/// A corruption found while opening, as [`StoreError::Corrupt`] naming the file.
fn corrupt_at(e: StoreError, path: &std::path::Path) -> StoreError {
    match e {
        StoreError::Port(PortError::Corrupt(detail)) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: detail
                .trim_end_matches(error::CORRUPT_ADVICE)
                .trim_end_matches("; ")
                .to_owned(),
        },
        other => other,
    }
}

/// Refuses an existing file that is not empty and not a SQLite database, before SQLite
/// touches it (SQLite would only notice on the first query, after creating a -wal file).
fn check_header(path: &std::path::Path) -> Result<(), StoreError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|source| StoreError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match f.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(source) => {
                return Err(StoreError::Io {
                    action: "reading",
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    let empty = read == 0;
    let sqlite = read == header.len() && &header == b"SQLite format 3\0";
    if empty || sqlite {
        Ok(())
    } else {
        Err(StoreError::NotADatabase {
            path: path.to_path_buf(),
        })
    }
}
