-- Up Migration
-- Tasks are the outbox: a task row in state QUEUED is a committed intent to send, written in the same
-- transaction that accepts the request; the dispatcher sends from here and marks rows SENT.
ALTER TABLE devices
  ADD COLUMN delivery_mode text NOT NULL DEFAULT 'burst',      -- burst | one_until_acknowledged | one_until_completed
  ADD COLUMN max_pending_tasks integer NOT NULL DEFAULT 100;

CREATE TABLE tasks (
  id                   uuid PRIMARY KEY,
  device_id            text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  seq                  bigserial NOT NULL,                     -- delivery order within a device
  request_id           text,
  request_hash         text,
  command              jsonb NOT NULL,                         -- tether.v1.Command as protobuf JSON
  state                text NOT NULL,                          -- QUEUED, SENT, ... (Task.State without prefix)
  state_reason         text NOT NULL DEFAULT '',
  attempt              integer NOT NULL DEFAULT 0,
  max_attempts         integer NOT NULL,
  expire_time          timestamptz NOT NULL,
  execution_timeout_ms integer NOT NULL,
  progress_percent     integer,
  progress_message     text,
  result               jsonb,
  error                jsonb,
  create_time          timestamptz NOT NULL,
  update_time          timestamptz NOT NULL,
  send_time            timestamptz,
  deliver_time         timestamptz,
  end_time             timestamptz,
  next_attempt_time    timestamptz,                            -- QUEUED: not before (retry backoff)
  deadline_time        timestamptz,                            -- DELIVERED/RUNNING: execution times out
  cancel_pending       boolean NOT NULL DEFAULT false,         -- outbox: a CancelTask must reach the device
  late_event_count     integer NOT NULL DEFAULT 0,
  revision             integer NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX tasks_request_id ON tasks (device_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX tasks_device_seq ON tasks (device_id, seq);
CREATE INDEX tasks_seq ON tasks (seq);
CREATE INDEX tasks_open ON tasks (device_id, seq) WHERE state IN ('QUEUED', 'SENT', 'DELIVERED', 'RUNNING');
CREATE INDEX tasks_expiry ON tasks (expire_time) WHERE state IN ('QUEUED', 'SENT');
CREATE INDEX tasks_deadline ON tasks (deadline_time) WHERE state IN ('DELIVERED', 'RUNNING');
CREATE INDEX tasks_cancel_pending ON tasks (device_id) WHERE cancel_pending;

-- Events that arrived late or twice: recorded for audit, never applied.
CREATE TABLE task_late_events (
  id          bigserial PRIMARY KEY,
  task_id     uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  time        timestamptz NOT NULL,
  event       text NOT NULL,
  task_state  text NOT NULL,
  detail      text NOT NULL DEFAULT ''
);
CREATE INDEX task_late_events_task ON task_late_events (task_id);

-- Down Migration
DROP TABLE task_late_events;
DROP TABLE tasks;
ALTER TABLE devices DROP COLUMN delivery_mode, DROP COLUMN max_pending_tasks;
