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
--   results.views_7d          the video's views at 7 days of age, from its metric history
--                             (NULL when no observation is near enough; see docs/ideas.md).
--   results.views_30d         the same at 30 days of age.
--   channel_baselines         each channel's median per (format, basis), recomputed in the
--                             transaction that saves results of that channel; median NULL
--                             when the sample is below the configured minimum.
-- video_format, views_7d and views_30d are the video's, not the row's: when one video has
-- rows from several sources they hold the same values. Rows saved before this version join
-- their channel's baselines when they are saved again (`prismq results rescore` does all).
ALTER TABLE results ADD COLUMN video_format TEXT
    CHECK (video_format IS NULL OR video_format IN ('long', 'short', 'stream'));
ALTER TABLE results ADD COLUMN outlier_score REAL;
ALTER TABLE results ADD COLUMN outlier_basis TEXT
    CHECK (outlier_basis IS NULL OR outlier_basis IN ('age_7d', 'age_30d', 'total'));
ALTER TABLE results ADD COLUMN outlier_baseline REAL;
ALTER TABLE results ADD COLUMN outlier_sample INTEGER;
ALTER TABLE results ADD COLUMN outlier_views INTEGER;
ALTER TABLE results ADD COLUMN views_7d INTEGER;
ALTER TABLE results ADD COLUMN views_30d INTEGER;
-- `results list --order outlier`: walked in this order, so a page never sorts the table
-- (NULL scores sort last in a descending SQLite index).
CREATE INDEX ix_results_outlier ON results (outlier_score DESC, source, source_id);
-- A channel's rows (all of them when its baselines move), and one video's rows in it.
CREATE INDEX ix_results_channel ON results (channel_id, source_id) WHERE channel_id IS NOT NULL;
-- A baseline's sample: the channel's most recent uploads of one format with a value for
-- the basis, newest first, read from the index alone and never past the window. The first
-- also answers whether the channel has any video of a format.
CREATE INDEX ix_results_recent ON results (channel_id, video_format, published_at DESC, source_id, views DESC)
    WHERE channel_id IS NOT NULL AND video_format IS NOT NULL;
CREATE INDEX ix_results_recent_7d ON results (channel_id, video_format, published_at DESC, source_id, views_7d)
    WHERE channel_id IS NOT NULL AND video_format IS NOT NULL AND views_7d IS NOT NULL;
CREATE INDEX ix_results_recent_30d ON results (channel_id, video_format, published_at DESC, source_id, views_30d)
    WHERE channel_id IS NOT NULL AND video_format IS NOT NULL AND views_30d IS NOT NULL;

CREATE TABLE channel_baselines (
    channel_id   TEXT    NOT NULL,
    format       TEXT    NOT NULL CHECK (format IN ('long', 'short', 'stream')),
    basis        TEXT    NOT NULL CHECK (basis IN ('age_7d', 'age_30d', 'total')),
    median_views REAL    CHECK (median_views IS NULL OR median_views > 0),
    sample       INTEGER NOT NULL CHECK (sample >= 0),
    computed_at  INTEGER NOT NULL,
    PRIMARY KEY (channel_id, format, basis)
) WITHOUT ROWID;
