-- Up Migration
-- Alarms (issue 20): an alarm rule is a rule with `alarm` set (its AlarmSpec as JSON); NULL for
-- rules that create tasks.
ALTER TABLE rules ADD COLUMN alarm jsonb;

-- One row per episode of an alarm rule's condition on one device. Exactly once across replicas:
-- the episode's start (the observation time of the first observation meeting the condition, or
-- for `online` the device's last_seen_time) is the same on every replica seeing the same stream,
-- so a raise is an INSERT ... ON CONFLICT DO NOTHING on (rule, device, start), and the partial
-- index below allows one ACTIVE alarm per (rule, device) whatever start a replica computed.
CREATE TABLE alarms (
  id                  uuid PRIMARY KEY,
  rule_id             text NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
  device_id           text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  severity            smallint NOT NULL,                 -- tether.v1.AlarmSeverity number
  state               text NOT NULL CHECK (state IN ('ACTIVE', 'CLEARED')),
  acknowledged        boolean NOT NULL DEFAULT false,
  metric              text NOT NULL,
  description         text NOT NULL DEFAULT '',
  start_time          timestamptz NOT NULL,
  raise_time          timestamptz NOT NULL,
  raise_value         double precision NOT NULL,
  clear_time          timestamptz,
  clear_value         double precision,
  acknowledger        text,
  acknowledge_time    timestamptz,
  acknowledge_comment text NOT NULL DEFAULT '',
  -- The notification policy the alarm was raised with (the rule's at that moment).
  notify_on_clear     boolean NOT NULL,
  escalate_after_ms   bigint,
  escalate_time       timestamptz,
  create_time         timestamptz NOT NULL,
  update_time         timestamptz NOT NULL,
  revision            bigint NOT NULL DEFAULT 1,
  UNIQUE (rule_id, device_id, start_time)
);
CREATE UNIQUE INDEX alarms_one_active ON alarms (rule_id, device_id) WHERE state = 'ACTIVE';
CREATE INDEX alarms_newest ON alarms (raise_time DESC, id DESC);
CREATE INDEX alarms_device ON alarms (device_id, raise_time DESC);
-- What the escalation timer scans.
CREATE INDEX alarms_to_escalate ON alarms (create_time)
  WHERE state = 'ACTIVE' AND NOT acknowledged AND escalate_time IS NULL AND escalate_after_ms IS NOT NULL;

-- Notifications to deliver, written in the same transaction as the alarm change. The unique key
-- makes "one notification per raise, clear, acknowledgement and escalation" hold in the database.
-- (The webhook outbox takes these over; until then they are only recorded.)
CREATE TABLE alarm_notifications (
  id          bigserial PRIMARY KEY,
  alarm_id    uuid NOT NULL,
  type        text NOT NULL,                             -- alarm.raised | alarm.cleared | alarm.acknowledged | alarm.escalated
  alarm       jsonb NOT NULL,                            -- tether.v1.Alarm as protobuf JSON, after the change
  create_time timestamptz NOT NULL,
  UNIQUE (alarm_id, type)
);

-- Down Migration
DROP TABLE alarm_notifications;
DROP TABLE alarms;
ALTER TABLE rules DROP COLUMN alarm;
