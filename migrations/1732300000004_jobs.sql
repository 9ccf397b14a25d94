-- Up Migration
-- Fleet jobs. A job's targets are materialized in job_targets (one INSERT … SELECT at creation,
-- never loaded into memory); the rollout claims pending targets in batches under the job's row
-- lock and creates their tasks (QUEUED, with tasks.job_id) in the same transaction.
CREATE TABLE jobs (
  id                  text PRIMARY KEY,               -- {job} of jobs/{job}
  uid                 uuid NOT NULL UNIQUE,           -- never reused; part of the tasks' request ids
  display_name        text NOT NULL DEFAULT '',
  command             jsonb NOT NULL,                 -- tether.v1.Command as protobuf JSON
  product_kind        text NOT NULL,                  -- the command's kind: 'led' | 'coffee_machine'
  target_kind         text NOT NULL,                  -- devices | selector
  selector_filter     text,                           -- the filter as given (selector jobs)
  selector            jsonb,                          -- the parsed DeviceFilter (selector jobs)
  continuous          boolean NOT NULL DEFAULT false,
  max_per_minute      integer NOT NULL DEFAULT 0,     -- 0: no limit (or no cap when exponential)
  exp_base_per_minute integer,                        -- exponential rollout, NULL when not
  exp_factor          double precision,
  exp_step            integer,
  abort_percent       double precision,               -- NULL: no abort criteria
  abort_min_finished  integer,
  abort_cancel        boolean NOT NULL DEFAULT false,
  execution_timeout_ms integer NOT NULL,
  max_attempts        integer NOT NULL,
  task_ttl_ms         bigint NOT NULL,
  start_time          timestamptz,
  state               text NOT NULL,                  -- SCHEDULED | RUNNING | PAUSED | COMPLETED | ABORTED | CANCELED
  state_reason        text NOT NULL DEFAULT '',
  target_count        integer NOT NULL DEFAULT 0,     -- rows in job_targets
  dispatched_count    integer NOT NULL DEFAULT 0,     -- targets whose task was created
  skipped_count       integer NOT NULL DEFAULT 0,
  rate_tokens         double precision NOT NULL DEFAULT 0,  -- token bucket of the rollout rate
  rate_time           timestamptz,                    -- when rate_tokens was computed
  scan_time           timestamptz,                    -- continuous jobs: last look for new matches
  cancel_in_flight    boolean NOT NULL DEFAULT false, -- open executions still to cancel (runner)
  create_time         timestamptz NOT NULL,
  update_time         timestamptz NOT NULL,
  end_time            timestamptz
);
-- What the runner looks at: jobs that may have work (rollout, completion, cancellations).
CREATE INDEX jobs_active ON jobs (id) WHERE state IN ('SCHEDULED', 'RUNNING', 'PAUSED') OR cancel_in_flight;
CREATE INDEX jobs_created ON jobs (create_time DESC, id DESC);

-- One row per (job, device): the primary key is the exactly-once guarantee. A target moves
-- PENDING → DISPATCHED in the same transaction that inserts its task.
CREATE TABLE job_targets (
  job_id    text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  device_id text NOT NULL,                            -- no FK: a deleted device is skipped, not lost
  state     text NOT NULL DEFAULT 'PENDING',          -- PENDING | DISPATCHED | SKIPPED
  task_id   uuid,
  reason    text NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, device_id)
);
CREATE INDEX job_targets_pending ON job_targets (job_id, device_id) WHERE state = 'PENDING';

-- Executions are ordinary tasks linked to their job; progress counts group them by state.
ALTER TABLE tasks ADD COLUMN job_id text REFERENCES jobs (id) ON DELETE SET NULL;
CREATE INDEX tasks_job ON tasks (job_id, state) WHERE job_id IS NOT NULL;

-- Down Migration
DROP INDEX tasks_job;
ALTER TABLE tasks DROP COLUMN job_id;
DROP TABLE job_targets;
DROP TABLE jobs;
