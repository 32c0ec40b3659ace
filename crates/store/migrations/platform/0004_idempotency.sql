-- Idempotency keys (draft-ietf-httpapi-idempotency-key-header), scoped to
-- (issuer, subject, workspace, key). The first response is kept and replayed.

CREATE TABLE platform.idempotency_keys (
    issuer           text NOT NULL,
    subject          text NOT NULL,
    -- The workspace slug of the request path; '' for platform routes.
    workspace        text NOT NULL,
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of method, path and body.
    fingerprint      bytea NOT NULL,
    state            text NOT NULL CHECK (state IN ('in_flight', 'completed')),
    -- An in-flight key whose lease ran out was abandoned (its process died).
    locked_until     timestamptz NOT NULL,
    response_status  smallint,
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (issuer, subject, workspace, key)
);
CREATE INDEX idempotency_keys_by_expiry ON platform.idempotency_keys (expires_at);
