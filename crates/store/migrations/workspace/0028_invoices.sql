-- Invoices and credit notes (psa.md "Money: rules that keep invoices right").
--
-- Configuration (written directly, with a change record): the billing
-- profile (currency, terms, who bills whom) and the tax rates lines use.
-- Domain state (written only by the invoice commands): invoices, credit
-- notes, their lines, and the PDF each finalized document is rendered as.

-- How this client is billed: one row.
CREATE TABLE billing_profile (
    only_row            boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Days from the issue date to the due date.
    payment_terms_days  integer NOT NULL CHECK (payment_terms_days BETWEEN 0 AND 365),
    invoice_prefix      text NOT NULL CHECK (invoice_prefix ~ '^[A-Z0-9][A-Z0-9/-]{0,15}$'),
    credit_note_prefix  text NOT NULL CHECK (credit_note_prefix ~ '^[A-Z0-9][A-Z0-9/-]{0,15}$'
                                             AND credit_note_prefix <> invoice_prefix),
    -- The MSP's legal entity that bills, and this client as billed: name,
    -- address lines, postcode, city, country, VAT id (checked by the API).
    seller              jsonb NOT NULL,
    buyer               jsonb NOT NULL,
    -- Where payments go (printed on the document; BT-84), optional.
    payee_iban          text CHECK (payee_iban ~ '^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$'),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- The taxes lines are charged at: a key lines name, a category (UNTDID 5305)
-- and a rate in percent; a category without tax says why (the exemption
-- reason EN 16931 asks for).
CREATE TABLE tax_rates (
    key               text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]*$' AND length(key) <= 40),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    category          text NOT NULL CHECK (category IN ('S', 'Z', 'E', 'AE', 'K', 'G', 'O', 'L', 'M')),
    rate              numeric(5, 2) NOT NULL CHECK (rate BETWEEN 0 AND 100),
    exemption_reason  text CHECK (length(exemption_reason) BETWEEN 1 AND 200),
    -- An archived rate is kept for the documents that used it; new lines
    -- cannot use it.
    archived          boolean NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((category IN ('S', 'L', 'M')) = (rate > 0))
);

-- The numbering of each kind of document: the finalizing unit of work takes
-- the next number with UPDATE ... RETURNING, so numbers are consecutive, in
-- order of finalization, and a finalization that rolls back gives its number
-- back (a sequence would leave a gap).
CREATE TABLE document_series (
    kind         text PRIMARY KEY CHECK (kind IN ('invoice', 'credit_note')),
    next_number  bigint NOT NULL DEFAULT 1 CHECK (next_number >= 1)
);
INSERT INTO document_series (kind) VALUES ('invoice'), ('credit_note');

CREATE TABLE invoices (
    id                 text PRIMARY KEY CHECK (id ~ '^inv_[0-9a-z]{26}$'),
    kind               text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    state              text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'finalized', 'sent')),
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- A credit note corrects this finalized invoice.
    corrects           text REFERENCES invoices (id),
    purchase_order     text CHECK (length(purchase_order) BETWEEN 1 AND 100),
    note               text CHECK (length(note) BETWEEN 1 AND 2000),
    -- Set when finalized, never changed after.
    sequence           bigint,
    number             text UNIQUE,
    issued_on          date,
    due_on             date,
    seller             jsonb,
    buyer              jsonb,
    payee_iban         text,
    net                numeric(18, 2),
    tax                numeric(18, 2),
    gross              numeric(18, 2),
    tax_groups         jsonb,
    pdf_sha256         text CHECK (pdf_sha256 ~ '^[0-9a-f]{64}$'),
    finalized_at       timestamptz,
    finalized_by       jsonb,
    sent_at            timestamptz,
    execution_id       text NOT NULL UNIQUE REFERENCES executions (id),
    last_execution_id  text NOT NULL REFERENCES executions (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, sequence),
    CHECK ((kind = 'credit_note') = (corrects IS NOT NULL)),
    CHECK ((state = 'draft') = (number IS NULL)),
    CHECK ((state = 'draft') OR (sequence IS NOT NULL AND issued_on IS NOT NULL AND due_on IS NOT NULL
           AND seller IS NOT NULL AND buyer IS NOT NULL AND net IS NOT NULL AND tax IS NOT NULL
           AND gross IS NOT NULL AND tax_groups IS NOT NULL AND pdf_sha256 IS NOT NULL
           AND finalized_at IS NOT NULL AND finalized_by IS NOT NULL)),
    CHECK ((state = 'sent') = (sent_at IS NOT NULL)),
    CHECK (gross IS NULL OR gross = net + tax)
);
CREATE INDEX invoices_state ON invoices (state, id);
CREATE INDEX invoices_corrects ON invoices (corrects) WHERE corrects IS NOT NULL;
CREATE INDEX invoices_due ON invoices (due_on) WHERE state <> 'draft';

CREATE TABLE invoice_lines (
    invoice_id        text NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position          integer NOT NULL CHECK (position BETWEEN 1 AND 500),
    description       text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
    quantity          numeric(18, 4) NOT NULL CHECK (quantity <> 0),
    -- UN/ECE Recommendation 20 (`HUR` hour, `C62` one, `MON` month).
    unit_code         text NOT NULL CHECK (unit_code ~ '^[A-Z0-9]{2,3}$'),
    unit_price        numeric(18, 4) NOT NULL CHECK (unit_price >= 0),
    discount_percent  numeric(5, 2) NOT NULL DEFAULT 0 CHECK (discount_percent BETWEEN 0 AND 100),
    tax_key           text NOT NULL,
    tax_category      text NOT NULL,
    tax_rate          numeric(5, 2) NOT NULL,
    exemption_reason  text,
    -- Computed by the money rules whenever the lines change.
    net               numeric(18, 2) NOT NULL,
    tax               numeric(18, 2) NOT NULL,
    PRIMARY KEY (invoice_id, position)
);

-- The PDF of a finalized document, byte for byte as rendered: its SHA-256
-- is on the invoice, and the row is never changed.
CREATE TABLE invoice_documents (
    invoice_id  text PRIMARY KEY REFERENCES invoices (id),
    pdf         bytea NOT NULL,
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$')
);

-- A finalized document is immutable: only its move to `sent` is allowed;
-- its lines and its PDF never change, and it is never deleted.
CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.state <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is finalized: it is never deleted', OLD.id USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.state <> 'draft' AND (
        (to_jsonb(NEW) - ARRAY['state', 'sent_at', 'updated_at', 'last_execution_id'])
        IS DISTINCT FROM (to_jsonb(OLD) - ARRAY['state', 'sent_at', 'updated_at', 'last_execution_id'])
        OR NEW.state = 'draft')
    THEN
        RAISE EXCEPTION 'invoice % is finalized: it is corrected by a credit note, never changed', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_immutable();

CREATE FUNCTION invoice_lines_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    document text := CASE WHEN TG_OP = 'DELETE' THEN OLD.invoice_id ELSE NEW.invoice_id END;
BEGIN
    IF EXISTS (SELECT 1 FROM invoices i WHERE i.id = document AND i.state <> 'draft') THEN
        RAISE EXCEPTION 'invoice % is finalized: its lines never change', document USING ERRCODE = 'check_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER invoice_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION invoice_lines_immutable();

CREATE FUNCTION invoice_documents_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the PDF of invoice % is kept as rendered', OLD.invoice_id USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER invoice_documents_immutable BEFORE UPDATE OR DELETE ON invoice_documents
    FOR EACH ROW EXECUTE FUNCTION invoice_documents_immutable();
