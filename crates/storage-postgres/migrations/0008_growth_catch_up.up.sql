-- PrismQ schema v8 (PostgreSQL): growth for records that have none yet. The same table as
-- SQLite's schema v9; see its migration and docs/tracking.md. The store empties it right
-- after migrating, computing each listed record's growth as a save would.
CREATE TABLE growth_pending (
    result_id BIGINT PRIMARY KEY REFERENCES results (id) ON DELETE CASCADE
);
INSERT INTO growth_pending (result_id)
SELECT id FROM results
WHERE growth_1h IS NULL AND growth_24h IS NULL AND growth_7d IS NULL AND growth_30d IS NULL
  AND EXISTS (SELECT 1 FROM result_metrics m
              WHERE m.result_id = results.id AND m.captured_at < results.last_seen_at);
