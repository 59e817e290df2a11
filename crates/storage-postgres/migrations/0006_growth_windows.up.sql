-- PrismQ schema v6 (PostgreSQL): growth over real windows. The same columns as SQLite's
-- schema v7; see its migration and docs/tracking.md for meaning.
ALTER TABLE results
    ADD COLUMN growth_1h DOUBLE PRECISION, ADD COLUMN growth_1h_span BIGINT,
    ADD COLUMN growth_24h DOUBLE PRECISION, ADD COLUMN growth_24h_span BIGINT,
    ADD COLUMN growth_7d DOUBLE PRECISION, ADD COLUMN growth_7d_span BIGINT,
    ADD COLUMN growth_30d DOUBLE PRECISION, ADD COLUMN growth_30d_span BIGINT;
-- `results list --order growth --window <w>` walks these (ties bytewise, as the listing sorts).
CREATE INDEX ix_results_growth_1h
    ON results (growth_1h DESC NULLS LAST, source COLLATE "C", source_id COLLATE "C");
CREATE INDEX ix_results_growth_24h
    ON results (growth_24h DESC NULLS LAST, source COLLATE "C", source_id COLLATE "C");
CREATE INDEX ix_results_growth_7d
    ON results (growth_7d DESC NULLS LAST, source COLLATE "C", source_id COLLATE "C");
CREATE INDEX ix_results_growth_30d
    ON results (growth_30d DESC NULLS LAST, source COLLATE "C", source_id COLLATE "C");
-- `--new-since` (first seen) and `--task`.
CREATE INDEX ix_results_first_seen ON results (first_seen_at);
CREATE INDEX ix_results_task ON results (last_task_id) WHERE last_task_id IS NOT NULL;
