-- Up Migration
-- The audit log (issue 20 §4): one row per mutating call, rule or job firing and certificate
-- operation, inserted in the same transaction as the change (a failed call's row after it failed).
-- `device_id` is the device the resource lies under (`devices/{device}/…`), copied out of
-- `resource` so a user's view (events on devices they may see) is one indexed join.
-- No value of any field is stored: only the paths of the changed fields.
CREATE TABLE audit_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  create_time timestamptz NOT NULL,
  principal text NOT NULL,
  credential text NOT NULL,
  certificate_serial text NOT NULL DEFAULT '',
  method text NOT NULL,
  resource text NOT NULL DEFAULT '',
  device_id text,
  request_id text NOT NULL DEFAULT '',
  status_code smallint NOT NULL,
  field_paths text[] NOT NULL DEFAULT '{}'
);
-- Retention deletes by time; every list reads newest first by id.
CREATE INDEX audit_events_create_time ON audit_events (create_time);
CREATE INDEX audit_events_principal ON audit_events (principal, id DESC);
CREATE INDEX audit_events_resource ON audit_events (resource text_pattern_ops, id DESC);
CREATE INDEX audit_events_device ON audit_events (device_id, id DESC) WHERE device_id IS NOT NULL;

-- Who created each task (Task.creator). Tasks from before this column: a job's execution names its
-- job, a rule's task its rule (from its deterministic request id `rule:{rule}:…`); tasks created
-- through CreateTask keep '' (who made them was not recorded).
ALTER TABLE tasks ADD COLUMN creator text NOT NULL DEFAULT '';
UPDATE tasks SET creator = 'jobs/' || job_id WHERE job_id IS NOT NULL;
UPDATE tasks SET creator = 'rules/' || split_part(request_id, ':', 2) WHERE job_id IS NULL AND request_id LIKE 'rule:%';

-- Down Migration
ALTER TABLE tasks DROP COLUMN creator;
DROP TABLE audit_events;
