-- PrismQ schema v3 (PostgreSQL): outlier scores. The same columns and table as SQLite's
-- schema v4; see its migration and docs/ideas.md for meaning.
ALTER TABLE results ADD COLUMN video_format TEXT
    CHECK (video_format IS NULL OR video_format IN ('long', 'short', 'stream'));
ALTER TABLE results ADD COLUMN outlier_score DOUBLE PRECISION;
ALTER TABLE results ADD COLUMN outlier_basis TEXT
    CHECK (outlier_basis IS NULL OR outlier_basis IN ('age_7d', 'age_30d', 'total'));
ALTER TABLE results ADD COLUMN outlier_baseline DOUBLE PRECISION;
ALTER TABLE results ADD COLUMN outlier_sample BIGINT;
ALTER TABLE results ADD COLUMN outlier_views BIGINT;
ALTER TABLE results ADD COLUMN views_7d BIGINT;
ALTER TABLE results ADD COLUMN views_30d BIGINT;
-- `results list --order outlier` walks this index (ties bytewise, as the listing sorts).
CREATE INDEX ix_results_outlier
    ON results (outlier_score DESC NULLS LAST, source COLLATE "C", source_id COLLATE "C");
-- A channel's rows (all of them when its baselines move), and one video's rows in it.
CREATE INDEX ix_results_channel ON results (channel_id, source_id COLLATE "C")
    WHERE channel_id IS NOT NULL;
-- A baseline's sample: the channel's most recent uploads of one format with a value for
-- the basis, newest first, never read past the window.
CREATE INDEX ix_results_recent
    ON results (channel_id, video_format, published_at DESC, source_id COLLATE "C", views DESC)
    WHERE channel_id IS NOT NULL AND video_format IS NOT NULL;
CREATE INDEX ix_results_recent_7d
    ON results (channel_id, video_format, published_at DESC, source_id COLLATE "C", views_7d)
    WHERE channel_id IS NOT NULL AND video_format IS NOT NULL AND views_7d IS NOT NULL;
CREATE INDEX ix_results_recent_30d
    ON results (channel_id, video_format, published_at DESC, source_id COLLATE "C", views_30d)
    WHERE channel_id IS NOT NULL AND video_format IS NOT NULL AND views_30d IS NOT NULL;

CREATE TABLE channel_baselines (
    channel_id   TEXT   NOT NULL,
    format       TEXT   NOT NULL CHECK (format IN ('long', 'short', 'stream')),
    basis        TEXT   NOT NULL CHECK (basis IN ('age_7d', 'age_30d', 'total')),
    median_views DOUBLE PRECISION CHECK (median_views IS NULL OR median_views > 0),
    sample       BIGINT NOT NULL CHECK (sample >= 0),
    computed_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, format, basis)
);
