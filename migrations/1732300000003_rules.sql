-- Up Migration
-- Rules create tasks on a schedule or on a device condition. The trigger, target and command are
-- stored as JSON (readable in psql); what the scheduler queries has its own columns.
CREATE TABLE rules (
  id              text PRIMARY KEY,                 -- {rule} of rules/{rule}
  uid             uuid NOT NULL UNIQUE,             -- never reused; part of the tasks' request ids
  display_name    text NOT NULL DEFAULT '',
  trigger_kind    text NOT NULL,                    -- cron | one_shot | event
  trigger         jsonb NOT NULL,                   -- {"cron":{...}} | {"oneShotTime":"..."} | {"event":{...}}
  start_time      timestamptz,
  end_time        timestamptz,
  target          jsonb NOT NULL,                   -- {"device":"id"} | {"selector":{"kind":"led","labels":{...}}}
  command         jsonb NOT NULL,                   -- tether.v1.Command as protobuf JSON
  task_ttl_ms     bigint NOT NULL,
  misfire_policy  text NOT NULL,                    -- skip | fire_once
  paused          boolean NOT NULL DEFAULT false,
  next_fire_time  timestamptz,                      -- NULL: will not fire again on schedule
  last_fire_time  timestamptz,
  create_time     timestamptz NOT NULL,
  update_time     timestamptz NOT NULL,
  revision        bigint NOT NULL DEFAULT 1
);
-- What the scheduler claims: due, unpaused, scheduled rules (FOR UPDATE SKIP LOCKED).
CREATE INDEX rules_due ON rules (next_fire_time) WHERE NOT paused AND next_fire_time IS NOT NULL;
CREATE INDEX rules_event ON rules (id) WHERE trigger_kind = 'event';

-- One row per occurrence: the unique key is the exactly-once claim. A scheduler fires an
-- occurrence by inserting this row (ON CONFLICT DO NOTHING) in the same transaction as its tasks.
CREATE TABLE rule_runs (
  id                 bigserial PRIMARY KEY,
  rule_id            text NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
  subject            text NOT NULL DEFAULT '',      -- '' for scheduled occurrences; the device id for event rules
  occurrence_time    timestamptz NOT NULL,
  fire_time          timestamptz NOT NULL,
  state              text NOT NULL,                 -- FIRED | PARTIAL | FAILED | NO_TARGETS | SKIPPED
  state_reason       text NOT NULL DEFAULT '',
  missed_occurrences integer NOT NULL DEFAULT 0,
  trigger_value      double precision,
  targets            jsonb NOT NULL DEFAULT '[]'::jsonb,  -- [{"device":"id","task":"uuid"|null,"error":"..."}]
  UNIQUE (rule_id, subject, occurrence_time)
);
CREATE INDEX rule_runs_rule ON rule_runs (rule_id, id);

-- Event rules: when each (rule, device) last fired, so the cooldown holds across restarts and
-- replicas (the fire transaction updates it only if the cooldown has passed).
CREATE TABLE rule_event_fires (
  rule_id        text NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
  device_id      text NOT NULL,
  last_fire_time timestamptz NOT NULL,
  PRIMARY KEY (rule_id, device_id)
);

-- Down Migration
DROP TABLE rule_event_fires;
DROP TABLE rule_runs;
DROP TABLE rules;
