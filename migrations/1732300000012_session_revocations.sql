-- Up Migration
-- Access tokens carry their session (`sid`: the refresh token family). Logout, refresh-token reuse
-- and a password change record the sessions they end here; every replica keeps the rows of the
-- last access-token lifetime in memory, refuses those sessions' tokens and ends streams opened
-- with them. A revoked API key is recorded too (`api_key:{id}`), so streams opened with it end. A row is of no use once
-- every token of its session has expired, so rows older than that are pruned.
-- Existing installations need no backfill: tokens issued before this migration carry no `sid` and
-- are refused (clients refresh, which issues a token with one).
CREATE TABLE session_revocations (
  session     text PRIMARY KEY,                    -- refresh_tokens.family (the `sid` of its access tokens), or api_key:{id}
  user_name   text NOT NULL,                       -- no foreign key: the row must outlive a deleted user
  revoke_time timestamptz NOT NULL
);
CREATE INDEX session_revocations_time ON session_revocations (revoke_time);

-- API keys may expire; NULL (every existing key): never.
ALTER TABLE api_keys ADD COLUMN expire_time timestamptz;

-- Down Migration
ALTER TABLE api_keys DROP COLUMN expire_time;
DROP TABLE session_revocations;
