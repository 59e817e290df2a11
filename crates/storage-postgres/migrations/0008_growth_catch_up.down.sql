-- Reverts schema v8 (PostgreSQL): the growth already computed stays (v7 has the same columns).
DROP TABLE growth_pending;
