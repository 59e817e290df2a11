-- PrismQ schema v10 (PostgreSQL): regions stored as given normalised. Until this version an
-- enqueue stored a task's compatibility as the client sent it, so a region that validation
-- accepts with other case or spaces around it (' gb') reached the generated `region` column
-- as given, and no worker, which claims with its upper-case region, could take the task.
-- Enqueues now store the normalised code; this brings older rows to it: the two letters,
-- upper case. Validation let in only two ASCII letters with whitespace around them, so the
-- letters are the region whatever the whitespace was.
UPDATE task_queue
SET compatibility = jsonb_set(compatibility, '{region}',
        to_jsonb(upper(substring(compatibility ->> 'region' FROM '[A-Za-z]{2}'))))
WHERE compatibility ->> 'region' !~ '^[A-Z]{2}$';
