-- Up Migration
-- Users, groups, device shares (grants), JWT signing keys, refresh tokens and API keys.
-- Secrets are never stored: passwords as scrypt hashes, tokens and API keys as SHA-256 of
-- high-entropy random values.
CREATE TABLE users (
  name          text PRIMARY KEY,                  -- {user} of users/{user}; also a client certificate's CN
  display_name  text NOT NULL DEFAULT '',
  admin         boolean NOT NULL DEFAULT false,
  password_hash text,                              -- scrypt$N$r$p$salt$hash; NULL: no password login
  create_time   timestamptz NOT NULL,
  update_time   timestamptz NOT NULL
);

CREATE TABLE groups (
  name         text PRIMARY KEY,                   -- {group} of groups/{group}
  display_name text NOT NULL DEFAULT '',
  create_time  timestamptz NOT NULL
);

CREATE TABLE group_members (
  group_name text NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
  user_name  text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
  PRIMARY KEY (group_name, user_name)
);
CREATE INDEX group_members_user ON group_members (user_name);

-- A role on a device, or on every device matching a selector, for a user or a group.
CREATE TABLE grants (
  id             uuid PRIMARY KEY,
  principal_kind text NOT NULL CHECK (principal_kind IN ('user', 'group')),
  principal      text NOT NULL,
  target_kind    text NOT NULL CHECK (target_kind IN ('device', 'selector')),
  target         text NOT NULL,                    -- device id, or a device filter (kind / labels terms)
  role           text NOT NULL CHECK (role IN ('viewer', 'operator', 'owner')),
  creator        text NOT NULL,
  create_time    timestamptz NOT NULL,
  UNIQUE (principal_kind, principal, target_kind, target)
);
CREATE INDEX grants_target ON grants (target_kind, target);

-- JWT signing keys (ES256). A new key is made every rotation period; older keys stop signing
-- (retire_time) but stay for verification until every token they signed has expired.
CREATE TABLE signing_keys (
  kid          text PRIMARY KEY,
  algorithm    text NOT NULL,
  private_jwk  jsonb NOT NULL,                     -- never returned by any API
  public_jwk   jsonb NOT NULL,
  create_time  timestamptz NOT NULL,
  retire_time  timestamptz NOT NULL,               -- signs nothing after this
  expire_time  timestamptz NOT NULL                -- verifies nothing after this; then deleted
);

-- Refresh tokens: single use. A used token presented again revokes its whole family (session).
CREATE TABLE refresh_tokens (
  token_hash  text PRIMARY KEY,                    -- sha256 hex of the opaque token
  family      uuid NOT NULL,
  user_name   text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
  create_time timestamptz NOT NULL,
  expire_time timestamptz NOT NULL,
  used_time   timestamptz,
  revoked     boolean NOT NULL DEFAULT false
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_name);

CREATE TABLE api_keys (
  id             text PRIMARY KEY,                 -- {api_key} of users/{user}/apiKeys/{api_key}
  user_name      text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
  display_name   text NOT NULL DEFAULT '',
  secret_hash    text NOT NULL UNIQUE,             -- sha256 hex of the secret
  create_time    timestamptz NOT NULL,
  last_used_time timestamptz,
  revoke_time    timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_name);
CREATE INDEX devices_owner ON devices (owner);

-- Down Migration
DROP INDEX devices_owner;
DROP TABLE api_keys;
DROP TABLE refresh_tokens;
DROP TABLE signing_keys;
DROP TABLE grants;
DROP TABLE group_members;
DROP TABLE groups;
DROP TABLE users;
