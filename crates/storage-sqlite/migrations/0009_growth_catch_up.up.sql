-- PrismQ schema v9: growth for records that have none yet (see docs/tracking.md).
--
--   growth_pending  the records whose growth windows are still to be computed from their
--                   history: those with no growth in any window and a snapshot older than
--                   their latest observation (records merged by v8, rows saved before v7
--                   and never rescored). The store empties it, computing each record's
--                   growth as a save would, right after migrating (`prismq migrate up`, or
--                   any command that migrates on open); an empty table means done, so it
--                   runs once. Rows still here (an interrupted run) are taken up the next
--                   time.
CREATE TABLE growth_pending (
    result_id INTEGER PRIMARY KEY REFERENCES results (id) ON DELETE CASCADE
);
INSERT INTO growth_pending (result_id)
SELECT id FROM results
WHERE growth_1h IS NULL AND growth_24h IS NULL AND growth_7d IS NULL AND growth_30d IS NULL
  AND EXISTS (SELECT 1 FROM result_metrics m
              WHERE m.result_id = results.id AND m.captured_at < results.last_seen_at);
