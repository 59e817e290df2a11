-- Reverts schema v9: the growth already computed stays (v8 has the same columns).
DROP TABLE growth_pending;
