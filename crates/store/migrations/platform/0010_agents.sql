-- The edge plane's identities. Both tables are the installation's: an agent
-- request is authenticated before anything else, and its workspace comes
-- from the agent's record, never from the request.

-- One-time-shown enrollment tokens, stored as SHA-256 digests.
CREATE TABLE platform.enrollment_tokens (
    id           text PRIMARY KEY CHECK (id ~ '^enr_[0-9a-z]{26}$'),
    workspace_id bigint NOT NULL REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    token_sha256 bytea NOT NULL UNIQUE,
    label        text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    expires_at   timestamptz NOT NULL,
    max_uses     integer CHECK (max_uses > 0),
    uses         integer NOT NULL DEFAULT 0,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrollment_tokens_workspace ON platform.enrollment_tokens (workspace_id, id);

-- Enrolled agents: the public half of each device key (the private half
-- never leaves the machine).
CREATE TABLE platform.agents (
    id           text PRIMARY KEY CHECK (id ~ '^agt_[0-9a-z]{26}$'),
    workspace_id bigint NOT NULL REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    public_key   text NOT NULL UNIQUE,
    hostname     text NOT NULL CHECK (length(hostname) BETWEEN 1 AND 255),
    token_id     text REFERENCES platform.enrollment_tokens (id) ON DELETE SET NULL,
    enrolled_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX agents_workspace ON platform.agents (workspace_id, id);
