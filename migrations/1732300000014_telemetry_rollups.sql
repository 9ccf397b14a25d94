-- Up Migration
-- Rollups of the samples per device, metric and tags, in 1-minute and 1-hour buckets (issue 24,
-- item 4). The writer maintains them in the statement that inserts the samples, from the rows the
-- INSERT actually added (RETURNING), so a resent sample never counts twice. QueryTelemetry reads
-- them when the bucket width is a multiple of the tier; raw rows only fill the edges of the range.
-- MIN, MAX, SUM, COUNT and AVG (sum ÷ count) merge exactly; LAST keeps the latest sample per tags
-- and the query picks the latest across tags (ties broken by tags_key, as the raw query does).
-- Partitioned like `telemetry` so retention drops whole partitions: minute rollups by UTC day
-- (`telemetry_1m_YYYYMMDD`), hour rollups by UTC month (`telemetry_1h_YYYYMM`).
CREATE TABLE telemetry_1m (
  device_id  text NOT NULL,
  metric     text NOT NULL,
  bucket     timestamptz NOT NULL,              -- start of the minute (UTC)
  tags_key   text NOT NULL DEFAULT '',
  min        double precision NOT NULL,
  max        double precision NOT NULL,
  sum        double precision NOT NULL,
  count      bigint NOT NULL,
  last_time  timestamptz NOT NULL,              -- time of the latest sample in the bucket
  last_value double precision NOT NULL,
  PRIMARY KEY (device_id, metric, bucket, tags_key)
) PARTITION BY RANGE (bucket);

CREATE TABLE telemetry_1h (LIKE telemetry_1m INCLUDING DEFAULTS, PRIMARY KEY (device_id, metric, bucket, tags_key))
  PARTITION BY RANGE (bucket);

-- Backfill from the samples already stored: one partition per raw day (minute tier) and per month
-- (hour tier), then one aggregate pass each.
DO $$
DECLARE
  part record;
  d date;
  m date;
BEGIN
  FOR part IN
    SELECT c.relname AS name FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
    WHERE p.relname = 'telemetry' AND c.relname ~ '^telemetry_[0-9]{8}$'
  LOOP
    d := to_date(substr(part.name, 11), 'YYYYMMDD');
    m := date_trunc('month', d)::date;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF telemetry_1m FOR VALUES FROM (%L) TO (%L)',
      'telemetry_1m_' || to_char(d, 'YYYYMMDD'), d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF telemetry_1h FOR VALUES FROM (%L) TO (%L)',
      'telemetry_1h_' || to_char(m, 'YYYYMM'), m::text || ' 00:00:00+00', (m + interval '1 month')::date::text || ' 00:00:00+00');
  END LOOP;
END $$;

INSERT INTO telemetry_1m (device_id, metric, bucket, tags_key, min, max, sum, count, last_time, last_value)
SELECT device_id, metric, date_bin('1 minute', time, TIMESTAMPTZ '1970-01-01T00:00:00Z'), tags_key,
       min(value), max(value), sum(value), count(*), max(time), (array_agg(value ORDER BY time DESC))[1]
FROM telemetry GROUP BY 1, 2, 3, 4;

INSERT INTO telemetry_1h (device_id, metric, bucket, tags_key, min, max, sum, count, last_time, last_value)
SELECT device_id, metric, date_bin('1 hour', bucket, TIMESTAMPTZ '1970-01-01T00:00:00Z'), tags_key,
       min(min), max(max), sum(sum), sum(count), max(last_time), (array_agg(last_value ORDER BY last_time DESC))[1]
FROM telemetry_1m GROUP BY 1, 2, 3, 4;

-- Down Migration
DROP TABLE telemetry_1h;
DROP TABLE telemetry_1m;
