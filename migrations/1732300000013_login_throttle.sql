-- Up Migration
-- Login throttling shared by every replica (issue 16, point 8). An attempt is reserved here, in
-- one transaction with row locks, before its password is checked: concurrent guesses and a second
-- replica cannot add to the budget. Nothing here is a secret; rows expire and are pruned.
CREATE TABLE login_throttle (
  scope      text NOT NULL CHECK (scope IN ('pair', 'user', 'address')),
  user_name  text NOT NULL,                        -- '' for scope 'address'; any name tried, existing or not
  address    text NOT NULL,                        -- client address; '' for scope 'user'
  failures   integer NOT NULL,                     -- attempts reserved and not refunded by a success
  next_time  timestamptz NOT NULL,                 -- no attempt under this key before (the back-off)
  reset_time timestamptz NOT NULL,                 -- after this the count is forgotten
  PRIMARY KEY (scope, user_name, address)
);
CREATE INDEX login_throttle_reset ON login_throttle (reset_time);

-- Where each user has signed in successfully from. A known-good address is held back only by its
-- own failures, never by other addresses' (the per-user and per-address ceilings skip it).
CREATE TABLE login_known_addresses (
  user_name       text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
  address         text NOT NULL,
  last_login_time timestamptz NOT NULL,
  PRIMARY KEY (user_name, address)
);

-- Down Migration
DROP TABLE login_known_addresses;
DROP TABLE login_throttle;
