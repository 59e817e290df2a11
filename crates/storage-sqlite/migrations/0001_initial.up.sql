-- PrismQ schema v1: the task queue, its log, workers, results with metric history, quota.
-- Timestamps are INTEGER milliseconds since the Unix epoch (UTC): compact and index-friendly.

CREATE TABLE task_queue (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    type             TEXT    NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
    params           TEXT    NOT NULL CHECK (json_valid(params) AND json_type(params) = 'object'),
    priority         INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    status           TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'claimed', 'running', 'completed', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    run_after        INTEGER NOT NULL,
    lease_expires_at INTEGER,
    claimed_by       TEXT,
    lease_token      INTEGER,
    idempotency_key  TEXT CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 255),
    compatibility    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(compatibility)),
    last_error       TEXT,
    summary          TEXT CHECK (summary IS NULL OR json_valid(summary)),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    region           TEXT GENERATED ALWAYS AS (json_extract(compatibility, '$.region')) VIRTUAL,
    format           TEXT GENERATED ALWAYS AS (json_extract(params, '$.format')) VIRTUAL
);

-- FIFO and LIFO: one probe per task type, ordered by (run_after, rowid). Partial: only the
-- queued set is indexed, so finished tasks cost the claim nothing.
CREATE INDEX ix_queue_claim_time ON task_queue (type, run_after) WHERE status = 'queued';
-- Priority and WeightedRandom: one probe per (type, priority level).
CREATE INDEX ix_queue_claim_priority ON task_queue (type, priority, run_after) WHERE status = 'queued';
-- Lapsed-lease rescue: only in-flight tasks (a handful) are in this index.
CREATE INDEX ix_queue_lease ON task_queue (lease_expires_at) WHERE status IN ('claimed', 'running');
-- Dead-letter listing and pruning of finished tasks.
CREATE INDEX ix_queue_finished ON task_queue (status, finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX uq_queue_idempotency ON task_queue (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Counts per (type, status), kept by triggers so stats never scan the queue.
CREATE TABLE queue_counts (
    status TEXT    NOT NULL,
    type   TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (status, type)
) WITHOUT ROWID;

CREATE TRIGGER trg_queue_counts_insert AFTER INSERT ON task_queue
BEGIN
    INSERT INTO queue_counts (type, status, n) VALUES (NEW.type, NEW.status, 1)
    ON CONFLICT (status, type) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER trg_queue_counts_update AFTER UPDATE OF status ON task_queue
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE type = OLD.type AND status = OLD.status;
    INSERT INTO queue_counts (type, status, n) VALUES (NEW.type, NEW.status, 1)
    ON CONFLICT (status, type) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER trg_queue_counts_delete AFTER DELETE ON task_queue
BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE type = OLD.type AND status = OLD.status;
END;

-- One B-tree keyed by (task_id, seq): a log append writes one page, and a task's log is
-- one range read. seq counts from 1 within each task.
CREATE TABLE task_logs (
    task_id INTEGER NOT NULL REFERENCES task_queue (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    level   TEXT    NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    event   TEXT    NOT NULL,
    message TEXT    NOT NULL,
    details TEXT CHECK (details IS NULL OR json_valid(details)),
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;

CREATE TABLE workers (
    id              TEXT    PRIMARY KEY,
    hostname        TEXT    NOT NULL,
    pid             INTEGER NOT NULL,
    capabilities    TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(capabilities)),
    strategy        TEXT    NOT NULL,
    started_at      INTEGER NOT NULL,
    heartbeat_at    INTEGER NOT NULL,
    current_task_id INTEGER,
    tasks_done      INTEGER NOT NULL DEFAULT 0,
    tasks_failed    INTEGER NOT NULL DEFAULT 0,
    status          TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stopped'))
);

CREATE TABLE results (
    id               INTEGER PRIMARY KEY,
    source           TEXT    NOT NULL,
    source_id        TEXT    NOT NULL,
    title            TEXT    NOT NULL,
    description      TEXT,
    url              TEXT,
    tags             TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
    channel          TEXT,
    channel_id       TEXT,
    published_at     INTEGER,
    duration         INTEGER,
    views            INTEGER,
    likes            INTEGER,
    comments         INTEGER,
    extra            TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(extra)),
    first_seen_at    INTEGER NOT NULL,
    last_seen_at     INTEGER NOT NULL,
    last_task_id     INTEGER,
    first_views      INTEGER,
    first_metrics_at INTEGER NOT NULL,
    metrics_at       INTEGER NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX ix_results_views ON results (views);
CREATE INDEX ix_results_published ON results (published_at);
CREATE INDEX ix_results_last_seen ON results (last_seen_at);

CREATE TABLE result_metrics (
    id          INTEGER PRIMARY KEY,
    result_id   INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
    captured_at INTEGER NOT NULL,
    views       INTEGER,
    likes       INTEGER,
    comments    INTEGER
);
CREATE INDEX ix_result_metrics_result ON result_metrics (result_id, captured_at);

CREATE TABLE quota_usage (
    bucket          TEXT    PRIMARY KEY,
    window_end      INTEGER NOT NULL,
    used            INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    exhausted_until INTEGER
);

-- Monitoring views. Timestamps are shown as ISO 8601 text for people reading them in sqlite3.
CREATE VIEW v_active_tasks AS
SELECT id, type, status, priority, attempts, max_attempts, claimed_by,
       strftime('%Y-%m-%dT%H:%M:%fZ', lease_expires_at / 1000.0, 'unixepoch') AS lease_expires_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', started_at / 1000.0, 'unixepoch') AS started_at
FROM task_queue
WHERE status IN ('claimed', 'running');

CREATE VIEW v_worker_status AS
SELECT id, hostname, pid, strategy, status, current_task_id, tasks_done, tasks_failed,
       strftime('%Y-%m-%dT%H:%M:%fZ', heartbeat_at / 1000.0, 'unixepoch') AS heartbeat_at,
       (CAST(strftime('%s', 'now') AS INTEGER) * 1000 - heartbeat_at) / 1000.0 AS seconds_since_heartbeat
FROM workers;

CREATE VIEW v_task_stats AS
SELECT type, status, count(*) AS count, avg(attempts) AS avg_attempts
FROM task_queue
GROUP BY type, status;

CREATE VIEW v_worker_stats AS
SELECT claimed_by AS worker_id,
       count(*) AS processed,
       sum(status = 'completed') AS succeeded,
       sum(status = 'failed') AS failed,
       avg(CASE WHEN started_at IS NOT NULL THEN finished_at - started_at END) / 1000.0 AS avg_processing_seconds
FROM task_queue
WHERE claimed_by IS NOT NULL AND status IN ('completed', 'failed')
GROUP BY claimed_by;

-- The background plan's name for YouTube results.
CREATE VIEW youtube_results AS
SELECT * FROM results WHERE source LIKE 'youtube\_%' ESCAPE '\';
