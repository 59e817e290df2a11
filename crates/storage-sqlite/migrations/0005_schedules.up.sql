-- Schedules (issue 16): a task enqueued on a timetable. Exactly one of every_secs and cron
-- is set. ix_schedules_due serves the workers' one read per poll: the unpaused schedules
-- whose next slot has come, earliest first.
CREATE TABLE schedules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    params      TEXT    NOT NULL,
    priority    INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 10),
    every_secs  INTEGER CHECK (every_secs >= 60),
    cron        TEXT,
    time_zone   TEXT    NOT NULL,
    jitter_secs INTEGER NOT NULL DEFAULT 0 CHECK (jitter_secs >= 0),
    paused      INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    next_slot   INTEGER NOT NULL,
    last_slot   INTEGER,
    last_task   INTEGER,
    created_at  INTEGER NOT NULL,
    CHECK ((every_secs IS NULL) <> (cron IS NULL))
);
CREATE INDEX ix_schedules_due ON schedules (next_slot) WHERE paused = 0;
