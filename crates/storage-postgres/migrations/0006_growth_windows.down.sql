-- Drops the growth windows (recomputed at the next save after a later upgrade).
DROP INDEX ix_results_task;
DROP INDEX ix_results_first_seen;
DROP INDEX ix_results_growth_30d;
DROP INDEX ix_results_growth_7d;
DROP INDEX ix_results_growth_24h;
DROP INDEX ix_results_growth_1h;
ALTER TABLE results
    DROP COLUMN growth_30d_span, DROP COLUMN growth_30d,
    DROP COLUMN growth_7d_span, DROP COLUMN growth_7d,
    DROP COLUMN growth_24h_span, DROP COLUMN growth_24h,
    DROP COLUMN growth_1h_span, DROP COLUMN growth_1h;
