-- Back to schema v11: every status change counted by the trigger again.
DROP TRIGGER trg_queue_counts_operator;
CREATE TRIGGER trg_queue_counts_update AFTER UPDATE OF status ON task_queue
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE type = OLD.type AND status = OLD.status;
    INSERT INTO queue_counts (type, status, n) VALUES (NEW.type, NEW.status, 1)
    ON CONFLICT (status, type) DO UPDATE SET n = n + 1;
END;
