-- Quotes (psa.md "Quote"): lines priced as an invoice's are, valid until a
-- day, kept in versions. Sending freezes a version and its SHA-256 (of the
-- version's RFC 8785 canonical JSON); the client accepts or declines that
-- exact version; an accepted quote converts to a draft invoice. Changed
-- only by the quote commands.
CREATE SEQUENCE quote_numbers;

CREATE TABLE quotes (
    id                   text PRIMARY KEY CHECK (id ~ '^qte_[0-9a-z]{26}$'),
    number               text NOT NULL UNIQUE,
    title                text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    state                text NOT NULL DEFAULT 'draft'
                         CHECK (state IN ('draft', 'sent', 'accepted', 'declined', 'converted')),
    version              integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    valid_until          date NOT NULL,
    currency             text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    note                 text CHECK (length(note) BETWEEN 1 AND 2000),
    -- The lines as the commands give them (LineArgs), and their totals.
    lines                jsonb NOT NULL DEFAULT '[]',
    net                  numeric(18, 2) NOT NULL DEFAULT 0,
    tax                  numeric(18, 2) NOT NULL DEFAULT 0,
    gross                numeric(18, 2) NOT NULL DEFAULT 0,
    sent_at              timestamptz,
    -- The decision: who (as they named themselves, and the actor), when,
    -- and the digest of the version decided on.
    decided_at           timestamptz,
    decided_by           jsonb,
    decided_digest       text CHECK (decided_digest ~ '^[0-9a-f]{64}$'),
    decline_reason       text CHECK (length(decline_reason) BETWEEN 1 AND 2000),
    invoice_id           text REFERENCES invoices (id) ON DELETE SET NULL,
    execution_id         text NOT NULL UNIQUE REFERENCES executions (id),
    last_execution_id    text NOT NULL REFERENCES executions (id),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((state IN ('accepted', 'declined', 'converted')) = (decided_at IS NOT NULL)),
    CHECK (gross = net + tax)
);
CREATE INDEX quotes_state ON quotes (state, id);

CREATE TABLE quote_versions (
    quote_id    text NOT NULL REFERENCES quotes (id),
    version     integer NOT NULL,
    content     jsonb NOT NULL,
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (quote_id, version)
);

-- A version once sent is what the client saw: never changed.
CREATE FUNCTION quote_versions_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a sent quote version is immutable' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER quote_versions_frozen BEFORE UPDATE OR DELETE ON quote_versions
    FOR EACH ROW EXECUTE FUNCTION quote_versions_frozen();
