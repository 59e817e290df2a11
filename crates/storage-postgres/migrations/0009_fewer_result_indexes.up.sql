-- PrismQ schema v9 (PostgreSQL): fewer index entries per saved row. Every new version of a
-- `results` row is an entry in each of its indexes (a save changes indexed columns, so no
-- update is HOT); a 500-video save spent about a third of its server time on them.
-- No query filters on `last_task_id`: `--task` reads `ux_result_sightings_task` (v7).
DROP INDEX ix_results_task;
-- A baseline's sample at 7 or 30 days walks the channel's rows of one format newest first
-- as the total's does, skipping rows without the value: one index with both values
-- included replaces three.
DROP INDEX ix_results_recent_7d;
DROP INDEX ix_results_recent_30d;
DROP INDEX ix_results_recent;
CREATE INDEX ix_results_recent
    ON results (channel_id, video_format, published_at DESC, source_id COLLATE "C", views DESC)
    INCLUDE (views_7d, views_30d)
    WHERE channel_id IS NOT NULL AND video_format IS NOT NULL;
