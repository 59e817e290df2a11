-- Drops the schedules; the tasks they enqueued stay in the queue.
DROP INDEX ix_schedules_due;
DROP TABLE schedules;
