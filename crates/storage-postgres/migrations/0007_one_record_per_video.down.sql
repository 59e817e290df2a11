-- Back to one row per (source, source_id), as SQLite's schema v8 down: each record stays
-- under the source that saved it last and gets a copy, with its whole metric history,
-- under every other kind of source that found it.
DROP VIEW youtube_results;
DROP INDEX ix_results_views;
DROP INDEX ix_results_published;
ALTER TABLE results RENAME COLUMN platform TO source;
CREATE INDEX ix_results_views ON results (views);
CREATE INDEX ix_results_published ON results (published_at);

CREATE TEMP TABLE split ON COMMIT DROP AS
SELECT result_id, source, min(seen_at) AS first_seen_at, max(seen_at) AS last_seen_at,
       (array_agg(task_id ORDER BY seen_at DESC, id DESC) FILTER (WHERE task_id IS NOT NULL))[1] AS task_id
FROM result_sightings GROUP BY result_id, source;

UPDATE results SET source = last_source WHERE last_source <> '';
DELETE FROM split sp USING results r WHERE r.id = sp.result_id AND r.source = sp.source;

INSERT INTO results (source, source_id, title, description, url, tags, channel, channel_id, published_at, duration,
                     views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views,
                     first_metrics_at, metrics_at, video_format, outlier_score, outlier_basis, outlier_baseline,
                     outlier_sample, outlier_views, views_7d, views_30d, growth_1h, growth_1h_span, growth_24h,
                     growth_24h_span, growth_7d, growth_7d_span, growth_30d, growth_30d_span)
SELECT sp.source, r.source_id, r.title, r.description, r.url, r.tags, r.channel, r.channel_id, r.published_at, r.duration,
       r.views, r.likes, r.comments, r.extra, sp.first_seen_at, sp.last_seen_at, sp.task_id, r.first_views,
       r.first_metrics_at, r.metrics_at, r.video_format, r.outlier_score, r.outlier_basis, r.outlier_baseline,
       r.outlier_sample, r.outlier_views, r.views_7d, r.views_30d, r.growth_1h, r.growth_1h_span, r.growth_24h,
       r.growth_24h_span, r.growth_7d, r.growth_7d_span, r.growth_30d, r.growth_30d_span
FROM split sp JOIN results r ON r.id = sp.result_id;

INSERT INTO result_metrics (result_id, captured_at, views, likes, comments)
SELECT c.id, m.captured_at, m.views, m.likes, m.comments
FROM split sp
JOIN results o ON o.id = sp.result_id
JOIN results c ON c.source = sp.source AND c.source_id = o.source_id
JOIN result_metrics m ON m.result_id = o.id;

DROP TABLE result_sightings;
ALTER TABLE results DROP COLUMN last_rank;
ALTER TABLE results DROP COLUMN last_source;

-- The background plan's name for YouTube results, with the columns it had at schema v1
-- (PostgreSQL fixes a view's `*` when it is made, which would pin later columns).
CREATE VIEW youtube_results AS
SELECT id, source, source_id, title, description, url, tags, channel, channel_id, published_at, duration,
       views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views,
       first_metrics_at, metrics_at
FROM results WHERE source LIKE 'youtube\_%';
