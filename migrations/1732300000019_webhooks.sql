-- Up Migration
-- Webhooks (issue 20 §3). Subscriptions of HTTPS endpoints to fleet events, and the outbox that
-- delivers them: an event row is written by a trigger in the same transaction as the change
-- (tasks, devices, jobs), only while an enabled subscription for its type exists; the relay fans
-- each event out to the matching subscriptions (webhook_deliveries) and sends from there.
CREATE TABLE webhooks (
  id                          text PRIMARY KEY,          -- {webhook} of webhooks/{webhook}
  uid                         uuid NOT NULL UNIQUE,
  display_name                text NOT NULL DEFAULT '',
  url                         text NOT NULL,
  event_types                 text[] NOT NULL,
  device_filter               text NOT NULL DEFAULT '',
  payload_format              text NOT NULL DEFAULT 'json',  -- json | binary
  disabled                    boolean NOT NULL DEFAULT false,
  secret                      text NOT NULL,             -- signs requests: Tether needs it in the clear
  previous_secret             text,                      -- still signs until previous_secret_expire_time
  previous_secret_expire_time timestamptz,
  create_time                 timestamptz NOT NULL,
  update_time                 timestamptz NOT NULL,
  revision                    integer NOT NULL DEFAULT 1
);

-- One row per change. `resource` is the changed row (to_jsonb), read back with
-- jsonb_populate_record so the relay maps it with the store's own row mappers; `payload` is the
-- tether.v1.Event as protobuf JSON, built once at fan-out.
CREATE TABLE webhook_events (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq        bigserial NOT NULL,
  type       text NOT NULL,
  device_id  text,
  time       timestamptz NOT NULL,
  resource   jsonb NOT NULL,
  payload    jsonb,
  fanned_out boolean NOT NULL DEFAULT false
);
CREATE INDEX webhook_events_todo ON webhook_events (seq) WHERE NOT fanned_out;

-- One row per (event, subscription). state: PENDING | DELIVERED | FAILED (retrying) | DEAD.
-- A sender claims a due row by setting lease_until (FOR UPDATE SKIP LOCKED in the claim), so two
-- replicas never send the same delivery at the same time.
CREATE TABLE webhook_deliveries (
  id                uuid PRIMARY KEY,
  webhook_id        text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event_id          uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
  event_type        text NOT NULL,
  device_id         text,
  state             text NOT NULL DEFAULT 'PENDING',
  attempt_count     integer NOT NULL DEFAULT 0,
  last_status       integer NOT NULL DEFAULT 0,
  last_error        text NOT NULL DEFAULT '',
  next_attempt_time timestamptz NOT NULL,
  lease_until       timestamptz,
  create_time       timestamptz NOT NULL,
  end_time          timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_time) WHERE state IN ('PENDING', 'FAILED');
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (webhook_id, create_time DESC, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- Whether an enabled subscription wants this type: the triggers' first and, with none, only query.
CREATE FUNCTION webhook_wanted(event_type text) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM webhooks WHERE NOT disabled AND event_type = ANY (event_types))
$$;

-- Task state changes, set-based: one call per statement (group commits update hundreds of rows
-- in one UPDATE), reading the statement's transition tables. A task's first state counts.
CREATE FUNCTION webhook_task_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT webhook_wanted('task.state_changed') THEN RETURN NULL; END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO webhook_events (type, device_id, time, resource)
    SELECT 'task.state_changed', n.device_id, n.update_time, to_jsonb(n) FROM webhook_new n;
  ELSE
    INSERT INTO webhook_events (type, device_id, time, resource)
    SELECT 'task.state_changed', n.device_id, n.update_time, to_jsonb(n)
    FROM webhook_new n JOIN webhook_old o ON o.id = n.id WHERE n.state IS DISTINCT FROM o.state;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER tasks_webhook_insert AFTER INSERT ON tasks REFERENCING NEW TABLE AS webhook_new
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_task_events();
CREATE TRIGGER tasks_webhook_update AFTER UPDATE ON tasks REFERENCING OLD TABLE AS webhook_old NEW TABLE AS webhook_new
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_task_events();

-- Registry changes, per row: rare, and the WHEN clause keeps presence writes (last_seen_time,
-- online) from calling the function at all.
CREATE FUNCTION webhook_device_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  t text := CASE TG_OP WHEN 'INSERT' THEN 'device.created' WHEN 'UPDATE' THEN 'device.updated' ELSE 'device.deleted' END;
  r devices;
BEGIN
  IF NOT webhook_wanted(t) THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  INSERT INTO webhook_events (type, device_id, time, resource)
  VALUES (t, r.id, CASE WHEN TG_OP = 'DELETE' THEN now() ELSE r.update_time END, to_jsonb(r));
  RETURN NULL;
END $$;
CREATE TRIGGER devices_webhook_change AFTER INSERT OR DELETE ON devices
  FOR EACH ROW EXECUTE FUNCTION webhook_device_events();
CREATE TRIGGER devices_webhook_update AFTER UPDATE ON devices
  FOR EACH ROW WHEN (OLD.revision IS DISTINCT FROM NEW.revision OR OLD.reported_version IS DISTINCT FROM NEW.reported_version)
  EXECUTE FUNCTION webhook_device_events();

-- Job progress: a rollout step (executions created, targets skipped) or a state change.
CREATE FUNCTION webhook_job_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT webhook_wanted('job.progress') THEN RETURN NULL; END IF;
  INSERT INTO webhook_events (type, device_id, time, resource)
  VALUES ('job.progress', NULL, NEW.update_time, jsonb_build_object('id', NEW.id));
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_webhook_progress AFTER UPDATE ON jobs
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.dispatched_count IS DISTINCT FROM NEW.dispatched_count
                     OR OLD.skipped_count IS DISTINCT FROM NEW.skipped_count)
  EXECUTE FUNCTION webhook_job_events();

-- Down Migration
DROP TRIGGER jobs_webhook_progress ON jobs;
DROP TRIGGER devices_webhook_update ON devices;
DROP TRIGGER devices_webhook_change ON devices;
DROP TRIGGER tasks_webhook_update ON tasks;
DROP TRIGGER tasks_webhook_insert ON tasks;
DROP FUNCTION webhook_job_events();
DROP FUNCTION webhook_device_events();
DROP FUNCTION webhook_task_events();
DROP FUNCTION webhook_wanted(text);
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhooks;
