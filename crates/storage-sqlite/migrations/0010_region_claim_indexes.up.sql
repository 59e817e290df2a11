-- PrismQ schema v10: the claim indexes key on the task's region.
--
-- A claim takes a task that requires no region, or the worker's own. With the region tested
-- row by row after the index probe, a worker with no region behind 200,000 tasks that
-- require region GB read all 200,000 entries (and each row's `compatibility`) before it
-- found its task, holding the writer all the while. With the region in the key, between the
-- type (and level) and the time, each claim probes the entries of exactly one region: one
-- probe for tasks without a region and, for a worker serving a region, one for it; the
-- earlier of the two is taken. An entry of a task without a region grows by one byte.
DROP INDEX ix_queue_claim_time;
DROP INDEX ix_queue_claim_priority;
CREATE INDEX ix_queue_claim_time ON task_queue (type, region, run_after) WHERE status = 'queued';
CREATE INDEX ix_queue_claim_priority ON task_queue (type, priority, region, run_after) WHERE status = 'queued';
