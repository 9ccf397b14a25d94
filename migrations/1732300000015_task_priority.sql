-- Up Migration
-- Task priorities (issue 18): a device's queue is served highest priority first, oldest first
-- within a priority. send_seq is the order tasks went out in (from one sequence, so across
-- replicas too): a task already sent keeps its place ahead of anything sent after it, whatever
-- their priorities, when tasks are sent again on reconnect.
ALTER TABLE tasks
  ADD COLUMN priority smallint NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 9),
  ADD COLUMN send_seq bigint;
CREATE SEQUENCE task_send_seq;
CREATE INDEX tasks_queue ON tasks (device_id, priority DESC, seq) WHERE state = 'QUEUED';

-- Down Migration
DROP INDEX tasks_queue;
DROP SEQUENCE task_send_seq;
ALTER TABLE tasks DROP COLUMN send_seq, DROP COLUMN priority;
