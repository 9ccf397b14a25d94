-- Up Migration
-- Semantic Versioning 2.0.0 precedence for device filters (`firmware_version < "1.10.0"`): -1, 0 or 1,
-- or NULL when either side is not a semantic version. The same rules as compareSemver in
-- src/core/devices/filter/semver.ts, which evaluates filters in memory; the two must agree.
-- Build metadata is ignored; a prerelease is below its release; numeric identifiers compare as
-- numbers (of any size) and below alphanumeric ones, which compare in byte order.
CREATE FUNCTION tether_semver_cmp(a text, b text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  re constant text := '^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)'
    || '(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?'
    || '(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$';
  x text[];
  y text[];
  px text[];
  py text[];
  p text;
  q text;
BEGIN
  x := regexp_match(a, re);
  y := regexp_match(b, re);
  IF x IS NULL OR y IS NULL THEN RETURN NULL; END IF;
  FOR i IN 1..3 LOOP
    IF x[i]::numeric <> y[i]::numeric THEN RETURN CASE WHEN x[i]::numeric < y[i]::numeric THEN -1 ELSE 1 END; END IF;
  END LOOP;
  IF x[4] IS NULL OR y[4] IS NULL THEN
    RETURN CASE WHEN x[4] IS NULL AND y[4] IS NULL THEN 0 WHEN x[4] IS NULL THEN 1 ELSE -1 END;
  END IF;
  px := string_to_array(x[4], '.');
  py := string_to_array(y[4], '.');
  FOR i IN 1..least(cardinality(px), cardinality(py)) LOOP
    p := px[i];
    q := py[i];
    IF p ~ '^[0-9]+$' AND q ~ '^[0-9]+$' THEN
      IF p::numeric <> q::numeric THEN RETURN CASE WHEN p::numeric < q::numeric THEN -1 ELSE 1 END; END IF;
    ELSIF p ~ '^[0-9]+$' THEN
      RETURN -1;
    ELSIF q ~ '^[0-9]+$' THEN
      RETURN 1;
    ELSIF p <> q THEN
      RETURN CASE WHEN p COLLATE "C" < q COLLATE "C" THEN -1 ELSE 1 END;
    END IF;
  END LOOP;
  RETURN sign(cardinality(px) - cardinality(py))::integer;
END $$;

-- Down Migration
DROP FUNCTION tether_semver_cmp(text, text);
