-- PrismQ schema v2 (PostgreSQL): lapsed leases counted apart from attempts, and what each
-- worker holds back. The same columns as SQLite's schema v3; see its migration for meaning.
ALTER TABLE task_queue ADD COLUMN lapses BIGINT NOT NULL DEFAULT 0 CHECK (lapses >= 0);
ALTER TABLE workers ADD COLUMN held JSONB NOT NULL DEFAULT '[]';
