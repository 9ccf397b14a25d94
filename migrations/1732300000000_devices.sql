-- Up Migration
-- The device registry. Product state is stored as protobuf JSON so that it stays readable in psql,
-- and so that rules can later query reported values without decoding binary blobs.
CREATE TABLE devices (
  id               text PRIMARY KEY,              -- {device} of devices/{device}
  uid              uuid NOT NULL UNIQUE,          -- never reused, even after delete + re-create
  kind             text NOT NULL,                 -- 'led' | 'coffee_machine'
  display_name     text NOT NULL DEFAULT '',
  labels           jsonb NOT NULL DEFAULT '{}'::jsonb,
  owner            text NOT NULL DEFAULT '',
  firmware_version text NOT NULL DEFAULT '',
  desired          jsonb NOT NULL DEFAULT '{}'::jsonb,
  desired_version  bigint NOT NULL DEFAULT 0,
  reported         jsonb NOT NULL DEFAULT '{}'::jsonb,
  reported_version bigint NOT NULL DEFAULT 0,
  online           boolean NOT NULL DEFAULT false,
  last_seen_time   timestamptz,
  create_time      timestamptz NOT NULL,
  update_time      timestamptz NOT NULL,
  revision         bigint NOT NULL DEFAULT 1      -- optimistic concurrency; part of the etag
);
CREATE INDEX devices_kind_id ON devices (kind, id);
CREATE INDEX devices_labels ON devices USING gin (labels jsonb_path_ops);

-- Down Migration
DROP TABLE devices;
