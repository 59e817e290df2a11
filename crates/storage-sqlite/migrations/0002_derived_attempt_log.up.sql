-- PrismQ schema v2: the current attempt's log lives on its task row.
--
-- A task's claim, start and completion used to cost a task-log row each, written in the
-- same transaction as the state change: one more B-tree page per transition, about a fifth
-- of the write-ahead log a drained task produces. The task row already holds what those
-- entries say (who claimed it, when, which attempt, when it started and finished), so the
-- current attempt's entries are now read from the row (view `task_log_pending`), and are
-- written to `task_logs` only when the attempt ends some other way (failure, release,
-- cancellation, a lapsed lease) or the row is about to be overwritten by the next claim.
-- The log reads the same as before; a task that succeeds first time writes no log rows.
--
--   log_seq    the last `seq` used in this task's log; appends take the next one.
--   claimed_at when the current attempt was claimed.
--   claimed_with the claiming strategy of the current attempt.
--   claim_seq  set while the current attempt's entries are unwritten: its `claimed` entry
--              reads as seq claim_seq + 1 and its `started` entry as claim_seq + 2 (a claim
--              reserves both numbers, so notes written during the attempt sort after them).
ALTER TABLE task_queue ADD COLUMN log_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE task_queue ADD COLUMN claimed_at INTEGER;
ALTER TABLE task_queue ADD COLUMN claimed_with TEXT;
ALTER TABLE task_queue ADD COLUMN claim_seq INTEGER;

UPDATE task_queue
SET log_seq = (SELECT max(seq) FROM task_logs WHERE task_id = task_queue.id)
WHERE EXISTS (SELECT 1 FROM task_logs WHERE task_id = task_queue.id);

-- The current attempt's entries that are not (yet) rows of task_logs.
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
FROM task_queue WHERE claim_seq IS NOT NULL AND status = 'completed';

-- Every log entry of every task except the synthesized `enqueued` (the row's created_at).
CREATE VIEW task_log_entries AS
SELECT task_id, seq, at, level, event, message, details FROM task_logs
UNION ALL
SELECT task_id, seq, at, level, event, message, details FROM task_log_pending;
