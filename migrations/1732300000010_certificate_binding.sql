-- Up Migration
-- A device certificate belongs to one incarnation of a device: the uid it was issued for. A device
-- re-created under the same id gets a new uid, so it never inherits an earlier key.
ALTER TABLE certificates ADD COLUMN device_uid uuid;
-- Users' client certificates (the bootstrap `admin` certificate of the dev PKI): listed and revocable like any other.
ALTER TABLE certificates ADD COLUMN user_name text;
ALTER TABLE certificates DROP CONSTRAINT certificates_kind_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_kind_check CHECK (kind IN ('device', 'claim', 'user'));
ALTER TABLE certificates ADD CONSTRAINT certificates_user_check CHECK ((kind = 'user') = (user_name IS NOT NULL));

-- Backfill: a certificate created after its device belongs to that device's incarnation; one created
-- before it belonged to a deleted predecessor, as does one of a device that no longer exists.
UPDATE certificates c SET device_uid = d.uid
FROM devices d
WHERE c.kind = 'device' AND c.device_id = d.id AND c.create_time >= d.create_time;

-- Every deletion of a device (DeleteDevice): certificates issued outside Tether (offline, by the
-- same CA) for that id before it are refused, so they cannot speak for a re-created device.
CREATE TABLE device_deletions (
  device_id   text NOT NULL,
  device_uid  uuid,                                  -- NULL for deletions inferred by this migration
  delete_time timestamptz NOT NULL,
  PRIMARY KEY (device_id, delete_time)
);
-- Deletions the old schema did not record: a device that is gone was deleted before now; one that
-- was re-created was deleted before its current incarnation was created.
INSERT INTO device_deletions (device_id, delete_time)
SELECT c.device_id, COALESCE(min(d.create_time), now())
FROM certificates c LEFT JOIN devices d ON d.id = c.device_id
WHERE c.kind = 'device' AND c.device_uid IS NULL
GROUP BY c.device_id
ON CONFLICT DO NOTHING;
-- A predecessor's certificates that are still active are revoked (5 = cessationOfOperation), as
-- DeleteDevice now does; the CRL is rewritten from this table at start.
UPDATE certificates SET revoke_time = now(), revocation_reason = 5
WHERE kind = 'device' AND device_uid IS NULL AND revoke_time IS NULL;
-- From now on a device certificate is bound to an incarnation (or revoked with its predecessor).
ALTER TABLE certificates ADD CONSTRAINT certificates_device_uid_check CHECK (kind <> 'device' OR device_uid IS NOT NULL OR revoke_time IS NOT NULL);
CREATE INDEX certificates_device_uid ON certificates (device_uid, create_time, serial_number) WHERE device_uid IS NOT NULL;
CREATE INDEX certificates_user ON certificates (user_name, create_time, serial_number) WHERE kind = 'user';

-- Down Migration
DROP INDEX certificates_user;
DROP INDEX certificates_device_uid;
ALTER TABLE certificates DROP CONSTRAINT certificates_device_uid_check;
DROP TABLE device_deletions;
DELETE FROM certificates WHERE kind = 'user';
ALTER TABLE certificates DROP CONSTRAINT certificates_user_check;
ALTER TABLE certificates DROP CONSTRAINT certificates_kind_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_kind_check CHECK (kind IN ('device', 'claim'));
ALTER TABLE certificates DROP COLUMN user_name;
ALTER TABLE certificates DROP COLUMN device_uid;
