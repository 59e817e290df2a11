-- PrismQ schema v3: lapsed leases counted apart from attempts, and what each worker holds back.
--
--   task_queue.lapses  how many times a lease on this task lapsed (its worker died or froze)
--                      and the task was taken back. A lapse is not the task's own failure, so
--                      it is counted here instead of in `attempts`; a task is dead-lettered for
--                      lapses only past a separate, larger limit.
--   workers.held       the task types this worker's process is not claiming right now (a
--                      circuit breaker open after repeated transient failures, a quota bucket
--                      spent), as a JSON array of {"type", "until", "reason"} objects; written
--                      with each heartbeat, shown by `stats` and `workers`.
ALTER TABLE task_queue ADD COLUMN lapses INTEGER NOT NULL DEFAULT 0 CHECK (lapses >= 0);
ALTER TABLE workers ADD COLUMN held TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(held));
