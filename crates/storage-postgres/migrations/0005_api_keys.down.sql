-- Drops the API keys (every key must be created again after an upgrade).
DROP INDEX ix_api_keys_prefix;
DROP TABLE api_keys;
