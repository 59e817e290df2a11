-- PrismQ schema v12: a worker's transitions are counted by the code that makes them.
--
-- trg_queue_counts_update ran on every status change: a claim, a start, a completion, a
-- failure. Each run is a trigger program of two statements on queue_counts, and a trigger
-- that writes another table makes SQLite copy every page the triggering UPDATE touches into
-- a statement journal first. Measured on the complete_and_claim drain (docs/performance.md):
-- without it a task cost 59-70 CPU µs against 74-99 at one worker.
--
-- The worker's writes (src/claims.rs, src/lease.rs, src/next.rs, src/batch.rs) now add each
-- move they make to a net change per (type, status), applied by the same write in the same
-- transaction or savepoint (src/moves.rs): a completion and the next claim cost one upsert
-- for `queued` and one for `completed`, a batch of them the same two. The trigger stays for
-- the operator's transitions, which the worker never makes: a cancel (to `cancelled`) and a
-- dead letter sent back to the queue (from a final status). Inserts are counted by the code
-- (schema v11) and deletes by trg_queue_counts_delete, as before.
DROP TRIGGER trg_queue_counts_update;
CREATE TRIGGER trg_queue_counts_operator AFTER UPDATE OF status ON task_queue
WHEN OLD.status <> NEW.status
 AND (NEW.status = 'cancelled' OR OLD.status IN ('completed', 'failed', 'cancelled'))
BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE type = OLD.type AND status = OLD.status;
    INSERT INTO queue_counts (type, status, n) VALUES (NEW.type, NEW.status, 1)
    ON CONFLICT (status, type) DO UPDATE SET n = n + 1;
END;
