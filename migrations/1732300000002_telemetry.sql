-- Up Migration
-- Samples, range-partitioned by day on `time`. Partitions are created ahead by the writer and
-- dropped by retention. The primary key makes a redelivered batch harmless (ON CONFLICT DO NOTHING):
-- a device cannot have two values of one metric with the same tags at the same instant.
CREATE TABLE telemetry (
  device_id text NOT NULL,
  metric    text NOT NULL,
  time      timestamptz NOT NULL,
  tags_key  text NOT NULL DEFAULT '',          -- canonical `k=v,k=v` of tags, part of the identity
  value     double precision NOT NULL,
  tags      jsonb,
  PRIMARY KEY (device_id, metric, time, tags_key)
) PARTITION BY RANGE (time);

-- The latest value per device and metric, kept by the writer so "latest" never scans partitions.
CREATE TABLE telemetry_latest (
  device_id text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  metric    text NOT NULL,
  time      timestamptz NOT NULL,
  value     double precision NOT NULL,
  tags      jsonb,
  PRIMARY KEY (device_id, metric)
);

-- Down Migration
DROP TABLE telemetry_latest;
DROP TABLE telemetry;
