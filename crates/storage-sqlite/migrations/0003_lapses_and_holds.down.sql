-- Drops the lapse count and the held types (lapses are forgotten; attempts are unchanged).
ALTER TABLE workers DROP COLUMN held;
ALTER TABLE task_queue DROP COLUMN lapses;
