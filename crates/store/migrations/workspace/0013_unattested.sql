-- What waits for its credential: finished executions and recorded changes
-- without one. An issuer holding the workspace's chain issues the waiting
-- ones together (oldest first), so it finds them through these indexes
-- instead of reading the tables; a row leaves its index once attested.
CREATE INDEX executions_unattested ON executions (completed_at, id)
    WHERE evidence_id IS NULL AND completed_at IS NOT NULL;
CREATE INDEX changes_unattested ON changes (created_at, id) WHERE evidence_id IS NULL;
