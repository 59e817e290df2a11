-- PrismQ schema v4: outlier scores (see docs/ideas.md).
--
--   results.video_format      long, short or stream, from what the item's source said
--                             (NULL when it said nothing that tells).
--   results.outlier_score     views / baseline - 1 against the channel's median for the
--                             video's format; NULL when it cannot be scored (never 0).
--   results.outlier_basis     which views were compared: age_7d, age_30d or total.
--   results.outlier_baseline  the channel median compared with.
--   results.outlier_sample    how many uploads that median is of.
--   results.outlier_views     the video's views that were compared.
--   channel_baselines         each channel's median per (format, basis), recomputed in the
--                             transaction that saves results of that channel; median NULL
--                             when the sample is below the configured minimum.
-- Rows saved before this version get their format and score at the next save of results
-- of their channel; a row without a channel id gets its format at its own next save.
ALTER TABLE results ADD COLUMN video_format TEXT
    CHECK (video_format IS NULL OR video_format IN ('long', 'short', 'stream'));
ALTER TABLE results ADD COLUMN outlier_score REAL;
ALTER TABLE results ADD COLUMN outlier_basis TEXT
    CHECK (outlier_basis IS NULL OR outlier_basis IN ('age_7d', 'age_30d', 'total'));
ALTER TABLE results ADD COLUMN outlier_baseline REAL;
ALTER TABLE results ADD COLUMN outlier_sample INTEGER;
ALTER TABLE results ADD COLUMN outlier_views INTEGER;
-- `results list --order outlier`: walked in this order, so a page never sorts the table
-- (NULL scores sort last in a descending SQLite index).
CREATE INDEX ix_results_outlier ON results (outlier_score DESC, source, source_id);
-- A channel's rows, read to recompute its baselines when its results are saved.
CREATE INDEX ix_results_channel ON results (channel_id) WHERE channel_id IS NOT NULL;

CREATE TABLE channel_baselines (
    channel_id   TEXT    NOT NULL,
    format       TEXT    NOT NULL CHECK (format IN ('long', 'short', 'stream')),
    basis        TEXT    NOT NULL CHECK (basis IN ('age_7d', 'age_30d', 'total')),
    median_views REAL    CHECK (median_views IS NULL OR median_views > 0),
    sample       INTEGER NOT NULL CHECK (sample >= 0),
    computed_at  INTEGER NOT NULL,
    PRIMARY KEY (channel_id, format, basis)
) WITHOUT ROWID;
