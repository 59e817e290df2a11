-- Reverts schema v9 (PostgreSQL): the indexes of v3 and v6 as they were.
DROP INDEX ix_results_recent;
CREATE INDEX ix_results_recent
    ON results (channel_id, video_format, published_at DESC, source_id COLLATE "C", views DESC)
    WHERE channel_id IS NOT NULL AND video_format IS NOT NULL;
CREATE INDEX ix_results_recent_7d
    ON results (channel_id, video_format, published_at DESC, source_id COLLATE "C", views_7d)
    WHERE channel_id IS NOT NULL AND video_format IS NOT NULL AND views_7d IS NOT NULL;
CREATE INDEX ix_results_recent_30d
    ON results (channel_id, video_format, published_at DESC, source_id COLLATE "C", views_30d)
    WHERE channel_id IS NOT NULL AND video_format IS NOT NULL AND views_30d IS NOT NULL;
CREATE INDEX ix_results_task ON results (last_task_id) WHERE last_task_id IS NOT NULL;
