-- The client's sites (offices, branches, data centres) and contacts (its
-- people). Both are archived, never deleted: tickets, invoices and the
-- evidence chain keep pointing at them.
CREATE TABLE sites (
    id          text PRIMARY KEY CHECK (id ~ '^sit_[0-9a-z]{26}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    address     jsonb,
    time_zone   text NOT NULL,
    archived_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Two live sites of one client never share a name.
CREATE UNIQUE INDEX sites_live_name ON sites (lower(name)) WHERE archived_at IS NULL;

CREATE TABLE contacts (
    id                text PRIMARY KEY CHECK (id ~ '^con_[0-9a-z]{26}$'),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email             text CHECK (length(email) <= 254),
    phone             text CHECK (length(phone) <= 32),
    site_id           text REFERENCES sites (id),
    portal_access     boolean NOT NULL DEFAULT false CHECK (NOT portal_access OR email IS NOT NULL),
    receives_invoices boolean NOT NULL DEFAULT false CHECK (NOT receives_invoices OR email IS NOT NULL),
    archived_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- Search by name or email (prefix of any word): psa.md's full-text port.
    search            tsvector GENERATED ALWAYS AS (to_tsvector('simple', name || ' ' || coalesce(email, ''))) STORED
);
-- An email address names one live person: portal invitations and invoices go to it.
CREATE UNIQUE INDEX contacts_live_email ON contacts (lower(email)) WHERE archived_at IS NULL AND email IS NOT NULL;
CREATE INDEX contacts_search ON contacts USING gin (search);

ALTER TABLE tickets ADD COLUMN contact_id text REFERENCES contacts (id);
ALTER TABLE tickets ADD COLUMN site_id text REFERENCES sites (id);
