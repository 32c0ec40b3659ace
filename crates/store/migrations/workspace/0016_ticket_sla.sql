-- Each ticket's SLA clocks. The clock log is the truth: an append-only list
-- of what happened to the ticket (opened, status and priority changes,
-- public replies, resolution, reopening, policy and calendar changes), from
-- which anchor_sla::replay computes every deadline with the policy and
-- calendar versions the log names. `ticket_sla` keeps the last plan, so
-- lists and the recurring `sla.clocks` job need not replay; `sla_notices`
-- makes each warning and breach fire once.

ALTER TABLE tickets
    ADD COLUMN sla_policy_id text REFERENCES sla_policies (id),
    -- For lists, filters and sorting: `none` (no clocks), `running`,
    -- `warning` (a running clock passed its warning share), `breached` (a
    -- clock of this cycle missed its target), `paused`, `met` (all done in time).
    ADD COLUMN sla_state text NOT NULL DEFAULT 'none'
        CHECK (sla_state IN ('none', 'running', 'warning', 'breached', 'paused', 'met')),
    -- The nearest deadline of a running clock.
    ADD COLUMN sla_due_at timestamptz;
CREATE INDEX tickets_sla_due ON tickets (sla_due_at, id) WHERE sla_due_at IS NOT NULL;
CREATE INDEX tickets_sla_state ON tickets (sla_state, id);

CREATE TABLE ticket_clock_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id    text NOT NULL REFERENCES tickets (id),
    at           timestamptz NOT NULL,
    -- anchor_sla::ClockEvent as JSON.
    event        jsonb NOT NULL CHECK (event ? 'event'),
    -- The command that recorded it; null for a configuration edit (a
    -- calendar or policy change re-planning open tickets).
    execution_id text REFERENCES executions (id),
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_clock_events_ticket ON ticket_clock_events (ticket_id, id);

-- Append-only, whoever asks.
CREATE FUNCTION ticket_clock_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the clock log is append-only' USING ERRCODE = '55000';
END
$$;
CREATE TRIGGER ticket_clock_events_append_only BEFORE UPDATE OR DELETE ON ticket_clock_events
    FOR EACH ROW EXECUTE FUNCTION ticket_clock_events_append_only();

CREATE TABLE ticket_sla (
    ticket_id        text PRIMARY KEY REFERENCES tickets (id),
    policy_id        text NOT NULL REFERENCES sla_policies (id),
    policy_version   integer NOT NULL,
    calendar_id      text NOT NULL REFERENCES business_calendars (id),
    calendar_version integer NOT NULL,
    -- False once resolved: a calendar or policy edit re-plans open tickets only.
    open             boolean NOT NULL,
    -- anchor_sla::SlaClocks as of `planned_at` (without the change list).
    clocks           jsonb NOT NULL,
    planned_at       timestamptz NOT NULL,
    -- The earliest warning or deadline not yet noticed; null: nothing to wait for.
    next_check_at    timestamptz
);
CREATE INDEX ticket_sla_next_check ON ticket_sla (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX ticket_sla_open ON ticket_sla (calendar_id) WHERE open;
CREATE INDEX ticket_sla_open_policy ON ticket_sla (policy_id) WHERE open;

-- Warnings and breaches sent, once per clock cycle each.
CREATE TABLE sla_notices (
    ticket_id   text NOT NULL REFERENCES tickets (id),
    target      text NOT NULL CHECK (target IN ('first_response', 'next_update', 'resolution')),
    cycle       integer NOT NULL CHECK (cycle >= 1),
    kind        text NOT NULL CHECK (kind IN ('warning', 'breached')),
    -- When it happened on the clock; `sent_at`: when it was noticed.
    at          timestamptz NOT NULL,
    due_at      timestamptz,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, target, cycle, kind)
);

ALTER TABLE ticket_history DROP CONSTRAINT ticket_history_change_check;
ALTER TABLE ticket_history ADD CONSTRAINT ticket_history_change_check
    CHECK (change IN ('created', 'status_changed', 'commented', 'priority_changed'));
ALTER TABLE ticket_history ADD COLUMN from_priority text, ADD COLUMN to_priority text;
