-- PrismQ schema v4 (PostgreSQL): schedules (issue 16). The same table as SQLite's schema
-- v5: exactly one of every_secs and cron is set; ix_schedules_due serves the workers' one
-- read per poll, the unpaused schedules whose next slot has come, earliest first.
CREATE TABLE schedules (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
    params      JSONB   NOT NULL CHECK (jsonb_typeof(params) = 'object'),
    priority    BIGINT  NOT NULL CHECK (priority BETWEEN 1 AND 10),
    every_secs  BIGINT  CHECK (every_secs >= 60),
    cron        TEXT,
    time_zone   TEXT    NOT NULL,
    jitter_secs BIGINT  NOT NULL DEFAULT 0 CHECK (jitter_secs >= 0),
    paused      BOOLEAN NOT NULL DEFAULT FALSE,
    next_slot   BIGINT  NOT NULL,
    last_slot   BIGINT,
    last_task   BIGINT,
    created_at  BIGINT  NOT NULL,
    CHECK ((every_secs IS NULL) <> (cron IS NULL))
);
CREATE INDEX ix_schedules_due ON schedules (next_slot) WHERE NOT paused;
