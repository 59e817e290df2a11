-- Writes the entries read from task rows into task_logs, then drops the columns and views.
INSERT INTO task_logs (task_id, seq, at, level, event, message, details)
SELECT task_id, seq, at, level, event, message, details FROM task_log_pending;
DROP VIEW task_log_entries;
DROP VIEW task_log_pending;
ALTER TABLE task_queue DROP COLUMN claim_seq;
ALTER TABLE task_queue DROP COLUMN claimed_with;
ALTER TABLE task_queue DROP COLUMN claimed_at;
ALTER TABLE task_queue DROP COLUMN log_seq;
