-- PrismQ schema v15: a task's updated_at is NULL until the task first changes (until then it
-- was written equal to created_at). A queued task's row is six bytes shorter: a million
-- queued tasks take 6 MB less, which keeps them within 1.3 x issue 20's floor table on
-- 2 KiB pages (docs/performance.md, item 26). Readers take coalesce(updated_at, created_at)
-- (codec.rs), so every task reads as before; every status change, lease renewal and retry
-- sets updated_at as before, and the copy below stores NULL only where the two were equal.
-- Every other column, index, trigger and view is as in v14. The rebuild is v13's
-- (migrations.rs runs this step with foreign keys off and checks them before it commits).
DROP VIEW task_log_entries;
DROP VIEW task_log_pending;
DROP VIEW v_active_tasks;
DROP VIEW v_task_stats;
DROP VIEW v_worker_stats;
DROP TRIGGER trg_queue_counts_delete;

CREATE TABLE task_queue_aside AS SELECT * FROM task_queue;
CREATE TABLE task_queue_aside_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'task_queue';
DROP TABLE task_queue;
CREATE TABLE task_queue (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    type_id          INTEGER NOT NULL REFERENCES task_types (id),
    params           TEXT    NOT NULL CHECK (params >= '{' AND params < '|'),
    priority         INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    status           INTEGER NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 5),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    run_after        INTEGER NOT NULL,
    lease_expires_at INTEGER,
    claimed_by       TEXT,
    lease_token      INTEGER,
    idempotency_key  TEXT CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 255),
    compatibility    TEXT CHECK (compatibility IS NULL OR compatibility >= '{' AND compatibility < '|'),
    region           TEXT CHECK (region IS NULL OR region GLOB '[A-Z][A-Z]')
                          CHECK (compatibility IS NULL AND region IS NULL OR region IS json_extract(compatibility, '$.region')),
    last_error       TEXT,
    summary          TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER,
    started_at       INTEGER,
    finished_at      INTEGER,
    log_seq          INTEGER NOT NULL DEFAULT 0,
    claimed_at       INTEGER,
    claimed_with     TEXT,
    claim_seq        INTEGER,
    lapses           INTEGER NOT NULL DEFAULT 0 CHECK (lapses >= 0)
);
INSERT INTO task_queue (id, type_id, params, priority, status, attempts, max_attempts, run_after, lease_expires_at, claimed_by, lease_token, idempotency_key, compatibility, region, last_error, summary, created_at, updated_at, started_at, finished_at, log_seq, claimed_at, claimed_with, claim_seq, lapses)
SELECT id, type_id, params, priority, status, attempts, max_attempts, run_after, lease_expires_at, claimed_by, lease_token, idempotency_key, compatibility, region, last_error, summary, created_at, nullif(updated_at, created_at), started_at, finished_at, log_seq, claimed_at, claimed_with, claim_seq, lapses FROM task_queue_aside ORDER BY id;
-- The AUTOINCREMENT high-water mark: ids of purged tasks are never reused.
UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM task_queue_aside_seq)) WHERE name = 'task_queue';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'task_queue', seq FROM task_queue_aside_seq
WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'task_queue');
DROP TABLE task_queue_aside;
DROP TABLE task_queue_aside_seq;

CREATE INDEX ix_queue_claim_time ON task_queue (type_id, region, run_after) WHERE status = 0;
CREATE INDEX ix_queue_claim_priority ON task_queue (type_id, priority, region, run_after) WHERE status = 0;
CREATE INDEX ix_queue_lease ON task_queue (lease_expires_at) WHERE status IN (1, 2);
CREATE INDEX ix_queue_finished ON task_queue (status, finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX uq_queue_idempotency ON task_queue (idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TRIGGER trg_queue_counts_delete AFTER DELETE ON task_queue
BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE type_id = OLD.type_id AND status = OLD.status;
END;

CREATE VIEW task_log_pending AS
SELECT id AS task_id, claim_seq + 1 AS seq, claimed_at AS at, 'info' AS level, 'claimed' AS event,
       'claimed by ' || claimed_by AS message,
       json_object('worker', claimed_by, 'attempt', attempts, 'strategy', claimed_with) AS details
FROM task_queue WHERE claim_seq IS NOT NULL
UNION ALL
SELECT id, claim_seq + 2, started_at, 'info', 'started', 'handler started', NULL
FROM task_queue WHERE claim_seq IS NOT NULL AND started_at IS NOT NULL
UNION ALL
SELECT id, log_seq + 1, finished_at, 'info', 'completed', 'completed', NULL
FROM task_queue WHERE claim_seq IS NOT NULL AND status = 3;

CREATE VIEW task_log_entries AS
SELECT task_id, seq, at, level, event, message, details FROM task_logs
UNION ALL
SELECT task_id, seq, at, level, event, message, details FROM task_log_pending;

CREATE VIEW v_active_tasks AS
SELECT q.id, t.name AS type, CASE q.status WHEN 1 THEN 'claimed' ELSE 'running' END AS status,
       q.priority, q.attempts, q.max_attempts, q.claimed_by,
       strftime('%Y-%m-%dT%H:%M:%fZ', q.lease_expires_at / 1000.0, 'unixepoch') AS lease_expires_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', q.started_at / 1000.0, 'unixepoch') AS started_at
FROM task_queue q JOIN task_types t ON t.id = q.type_id
WHERE q.status IN (1, 2);

CREATE VIEW v_task_stats AS
SELECT t.name AS type,
       CASE q.status WHEN 0 THEN 'queued' WHEN 1 THEN 'claimed' WHEN 2 THEN 'running'
                     WHEN 3 THEN 'completed' WHEN 4 THEN 'failed' ELSE 'cancelled' END AS status,
       count(*) AS count, avg(q.attempts) AS avg_attempts
FROM task_queue q JOIN task_types t ON t.id = q.type_id
GROUP BY t.name, q.status;

CREATE VIEW v_worker_stats AS
SELECT claimed_by AS worker_id,
       count(*) AS processed,
       sum(status = 3) AS succeeded,
       sum(status = 4) AS failed,
       avg(CASE WHEN started_at IS NOT NULL THEN finished_at - started_at END) / 1000.0 AS avg_processing_seconds
FROM task_queue
WHERE claimed_by IS NOT NULL AND status IN (3, 4)
GROUP BY claimed_by;
