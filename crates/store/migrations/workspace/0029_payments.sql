-- Payments received from this client and refunds paid back to it (psa.md
-- "Invoice": paid is derived from payments). Domain state, written only by
-- the payment commands. A payment is allocated to one or more finalized
-- invoices (partly or wholly); what is not allocated is the client's credit
-- balance, which later allocations use and refunds pay back.
CREATE TABLE payments (
    id                text PRIMARY KEY CHECK (id ~ '^pay_[0-9a-z]{26}$'),
    kind              text NOT NULL CHECK (kind IN ('payment', 'refund')),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount            numeric(18, 2) NOT NULL CHECK (amount > 0),
    -- The day the money arrived (a payment) or left (a refund).
    received_on       date NOT NULL,
    method            text NOT NULL CHECK (method IN ('transfer', 'card', 'direct_debit', 'cash', 'cheque', 'other')),
    reference         text CHECK (length(reference) BETWEEN 1 AND 140),
    note              text CHECK (length(note) BETWEEN 1 AND 2000),
    recorded_by       jsonb NOT NULL,
    execution_id      text NOT NULL UNIQUE REFERENCES executions (id),
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_received ON payments (received_on, id);

CREATE TABLE payment_allocations (
    payment_id    text NOT NULL REFERENCES payments (id),
    invoice_id    text NOT NULL REFERENCES invoices (id),
    amount        numeric(18, 2) NOT NULL CHECK (amount > 0),
    execution_id  text NOT NULL REFERENCES executions (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_id, invoice_id, execution_id)
);
CREATE INDEX payment_allocations_invoice ON payment_allocations (invoice_id);

-- Money that was received is never rewritten: a mistake is corrected by a
-- refund (or, for an allocation, by allocating elsewhere what is left).
CREATE FUNCTION payments_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payments and their allocations are kept as recorded' USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER payments_append_only BEFORE UPDATE OR DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_append_only();
CREATE TRIGGER payment_allocations_append_only BEFORE UPDATE OR DELETE ON payment_allocations
    FOR EACH ROW EXECUTE FUNCTION payments_append_only();
