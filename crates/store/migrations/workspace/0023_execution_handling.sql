-- A failed execution is operations' work until someone deals with it in the
-- Ops centre: retried (as a new execution) or dismissed, by whom and when.
ALTER TABLE executions
    ADD COLUMN handled_how text CHECK (handled_how IN ('retried', 'dismissed')),
    ADD COLUMN handled_at  timestamptz,
    ADD COLUMN handled_by  jsonb,
    ADD COLUMN retried_as  text;
