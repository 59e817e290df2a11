-- PrismQ schema v8: one record per video, and where it was seen (see docs/tracking.md).
--
--   results.platform          was `source`: the platform (`youtube`); with source_id the
--                             record's identity, UNIQUE (platform, source_id).
--   results.last_source       the kind of source that saved it last (`youtube_keyword`).
--   results.last_rank         its rank in that sighting.
--   result_sightings          one row per task that found the record (and one per save
--                             outside a task): the source kind, the task, the rank there
--                             and when. A task that saves the record again moves its row.
--
-- Rows of one video under several sources are merged into the row saved last: the metric
-- snapshots of all of them become its one history (time order is the index's), their
-- sightings move to it, it keeps the earliest first-seen time, a field it lacks is taken
-- from the latest row that has it, and its extra fields are written over the latest other
-- row's. Each old row yields the sightings it knew of: its
-- last save (task and rank) and, when earlier, its first. Growth and outlier values of a
-- merged record are recomputed by its next save or by `prismq results rescore`.
DROP VIEW youtube_results;

CREATE TABLE result_sightings (
    id        INTEGER PRIMARY KEY,
    result_id INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
    source    TEXT    NOT NULL,
    task_id   INTEGER,
    rank      INTEGER CHECK (rank IS NULL OR rank >= 1),
    seen_at   INTEGER NOT NULL
);
-- A record's sightings, newest first.
CREATE INDEX ix_result_sightings_result ON result_sightings (result_id, seen_at);
-- One sighting per (task, record); `--task` reads a task's records from it.
CREATE UNIQUE INDEX ux_result_sightings_task ON result_sightings (task_id, result_id)
    WHERE task_id IS NOT NULL;
-- `--source`: the records a kind of source found.
CREATE INDEX ix_result_sightings_source ON result_sightings (source, result_id);

INSERT INTO result_sightings (result_id, source, task_id, rank, seen_at)
SELECT id, source, NULL, NULL, first_seen_at FROM results WHERE first_seen_at < last_seen_at;
INSERT INTO result_sightings (result_id, source, task_id, rank, seen_at)
SELECT id, source, last_task_id, CASE WHEN typeof(rank) = 'integer' AND rank >= 1 THEN rank END,
       last_seen_at
FROM (SELECT id, source, last_task_id, last_seen_at,
             COALESCE(json_extract(extra, '$.trending_rank'), json_extract(extra, '$.search_rank'),
                      json_extract(extra, '$.upload_rank'), json_extract(extra, '$.request_rank')) AS rank
      FROM results);

-- Each row that is not its video's latest, with the row it merges into.
CREATE TEMP TABLE merge_map (id INTEGER PRIMARY KEY, keep INTEGER NOT NULL);
INSERT INTO merge_map (id, keep)
SELECT id, first_value(id) OVER (PARTITION BY platform, source_id ORDER BY last_seen_at DESC, id DESC)
FROM (SELECT id, source_id, last_seen_at,
             CASE WHEN instr(source, '_') > 0 THEN substr(source, 1, instr(source, '_') - 1) ELSE source END AS platform
      FROM results);
DELETE FROM merge_map WHERE id = keep;
CREATE INDEX temp.ix_merge_map_keep ON merge_map (keep);

UPDATE result_metrics SET result_id = (SELECT keep FROM merge_map WHERE merge_map.id = result_metrics.result_id)
WHERE result_id IN (SELECT id FROM merge_map);
-- A history merged twice (a round trip down and up copies it to every row) keeps one of
-- each snapshot.
DELETE FROM result_metrics
WHERE result_id IN (SELECT keep FROM merge_map)
  AND id NOT IN (SELECT min(id) FROM result_metrics WHERE result_id IN (SELECT keep FROM merge_map)
                 GROUP BY result_id, captured_at, views, likes, comments);
UPDATE OR IGNORE result_sightings
SET result_id = (SELECT keep FROM merge_map WHERE merge_map.id = result_sightings.result_id)
WHERE result_id IN (SELECT id FROM merge_map);

UPDATE results SET
    first_seen_at = min(first_seen_at, (SELECT min(o.first_seen_at) FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id)),
    first_metrics_at = min(first_metrics_at, (SELECT min(o.first_metrics_at) FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id)),
    description = COALESCE(description, (SELECT o.description FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id AND o.description IS NOT NULL ORDER BY o.last_seen_at DESC LIMIT 1)),
    url = COALESCE(url, (SELECT o.url FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id AND o.url IS NOT NULL ORDER BY o.last_seen_at DESC LIMIT 1)),
    channel = COALESCE(channel, (SELECT o.channel FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id AND o.channel IS NOT NULL ORDER BY o.last_seen_at DESC LIMIT 1)),
    channel_id = COALESCE(channel_id, (SELECT o.channel_id FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id AND o.channel_id IS NOT NULL ORDER BY o.last_seen_at DESC LIMIT 1)),
    published_at = COALESCE(published_at, (SELECT o.published_at FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id AND o.published_at IS NOT NULL ORDER BY o.last_seen_at DESC LIMIT 1)),
    duration = COALESCE(duration, (SELECT o.duration FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id AND o.duration IS NOT NULL ORDER BY o.last_seen_at DESC LIMIT 1)),
    views = COALESCE(views, (SELECT o.views FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id AND o.views IS NOT NULL ORDER BY o.last_seen_at DESC LIMIT 1)),
    likes = COALESCE(likes, (SELECT o.likes FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id AND o.likes IS NOT NULL ORDER BY o.last_seen_at DESC LIMIT 1)),
    comments = COALESCE(comments, (SELECT o.comments FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id AND o.comments IS NOT NULL ORDER BY o.last_seen_at DESC LIMIT 1)),
    extra = json_patch((SELECT o.extra FROM merge_map m JOIN results o ON o.id = m.id WHERE m.keep = results.id ORDER BY o.last_seen_at DESC LIMIT 1), extra),
    growth_1h = NULL, growth_1h_span = NULL, growth_24h = NULL, growth_24h_span = NULL,
    growth_7d = NULL, growth_7d_span = NULL, growth_30d = NULL, growth_30d_span = NULL
WHERE id IN (SELECT keep FROM merge_map);

DELETE FROM results WHERE id IN (SELECT id FROM merge_map);
DROP TABLE temp.merge_map;

ALTER TABLE results ADD COLUMN last_source TEXT NOT NULL DEFAULT '';
ALTER TABLE results ADD COLUMN last_rank INTEGER;
UPDATE results SET
    last_source = source,
    last_rank = (SELECT s.rank FROM result_sightings s WHERE s.result_id = results.id ORDER BY s.seen_at DESC, s.id DESC LIMIT 1),
    source = CASE WHEN instr(source, '_') > 0 THEN substr(source, 1, instr(source, '_') - 1) ELSE source END;
ALTER TABLE results RENAME COLUMN source TO platform;

-- `results list --order views|recent` walk these in order (a page after a cursor starts
-- where the cursor is); they replace the single-column ones.
DROP INDEX ix_results_views;
DROP INDEX ix_results_published;
CREATE INDEX ix_results_views ON results (views DESC, platform, source_id);
CREATE INDEX ix_results_published ON results (published_at DESC, platform, source_id);

-- The background plan's name for YouTube results, one row per (source, source_id) as
-- before: a record under each kind of source that found it, first and last seen there.
CREATE VIEW youtube_results AS
SELECT r.id, s.source, r.source_id, r.title, r.description, r.url, r.tags, r.channel, r.channel_id,
       r.published_at, r.duration, r.views, r.likes, r.comments, r.extra,
       s.first_seen_at, s.last_seen_at, r.last_task_id, r.first_views, r.first_metrics_at, r.metrics_at
FROM results r
JOIN (SELECT result_id, source, min(seen_at) AS first_seen_at, max(seen_at) AS last_seen_at
      FROM result_sightings GROUP BY result_id, source) s ON s.result_id = r.id
WHERE r.platform = 'youtube';
