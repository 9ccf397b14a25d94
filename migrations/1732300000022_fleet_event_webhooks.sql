-- Up Migration
-- Connectivity changes and alarm notifications reach webhooks through the same outbox as task,
-- device and job events (migration 1732300000019): a trigger writes the event row in the same
-- transaction as the change, only while an enabled subscription wants its type.

-- One call per statement: setAllOffline marks a whole fleet offline in one INSERT.
CREATE FUNCTION webhook_connectivity_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT webhook_wanted('device.connectivity') THEN RETURN NULL; END IF;
  INSERT INTO webhook_events (type, device_id, time, resource)
  SELECT 'device.connectivity', n.device_id, n.event_time, to_jsonb(n) FROM webhook_new n;
  RETURN NULL;
END $$;
CREATE TRIGGER connectivity_events_webhook AFTER INSERT ON connectivity_events REFERENCING NEW TABLE AS webhook_new
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_connectivity_events();

-- alarm_notifications holds exactly the notifications the rule's policy allows, once each (its
-- unique key): each new row is one alarm.* event. Its `alarm` column is already the
-- tether.v1.Alarm as protobuf JSON, after the change.
CREATE FUNCTION webhook_alarm_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_events (type, device_id, time, resource)
  SELECT n.type, substr(n.alarm->>'device', length('devices/') + 1), n.create_time, n.alarm
  FROM webhook_new n WHERE webhook_wanted(n.type);
  RETURN NULL;
END $$;
CREATE TRIGGER alarm_notifications_webhook AFTER INSERT ON alarm_notifications REFERENCING NEW TABLE AS webhook_new
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_alarm_events();

-- Down Migration
DROP TRIGGER alarm_notifications_webhook ON alarm_notifications;
DROP TRIGGER connectivity_events_webhook ON connectivity_events;
DROP FUNCTION webhook_alarm_events();
DROP FUNCTION webhook_connectivity_events();
