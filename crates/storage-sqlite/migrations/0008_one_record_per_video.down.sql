-- Back to one row per (source, source_id): each record stays under the source that saved
-- it last, and gets a copy under every other kind of source that found it (first and last
-- seen there, its last task there), each copy with the record's whole metric history.
DROP VIEW youtube_results;
DROP INDEX ix_results_views;
DROP INDEX ix_results_published;
ALTER TABLE results RENAME COLUMN platform TO source;
CREATE INDEX ix_results_views ON results (views);
CREATE INDEX ix_results_published ON results (published_at);

CREATE TEMP TABLE split AS
SELECT result_id, source, min(seen_at) AS first_seen_at, max(seen_at) AS last_seen_at,
       (SELECT s2.task_id FROM result_sightings s2
        WHERE s2.result_id = s.result_id AND s2.source = s.source AND s2.task_id IS NOT NULL
        ORDER BY s2.seen_at DESC, s2.id DESC LIMIT 1) AS task_id
FROM result_sightings s GROUP BY result_id, source;

UPDATE results SET source = last_source WHERE last_source <> '';
DELETE FROM temp.split
WHERE EXISTS (SELECT 1 FROM results r WHERE r.id = split.result_id AND r.source = split.source);

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
FROM temp.split sp JOIN results r ON r.id = sp.result_id;

INSERT INTO result_metrics (result_id, captured_at, views, likes, comments)
SELECT c.id, m.captured_at, m.views, m.likes, m.comments
FROM temp.split sp
JOIN results o ON o.id = sp.result_id
JOIN results c ON c.source = sp.source AND c.source_id = o.source_id
JOIN result_metrics m ON m.result_id = o.id;
DROP TABLE temp.split;

DROP TABLE result_sightings;
ALTER TABLE results DROP COLUMN last_rank;
ALTER TABLE results DROP COLUMN last_source;

-- The background plan's name for YouTube results.
CREATE VIEW youtube_results AS
SELECT * FROM results WHERE source LIKE 'youtube\_%' ESCAPE '\';
