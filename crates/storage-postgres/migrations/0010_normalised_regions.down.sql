-- Reverts schema v10 (PostgreSQL): nothing to undo. The regions it normalised stay
-- normalised (how they were written is not kept, and the normalised form is the one every
-- version claims by).
SELECT 1;
