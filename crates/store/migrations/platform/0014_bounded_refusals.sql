-- Requests that are not authenticated cannot write without bound.
--
-- Refusals (invalid bearer tokens, failed and throttled sign-ins) are
-- aggregated: one row per (action, outcome, reason, source, ..., minute) with
-- the number of times it happened. `refusal_key` is the SHA-256 of that
-- identity, so replicas that flush the same minute add to one row. Other
-- events keep one row each (count 1, no key).
ALTER TABLE platform.access_audit
    ADD COLUMN count       bigint NOT NULL DEFAULT 1 CHECK (count > 0),
    ADD COLUMN refusal_key bytea CHECK (length(refusal_key) = 32);
CREATE UNIQUE INDEX access_audit_refusals ON platform.access_audit (refusal_key) WHERE refusal_key IS NOT NULL;

-- Throttling no longer reads the audit log.
DROP INDEX platform.access_audit_signin_failures;

-- Sign-in attempts per (account, source) and per source. An attempt counts
-- from the moment it starts (so attempts in flight count); a key's window
-- starts with its first attempt and ends at `resets_at`.
CREATE TABLE platform.signin_attempts (
    key       text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
    attempts  integer NOT NULL CHECK (attempts >= 0),
    resets_at timestamptz NOT NULL
);
CREATE INDEX signin_attempts_by_reset ON platform.signin_attempts (resets_at);
