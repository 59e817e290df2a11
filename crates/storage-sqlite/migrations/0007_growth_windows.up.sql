-- PrismQ schema v7: growth over real windows (see docs/tracking.md).
--
--   results.growth_<w>       views gained per hour over the window <w> (1h, 24h, 7d, 30d)
--                            ending at the item's latest observation, from its metric
--                            history; NULL when the history spans less than
--                            [ideas] growth_min_span_minutes of the window.
--   results.growth_<w>_span  how many seconds of the window the history covers.
-- Rows saved before this version get their growth at their next save, or all at once with
-- `prismq results rescore`.
ALTER TABLE results ADD COLUMN growth_1h REAL;
ALTER TABLE results ADD COLUMN growth_1h_span INTEGER;
ALTER TABLE results ADD COLUMN growth_24h REAL;
ALTER TABLE results ADD COLUMN growth_24h_span INTEGER;
ALTER TABLE results ADD COLUMN growth_7d REAL;
ALTER TABLE results ADD COLUMN growth_7d_span INTEGER;
ALTER TABLE results ADD COLUMN growth_30d REAL;
ALTER TABLE results ADD COLUMN growth_30d_span INTEGER;
-- `results list --order growth --window <w>`: walked in this order, so a page never sorts
-- the table (NULL rates sort last in a descending SQLite index).
CREATE INDEX ix_results_growth_1h ON results (growth_1h DESC, source, source_id);
CREATE INDEX ix_results_growth_24h ON results (growth_24h DESC, source, source_id);
CREATE INDEX ix_results_growth_7d ON results (growth_7d DESC, source, source_id);
CREATE INDEX ix_results_growth_30d ON results (growth_30d DESC, source, source_id);
-- `--new-since` (first seen) and `--task`.
CREATE INDEX ix_results_first_seen ON results (first_seen_at);
CREATE INDEX ix_results_task ON results (last_task_id) WHERE last_task_id IS NOT NULL;
