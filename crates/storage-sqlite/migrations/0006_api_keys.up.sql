-- API keys for `prismq serve`: only a SHA-256 hash of each secret is stored, with its
-- display prefix (looked up first, then the hash compared in constant time).
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    key_hash     TEXT    NOT NULL UNIQUE,
    scopes       TEXT    NOT NULL,
    rate_limit   INTEGER NOT NULL CHECK (rate_limit > 0),
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX ix_api_keys_prefix ON api_keys (prefix);
