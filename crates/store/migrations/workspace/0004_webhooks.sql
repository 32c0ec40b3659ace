-- Outbound webhooks (Standard Webhooks v1): the workspace's endpoints, the
-- messages sent to them, and every delivery attempt.

CREATE TABLE webhook_endpoints (
    id                   text PRIMARY KEY CHECK (id ~ '^whk_[0-9a-z]{26}$'),
    url                  text NOT NULL CHECK (length(url) <= 2000),
    description          text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    -- Event types it receives.
    events               text[] NOT NULL CHECK (cardinality(events) > 0),
    enabled              boolean NOT NULL DEFAULT true,
    disabled_reason      text,
    -- The signing secret, sealed with the master key; during rotation the
    -- previous one keeps signing until previous_until.
    secret_sealed        bytea NOT NULL,
    secret_nonce         bytea NOT NULL,
    previous_sealed      bytea,
    previous_nonce       bytea,
    previous_until       timestamptz,
    master_key_id        text NOT NULL,
    -- Since when every delivery has failed (NULL: the last one succeeded).
    failing_since        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- One message per domain event (its id is the `webhook-id`, the same on
-- every retry and for every endpoint).
CREATE TABLE webhook_messages (
    id              text PRIMARY KEY CHECK (id ~ '^msg_[0-9a-z]{26}$'),
    -- The outbox event it came from: a redelivered event makes no second message.
    source_event_id bigint UNIQUE,
    event_type      text NOT NULL,
    -- The exact body sent, so every attempt signs the same bytes.
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id   text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id    text NOT NULL REFERENCES webhook_messages (id),
    attempt       integer NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    status_code   integer,
    latency_ms    integer NOT NULL,
    error         text,
    response      text
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id DESC);
