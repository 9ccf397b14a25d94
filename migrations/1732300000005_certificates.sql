-- Up Migration
-- Certificates Tether's CA issued: device certificates and provisioning claim certificates.
-- Never a private key: keys Tether generates are returned once and forgotten.
CREATE TABLE certificates (
  serial_number       text PRIMARY KEY,             -- lowercase hex, the {certificate} of devices/{device}/certificates/{certificate}
  kind                text NOT NULL CHECK (kind IN ('device', 'claim')),
  device_id           text,                         -- no FK: a revocation must outlive a deleted device
  template_id         text,                         -- claim: its template; device: the template that provisioned it
  subject             text NOT NULL,
  certificate_pem     text NOT NULL,
  origin              text NOT NULL,                -- csr | generated | renewal | provisioning | claim
  previous_serial     text,
  request_id          text,                         -- MQTT renewal request id (idempotency)
  not_before          timestamptz NOT NULL,
  not_after           timestamptz NOT NULL,
  create_time         timestamptz NOT NULL,
  revoke_time         timestamptz,
  revocation_reason   integer,
  expiry_warning_time timestamptz,
  CHECK ((kind = 'device') = (device_id IS NOT NULL))
);
CREATE INDEX certificates_device ON certificates (device_id, create_time, serial_number);
CREATE INDEX certificates_revoked ON certificates (not_after) WHERE revoke_time IS NOT NULL;
CREATE INDEX certificates_template ON certificates (template_id) WHERE kind = 'claim';
CREATE UNIQUE INDEX certificates_request ON certificates (device_id, request_id) WHERE request_id IS NOT NULL;

CREATE TABLE provisioning_templates (
  id                        text PRIMARY KEY,
  device_kind               text NOT NULL,
  device_id_prefix          text NOT NULL,
  labels                    jsonb NOT NULL DEFAULT '{}'::jsonb,
  allowed_serial_numbers    text[] NOT NULL DEFAULT '{}',
  serial_number_pattern     text NOT NULL DEFAULT '',
  certificate_validity_days integer NOT NULL DEFAULT 0,
  create_time               timestamptz NOT NULL
);

-- "Once per serial number": the primary key is the guard, claimed in the same transaction as the
-- device and its certificate.
CREATE TABLE provisioning_records (
  template_id        text NOT NULL REFERENCES provisioning_templates (id) ON DELETE CASCADE,
  serial_number      text NOT NULL,
  device_id          text NOT NULL,
  certificate_serial text NOT NULL,
  create_time        timestamptz NOT NULL,
  PRIMARY KEY (template_id, serial_number)
);

-- Down Migration
DROP TABLE provisioning_records;
DROP TABLE provisioning_templates;
DROP TABLE certificates;
