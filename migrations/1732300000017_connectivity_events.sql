-- Up Migration
-- Presence as a resource (issue 20): every connect and disconnect with its reason, kept for
-- TETHER_CONNECTIVITY_RETENTION_DAYS; the latest one is copied onto the device row (last_event)
-- so every read of a device carries it without a join.
CREATE TABLE connectivity_events (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_id      text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  event_time     timestamptz NOT NULL,
  connected      boolean NOT NULL,
  reason         text NOT NULL,
  remote_address text NOT NULL DEFAULT ''
);
-- ListConnectivityEvents pages newest first per device; retention deletes by time.
CREATE INDEX connectivity_events_device ON connectivity_events (device_id, id DESC);
CREATE INDEX connectivity_events_time ON connectivity_events (event_time);

ALTER TABLE devices
  -- When the device last sent a message of its own (heartbeats and keepalives move only last_seen_time).
  ADD COLUMN last_uplink_time timestamptz,
  -- Online, but nothing of its own for TETHER_SILENT_AFTER_S (set by the silence sweep).
  ADD COLUMN silent boolean NOT NULL DEFAULT false,
  -- The latest connectivity event: {"id", "connected", "reason", "address", "time"}.
  ADD COLUMN last_event jsonb;
UPDATE devices SET last_uplink_time = last_seen_time;
-- The silence sweep looks only at online devices not yet silent.
CREATE INDEX devices_silence ON devices (last_uplink_time) WHERE online AND NOT silent;

-- Down Migration
DROP INDEX devices_silence;
ALTER TABLE devices DROP COLUMN last_event, DROP COLUMN silent, DROP COLUMN last_uplink_time;
DROP TABLE connectivity_events;
