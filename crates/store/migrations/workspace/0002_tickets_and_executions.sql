-- Commands and their executions, and the first domain they act on: tickets.

-- Every domain command the gateway accepted. The gateway writes the row
-- (status `queued`) and its hand-off outbox event in one transaction; the
-- worker hands it to AgentField; a callback or the reconciler finishes it.
CREATE TABLE executions (
    id                      text PRIMARY KEY CHECK (id ~ '^exe_[0-9a-z]{26}$'),
    command                 text NOT NULL CHECK (command ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    input                   jsonb NOT NULL,
    actor_issuer            text NOT NULL,
    actor_subject           text NOT NULL,
    -- The command envelope the gateway signed: the agent node acts on
    -- nothing else.
    envelope                text NOT NULL,
    status                  text NOT NULL DEFAULT 'queued'
                            CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'timeout')),
    result                  jsonb,
    error                   jsonb,
    evidence_id             text,
    agentfield_execution_id text,
    agentfield_run_id       text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    handed_off_at           timestamptz,
    completed_at            timestamptz,
    CHECK ((status IN ('queued', 'running')) = (completed_at IS NULL))
);
CREATE INDEX executions_unfinished ON executions (created_at) WHERE status IN ('queued', 'running');
CREATE INDEX executions_agentfield ON executions (agentfield_execution_id);

-- Gateways waiting on `Prefer: wait` hear when an execution finishes.
CREATE FUNCTION executions_notify_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('anchor_execution_finished', TG_TABLE_SCHEMA || ' ' || NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER executions_finished AFTER UPDATE OF status ON executions
    FOR EACH ROW WHEN (OLD.status IN ('queued', 'running') AND NEW.status NOT IN ('queued', 'running'))
    EXECUTE FUNCTION executions_notify_finished();

-- What a skill did for an execution: written in the skill's own
-- transaction, so a command delivered twice takes effect once, and a
-- refusal (`rejected`) is answered the same way every time.
CREATE TABLE command_effects (
    execution_id text PRIMARY KEY REFERENCES executions (id),
    outcome      text CHECK (outcome IN ('applied', 'rejected')),
    result       jsonb,
    applied_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tickets (
    id                text PRIMARY KEY CHECK (id ~ '^tkt_[0-9a-z]{26}$'),
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description       text NOT NULL DEFAULT '' CHECK (length(description) <= 20000),
    priority          text NOT NULL CHECK (priority IN ('p1', 'p2', 'p3', 'p4')),
    status            text NOT NULL DEFAULT 'new'
                      CHECK (status IN ('new', 'triaged', 'in_progress', 'waiting_on_client', 'resolved', 'closed')),
    created_by_issuer text NOT NULL,
    created_by        text NOT NULL,
    execution_id      text NOT NULL UNIQUE REFERENCES executions (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tickets_status ON tickets (status, id);

CREATE TABLE ticket_comments (
    id            text PRIMARY KEY CHECK (id ~ '^cmt_[0-9a-z]{26}$'),
    ticket_id     text NOT NULL REFERENCES tickets (id),
    body          text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    visibility    text NOT NULL CHECK (visibility IN ('internal', 'public')),
    author_issuer text NOT NULL,
    author        text NOT NULL,
    execution_id  text NOT NULL UNIQUE REFERENCES executions (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_comments_ticket ON ticket_comments (ticket_id, id);

-- Who changed what, when, through which execution.
CREATE TABLE ticket_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id    text NOT NULL REFERENCES tickets (id),
    change       text NOT NULL CHECK (change IN ('created', 'status_changed', 'commented')),
    from_status  text,
    to_status    text,
    actor_issuer text NOT NULL,
    actor        text NOT NULL,
    execution_id text NOT NULL REFERENCES executions (id),
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_history_ticket ON ticket_history (ticket_id, id);
