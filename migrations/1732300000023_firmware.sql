-- Up Migration
-- Firmware images (issue 19): metadata, the bytes as ordered chunk rows (every replica serves
-- them; PGlite and PostgreSQL alike), and the Ed25519 keys that sign their manifests.
CREATE TABLE firmwares (
  id                 text PRIMARY KEY,              -- {firmware} of firmwares/{firmware}
  kind               text NOT NULL,                 -- product kind name ('led', ...)
  version            text NOT NULL,                 -- semver, as uploaded
  release_notes      text NOT NULL DEFAULT '',
  hardware_labels    text[] NOT NULL DEFAULT '{}',
  state              text NOT NULL,                 -- 'UPLOADING' | 'PUBLISHED'
  size_bytes         bigint NOT NULL DEFAULT 0,     -- received so far, final once published
  sha256             text NOT NULL DEFAULT '',      -- hex, once published
  manifest           bytea,                         -- FirmwareManifest, binary, once published
  manifest_signature bytea,
  signing_key_id     text NOT NULL DEFAULT '',
  creator            text NOT NULL DEFAULT '',
  create_time        timestamptz NOT NULL,
  publish_time       timestamptz,
  revision           bigint NOT NULL DEFAULT 1,
  UNIQUE (kind, version)
);

-- One row per uploaded chunk (≤ 1 MiB), keyed by where it starts: a ranged read seeks to the
-- row holding its first byte and streams on from there.
CREATE TABLE firmware_chunks (
  firmware_id  text NOT NULL REFERENCES firmwares (id) ON DELETE CASCADE,
  start_offset bigint NOT NULL,
  data         bytea NOT NULL,
  PRIMARY KEY (firmware_id, start_offset)
);

-- The private key is sealed (AES-256-GCM under TETHER_SIGNING_KEY_SECRET) like the JWT keys.
CREATE TABLE firmware_signing_keys (
  key_id      text PRIMARY KEY,
  public_key  bytea NOT NULL,                       -- raw Ed25519, 32 bytes
  private_key text NOT NULL,                        -- PKCS#8 PEM, sealed
  create_time timestamptz NOT NULL
);

-- Down Migration
DROP TABLE firmware_signing_keys;
DROP TABLE firmware_chunks;
DROP TABLE firmwares;
