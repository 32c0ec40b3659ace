-- Senders that call the workspace with Standard Webhooks signatures (an
-- external system, another Anchor installation). Each has its own secret,
-- sealed with the master key; during rotation the previous one is accepted
-- until previous_until.
CREATE TABLE inbound_sources (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    secret_sealed   bytea NOT NULL,
    secret_nonce    bytea NOT NULL,
    previous_sealed bytea,
    previous_nonce  bytea,
    previous_until  timestamptz,
    master_key_id   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
