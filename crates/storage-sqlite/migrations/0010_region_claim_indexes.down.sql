-- Back to schema v9's claim indexes: region tested after the probe.
DROP INDEX ix_queue_claim_time;
DROP INDEX ix_queue_claim_priority;
CREATE INDEX ix_queue_claim_time ON task_queue (type, run_after) WHERE status = 'queued';
CREATE INDEX ix_queue_claim_priority ON task_queue (type, priority, run_after) WHERE status = 'queued';
