-- Contracts, the catalogue and rates they bring, and the billing run that
-- turns approved time and recurring charges into draft invoices (psa.md
-- "Contract", "Money").
--
-- Configuration (written directly, with a change record): work types,
-- catalogue items, rate cards and the rate role of each member of staff.
-- Domain state (written only by commands): contracts, their block-hours
-- ledger, the charges each billing run made.

-- What kind of work time is logged as: its default hourly rate, whether it
-- is billable by default, and the tax its time is charged at.
CREATE TABLE work_types (
    key          text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]*$' AND length(key) <= 60),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    billable     boolean NOT NULL DEFAULT true,
    hourly_rate  numeric(12, 2) NOT NULL CHECK (hourly_rate >= 0),
    tax          text NOT NULL REFERENCES tax_rates (key),
    archived     boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Services and products with their prices, for invoice and quote lines.
CREATE TABLE catalogue_items (
    key         text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]*$' AND length(key) <= 60),
    kind        text NOT NULL CHECK (kind IN ('service', 'product')),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    unit_code   text NOT NULL CHECK (unit_code ~ '^[A-Z0-9]{2,3}$'),
    unit_price  numeric(18, 4) NOT NULL CHECK (unit_price >= 0),
    tax         text NOT NULL REFERENCES tax_rates (key),
    archived    boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A rate card: hourly rates by work type and staff rate role
-- (`[{work_type, role?, hourly_rate}]`; a rate without a role applies to
-- every role the card does not name).
CREATE TABLE rate_cards (
    key         text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]*$' AND length(key) <= 60),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    rates       jsonb NOT NULL CHECK (jsonb_typeof(rates) = 'array'),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The rate role of a member of staff (`engineer`, `senior_engineer`):
-- what a rate card prices their hours by.
CREATE TABLE staff_rate_roles (
    issuer      text NOT NULL,
    subject     text NOT NULL,
    role        text NOT NULL CHECK (role ~ '^[a-z][a-z0-9_]*$' AND length(role) <= 40),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);

