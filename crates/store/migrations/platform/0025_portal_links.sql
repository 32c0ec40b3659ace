-- Sign-in links in the portal's e-mails: a one-time token (only its
-- SHA-256 kept) that starts a portal session for a contact who already has
-- portal access, and leads to one page of the portal (the ticket answered,
-- the quote sent, the invoice issued). A link grants nothing the contact's
-- membership does not: taking it up checks the membership in the same
-- transaction, and ending a contact's access withdraws its links.

CREATE TABLE platform.portal_links (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    workspace_id bigint NOT NULL REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    contact_id   text NOT NULL CHECK (length(contact_id) BETWEEN 1 AND 64),
    -- Whom the link's page greets (the contact's name when it was sent).
    contact_name text NOT NULL CHECK (length(contact_name) BETWEEN 1 AND 200),
    -- Where it leads: a path in the workspace's portal.
    target       text NOT NULL CHECK (target ~ '^/w/[a-z0-9-]+/portal(/[A-Za-z0-9_/-]*)?(#[a-z-]+)?$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX portal_links_by_contact ON platform.portal_links (workspace_id, contact_id);
CREATE INDEX portal_links_by_expiry ON platform.portal_links (expires_at);
