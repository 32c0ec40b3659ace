-- A command accepted with an Idempotency-Key remembers it, unique per actor:
-- a retry of the same request finds its execution in the workspace itself,
-- in the same unit of work that would otherwise record a second one, even
-- when the platform's key record was lost with a crashed process.
ALTER TABLE executions ADD COLUMN idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 255);
CREATE UNIQUE INDEX executions_idempotency_key ON executions (actor_issuer, actor_subject, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
