-- Up Migration
-- The client a call came through (AuditEvent.via, issue 23): `mcp` for an AI assistant's tool
-- call, '' otherwise. Rows from before keep ''.
ALTER TABLE audit_events ADD COLUMN via text NOT NULL DEFAULT '';

-- Down Migration
ALTER TABLE audit_events DROP COLUMN via;
