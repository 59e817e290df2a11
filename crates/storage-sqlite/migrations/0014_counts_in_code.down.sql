-- Back to schema v13: the status-change trigger of queue_counts, as v12 and v13 made it.
CREATE TRIGGER trg_queue_counts_update AFTER UPDATE OF status ON task_queue
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE type_id = OLD.type_id AND status = OLD.status;
    INSERT INTO queue_counts (type_id, status, n) VALUES (NEW.type_id, NEW.status, 1)
    ON CONFLICT (status, type_id) DO UPDATE SET n = n + 1;
END;
