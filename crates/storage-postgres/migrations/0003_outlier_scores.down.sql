-- Drops the outlier scores and the channel baselines.
DROP TABLE channel_baselines;
DROP INDEX ix_results_recent_30d;
DROP INDEX ix_results_recent_7d;
DROP INDEX ix_results_recent;
DROP INDEX ix_results_channel;
DROP INDEX ix_results_outlier;
ALTER TABLE results DROP COLUMN views_30d;
ALTER TABLE results DROP COLUMN views_7d;
ALTER TABLE results DROP COLUMN outlier_views;
ALTER TABLE results DROP COLUMN outlier_sample;
ALTER TABLE results DROP COLUMN outlier_baseline;
ALTER TABLE results DROP COLUMN outlier_basis;
ALTER TABLE results DROP COLUMN outlier_score;
ALTER TABLE results DROP COLUMN video_format;
