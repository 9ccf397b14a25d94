-- Up Migration
-- Job rules: the job a run created (rules.target is then {"job": tether.v1.Job as protobuf JSON}).
ALTER TABLE rule_runs ADD COLUMN job_id text;

-- Down Migration
ALTER TABLE rule_runs DROP COLUMN job_id;
