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
-- `results list --order outlier` walks this index (ties bytewise, as the listing sorts).
CREATE INDEX ix_results_outlier
    ON results (outlier_score DESC NULLS LAST, source COLLATE "C", source_id COLLATE "C");
CREATE INDEX ix_results_channel ON results (channel_id) WHERE channel_id IS NOT NULL;

CREATE TABLE channel_baselines (
    channel_id   TEXT   NOT NULL,
    format       TEXT   NOT NULL CHECK (format IN ('long', 'short', 'stream')),
    basis        TEXT   NOT NULL CHECK (basis IN ('age_7d', 'age_30d', 'total')),
    median_views DOUBLE PRECISION CHECK (median_views IS NULL OR median_views > 0),
    sample       BIGINT NOT NULL CHECK (sample >= 0),
    computed_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, format, basis)
);
