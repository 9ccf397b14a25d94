-- Up Migration
-- Task priorities for rules and jobs (issue 18): the priority each task a rule fires, or each
-- execution of a job, is created with (0 lowest, 9 highest; 5 as for a task created without one).
-- Existing rules and jobs take the default, which is what their tasks had until now.
ALTER TABLE rules ADD COLUMN task_priority smallint NOT NULL DEFAULT 5 CHECK (task_priority BETWEEN 0 AND 9);
ALTER TABLE jobs ADD COLUMN task_priority smallint NOT NULL DEFAULT 5 CHECK (task_priority BETWEEN 0 AND 9);

-- Down Migration
ALTER TABLE jobs DROP COLUMN task_priority;
ALTER TABLE rules DROP COLUMN task_priority;
