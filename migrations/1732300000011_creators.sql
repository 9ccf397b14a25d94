-- Up Migration
-- Rules and jobs run with the rights of their creator (`users/{user}` or `services/{service}`):
-- every firing and every rollout batch checks that the creator still has the operator role on
-- each target device. Rows from before this column were created by someone with the rights the
-- API demanded then; they are attributed to the bootstrap admin user, so they keep firing as
-- before until that user is demoted or deleted.
ALTER TABLE rules ADD COLUMN creator text;
UPDATE rules SET creator = 'users/admin' WHERE creator IS NULL;
ALTER TABLE rules ALTER COLUMN creator SET NOT NULL;

ALTER TABLE jobs ADD COLUMN creator text;
UPDATE jobs SET creator = 'users/admin' WHERE creator IS NULL;
ALTER TABLE jobs ALTER COLUMN creator SET NOT NULL;

-- Down Migration
ALTER TABLE jobs DROP COLUMN creator;
ALTER TABLE rules DROP COLUMN creator;