CREATE TABLE contracts (
    id                text PRIMARY KEY CHECK (id ~ '^ctr_[0-9a-z]{26}$'),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind              text NOT NULL CHECK (kind IN ('time_and_materials', 'fixed_fee', 'per_unit', 'block_hours')),
    -- `expired` is derived when read: an active contract past its end.
    state             text NOT NULL DEFAULT 'draft'
                      CHECK (state IN ('draft', 'active', 'suspended', 'cancelled')),
    starts_on         date NOT NULL,
    ends_on           date CHECK (ends_on >= starts_on),
    billing_cycle     text NOT NULL CHECK (billing_cycle IN ('monthly', 'quarterly', 'yearly')),
    rate_card         text REFERENCES rate_cards (key),
    -- Rates of this contract alone, before its rate card's.
    rate_overrides    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(rate_overrides) = 'array'),
    sla_policy_id     text REFERENCES sla_policies (id),
    purchase_order    text CHECK (length(purchase_order) BETWEEN 1 AND 100),
    -- The tax every charge of the contract is made at.
    tax               text NOT NULL REFERENCES tax_rates (key),
    -- Per cycle: the fee (fixed fee), the price of one unit (per unit), or
    -- the price of the block (block hours).
    amount            numeric(14, 2) CHECK (amount >= 0),
    -- Per unit: what is counted at billing time.
    unit_source       text CHECK (unit_source IN ('assets', 'contacts')),
    unit_asset_type   text REFERENCES asset_types (key),
    -- Block hours: hours bought each cycle, the rate of hours beyond them,
    -- and whether unused hours carry over to the next cycle.
    block_hours       numeric(8, 2) CHECK (block_hours > 0),
    overage_rate      numeric(12, 2) CHECK (overage_rate >= 0),
    rollover          boolean NOT NULL DEFAULT false,
    note              text CHECK (length(note) BETWEEN 1 AND 2000),
    activated_at      timestamptz,
    cancelled_at      timestamptz,
    execution_id      text NOT NULL UNIQUE REFERENCES executions (id),
    last_execution_id text NOT NULL REFERENCES executions (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'time_and_materials') = (amount IS NULL)),
    CHECK ((kind = 'per_unit') = (unit_source IS NOT NULL)),
    CHECK (unit_asset_type IS NULL OR unit_source = 'assets'),
    CHECK ((kind = 'block_hours') = (block_hours IS NOT NULL AND overage_rate IS NOT NULL)),
    CHECK ((state = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX contracts_state ON contracts (state, starts_on);

-- The block-hours ledger: hours bought each cycle, drawn by time, carried
-- over or expired. The balance is the sum; rows are never changed (a row
-- of a discarded draft invoice goes with it).
CREATE TABLE contract_hours (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id    text NOT NULL REFERENCES contracts (id),
    entry          text NOT NULL CHECK (entry IN ('purchased', 'drawn', 'expired')),
    hours          numeric(12, 4) NOT NULL CHECK (hours <> 0),
    cycle_start    date NOT NULL,
    time_entry_id  text REFERENCES time_entries (id),
    invoice_id     text REFERENCES invoices (id) ON DELETE CASCADE,
    execution_id   text NOT NULL REFERENCES executions (id),
    at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((entry = 'purchased') = (hours > 0))
);
CREATE INDEX contract_hours_contract ON contract_hours (contract_id, id);

-- Each recurring charge of a contract, once per cycle: the billing run's
-- idempotence for recurring lines (a discarded draft gives the cycle back).
CREATE TABLE contract_charges (
    contract_id  text NOT NULL REFERENCES contracts (id),
    cycle_start  date NOT NULL,
    invoice_id   text NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position     integer NOT NULL,
    -- Units counted at billing time (per unit), else 1.
    quantity     numeric(12, 2) NOT NULL,
    PRIMARY KEY (contract_id, cycle_start)
);

-- A ticket's contract: the one in force when it was opened (or set later).
ALTER TABLE tickets ADD COLUMN contract_id text REFERENCES contracts (id);
CREATE INDEX tickets_contract ON tickets (contract_id) WHERE contract_id IS NOT NULL;

-- A time entry's contract and rate are fixed when it is approved; once
-- invoiced it points to its invoice line. A discarded draft invoice returns
-- its entries to approved.
ALTER TABLE time_entries
    ADD COLUMN contract_id   text REFERENCES contracts (id),
    ADD COLUMN invoice_id    text REFERENCES invoices (id),
    ADD COLUMN invoice_line  integer,
    ADD CONSTRAINT time_entries_invoiced CHECK ((state = 'invoiced') = (invoice_id IS NOT NULL AND invoice_line IS NOT NULL));
CREATE INDEX time_entries_unbilled ON time_entries (worked_on) WHERE state = 'approved' AND billable;
CREATE INDEX time_entries_invoice ON time_entries (invoice_id) WHERE invoice_id IS NOT NULL;

-- A document made by a billing run: its contract and period. One
-- execution (the run) makes several.
ALTER TABLE invoices
    ADD COLUMN contract_id    text REFERENCES contracts (id),
    ADD COLUMN period_start   date,
    ADD COLUMN period_end     date,
    DROP CONSTRAINT invoices_execution_id_key;
CREATE INDEX invoices_execution ON invoices (execution_id);
CREATE INDEX invoices_contract ON invoices (contract_id) WHERE contract_id IS NOT NULL;

-- The billing runs: what each made.
CREATE TABLE billing_runs (
    execution_id  text PRIMARY KEY REFERENCES executions (id),
    period_start  date NOT NULL,
    period_end    date NOT NULL CHECK (period_end >= period_start),
    invoices      integer NOT NULL,
    time_entries  integer NOT NULL,
    charges       integer NOT NULL,
    actor         jsonb NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
