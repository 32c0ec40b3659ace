-- Time entries: time someone worked on a ticket (psa.md "Time entry").
-- Domain state, written only by the time entry commands. The lifecycle:
-- draft -> submitted -> approved -> invoiced (locked); submitted -> rejected
-- -> draft. Up to 500k rows per workspace: the list filters are indexed.
CREATE TABLE time_entries (
    id                text PRIMARY KEY CHECK (id ~ '^tim_[0-9a-z]{26}$'),
    ticket_id         text NOT NULL REFERENCES tickets (id),
    -- Who did the work: the actor who logged it (and the only one who
    -- changes, submits or discards it).
    staff_issuer      text NOT NULL,
    staff             text NOT NULL,
    -- A short code; the catalogue of work types (rates, billable by
    -- default) comes with billing.
    work_type         text NOT NULL CHECK (work_type ~ '^[a-z][a-z0-9_]*$' AND length(work_type) <= 60),
    -- Always set: given, or derived from started_at/ended_at (a started
    -- minute counts).
    minutes           integer NOT NULL CHECK (minutes BETWEEN 1 AND 1440),
    started_at        timestamptz,
    ended_at          timestamptz,
    worked_on         date NOT NULL,
    billable          boolean NOT NULL,
    note              text CHECK (length(note) BETWEEN 1 AND 4000),
    state             text NOT NULL DEFAULT 'draft'
                      CHECK (state IN ('draft', 'submitted', 'approved', 'rejected', 'invoiced')),
    -- Who approved it, and when (set once approved, kept when invoiced).
    approved_by_issuer text,
    approved_by       text,
    approved_at       timestamptz,
    -- Who rejected it, when and why (set while it is rejected; an edit
    -- returns it to draft and clears them: the events keep the story).
    rejected_by_issuer text,
    rejected_by       text,
    rejected_at       timestamptz,
    rejection_reason  text CHECK (length(rejection_reason) BETWEEN 1 AND 4000),
    -- The rate in force when approved: filled by billing (a later issue).
    rate              numeric(12, 4) CHECK (rate >= 0),
    -- The execution that logged it, and the last one that changed it.
    execution_id      text NOT NULL UNIQUE REFERENCES executions (id),
    last_execution_id text NOT NULL REFERENCES executions (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((started_at IS NULL) = (ended_at IS NULL)),
    CHECK (ended_at > started_at AND ended_at - started_at <= interval '24 hours'),
    CHECK ((state IN ('approved', 'invoiced'))
           = (approved_by_issuer IS NOT NULL AND approved_by IS NOT NULL AND approved_at IS NOT NULL)),
    CHECK ((state = 'rejected') = (rejected_by_issuer IS NOT NULL AND rejected_by IS NOT NULL
                                   AND rejected_at IS NOT NULL AND rejection_reason IS NOT NULL)),
    -- A rate is the one in force when approved.
    CHECK (rate IS NULL OR state IN ('approved', 'invoiced'))
);
-- Lists are newest first (by id) under each filter.
CREATE INDEX time_entries_ticket ON time_entries (ticket_id, id);
CREATE INDEX time_entries_staff ON time_entries (staff, staff_issuer, id);
CREATE INDEX time_entries_state ON time_entries (state, id);
CREATE INDEX time_entries_worked_on ON time_entries (worked_on, id);
