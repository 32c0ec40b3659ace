-- Responses kept for idempotent replay are sealed with the master key (they
-- may carry a secret shown only once: webhook and inbound-source signing
-- secrets, enrollment tokens), and remember the authorization decision they
-- were given under, which a replay makes again.
ALTER TABLE platform.idempotency_keys
    -- XChaCha20-Poly1305 nonce and master key id of the sealed
    -- response_body; NULL on responses kept before sealing (plaintext).
    ADD COLUMN response_nonce  bytea,
    ADD COLUMN response_key_id text,
    -- The permission (or "authenticated") the first answer was given under.
    ADD COLUMN decided_by      text;

-- Answers kept in plaintext before this migration that carry a secret are
-- dropped rather than left at rest: the caller saw the secret in the first
-- answer, and a retry with the same key runs as a new request.
DELETE FROM platform.idempotency_keys
 WHERE state = 'completed'
   AND (position('whsec_'::bytea IN response_body) > 0 OR position('anchor_enroll_'::bytea IN response_body) > 0);
