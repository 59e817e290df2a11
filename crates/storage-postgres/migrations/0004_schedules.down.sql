-- Drops the schedules; the tasks they enqueued stay in the queue.
DROP TABLE schedules;
