-- API keys for `prismq serve`: only a SHA-256 hash of each secret is stored, with its
-- display prefix (looked up first, then the hash compared in constant time).
CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT     NOT NULL,
    prefix       TEXT     NOT NULL,
    key_hash     TEXT     NOT NULL UNIQUE,
    scopes       TEXT     NOT NULL,
    rate_limit   BIGINT   NOT NULL CHECK (rate_limit > 0),
    active       BOOLEAN  NOT NULL DEFAULT TRUE,
    created_at   BIGINT   NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX ix_api_keys_prefix ON api_keys (prefix);
