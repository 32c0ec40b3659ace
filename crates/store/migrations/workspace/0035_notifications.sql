-- E-mail to the workspace's contacts about what happens in their portal:
-- an invitation, a reply from the MSP, a resolution to rate, a quote sent,
-- an invoice sent. One row per cause, kind and contact, so a redelivered
-- event queues nothing twice; the `mail.send` outbox event carries only the
-- row's id. No link token is stored: the sender mints it when it sends.

CREATE TABLE notifications (
    id         text PRIMARY KEY CHECK (id ~ '^ntf_[0-9a-z]{26}$'),
    kind       text NOT NULL
               CHECK (kind IN ('portal_invite', 'ticket_reply', 'ticket_resolved', 'quote_sent', 'invoice_sent')),
    -- What caused it: the outbox event of a domain event, or the invitation.
    cause      text NOT NULL CHECK (length(cause) BETWEEN 1 AND 64),
    contact_id text NOT NULL REFERENCES contacts (id),
    -- What it is about: a ticket, a quote, an invoice or an invitation.
    about      text NOT NULL CHECK (length(about) BETWEEN 1 AND 64),
    -- For a reply, the comment.
    comment_id text,
    -- The contact's address when it was queued.
    address    text NOT NULL CHECK (length(address) BETWEEN 3 AND 320),
    state      text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts   integer NOT NULL DEFAULT 0,
    last_error text CHECK (length(last_error) <= 1000),
    message_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    UNIQUE (cause, kind, contact_id)
);
CREATE INDEX notifications_about ON notifications (about, created_at DESC);
