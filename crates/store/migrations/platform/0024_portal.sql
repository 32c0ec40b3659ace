-- The client portal's door: invitations and portal sessions.
--
-- An invitation binds a one-time token (only its SHA-256 is kept) to a
-- workspace, one of its contacts and a client role, and expires. Taking it
-- up (a POST, never the GET a mail scanner makes) marks it used, gives the
-- contact's portal subject its membership and starts a portal session, in
-- one transaction.
--
-- Portal sessions are their own kind, in their own table, behind their own
-- cookie: a staff session lookup never finds one, and the reverse.

CREATE TABLE platform.portal_invites (
    id             text PRIMARY KEY CHECK (id ~ '^pin_[0-9a-z]{26}$'),
    token_hash     bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    workspace_id   bigint NOT NULL REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    contact_id     text NOT NULL CHECK (length(contact_id) BETWEEN 1 AND 64),
    -- Who it is for, as shown on the link's page (the contact's name then).
    contact_name   text NOT NULL CHECK (length(contact_name) BETWEEN 1 AND 200),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    role           text NOT NULL CHECK (role IN ('client_admin', 'client_user')),
    invited_by_issuer  text NOT NULL,
    invited_by_subject text NOT NULL,
    -- Whom the link's page names to ask for a new one.
    invited_by_name    text NOT NULL CHECK (length(invited_by_name) BETWEEN 1 AND 200),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    revoked_at     timestamptz,
    CHECK (expires_at > created_at),
    CHECK (used_at IS NULL OR revoked_at IS NULL)
);
CREATE INDEX portal_invites_by_contact ON platform.portal_invites (workspace_id, contact_id, created_at DESC);

CREATE TABLE platform.portal_sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    workspace_id bigint NOT NULL REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    contact_id   text NOT NULL,
    invite_id    text REFERENCES platform.portal_invites (id) ON DELETE SET NULL,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX portal_sessions_by_contact ON platform.portal_sessions (workspace_id, contact_id);
CREATE INDEX portal_sessions_by_expiry ON platform.portal_sessions (expires_at);
