-- Queues, assignment, tags, merged and related tickets.

-- A queue is a team's inbox (configuration, written directly with a change
-- record). Its SLA policy, when set, is the policy of the tickets in it.
CREATE TABLE queues (
    id            text PRIMARY KEY CHECK (id ~ '^que_[0-9a-z]{26}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    description   text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    sla_policy_id text REFERENCES sla_policies (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX queues_name ON queues (lower(name));
CREATE INDEX queues_policy ON queues (sla_policy_id);

-- Who works a queue (staff of the workspace, by issuer and subject).
CREATE TABLE queue_members (
    queue_id text NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    issuer   text NOT NULL,
    subject  text NOT NULL,
    PRIMARY KEY (queue_id, issuer, subject)
);

ALTER TABLE tickets
    ADD COLUMN queue_id text REFERENCES queues (id),
    ADD COLUMN assignee_issuer text,
    ADD COLUMN assignee text,
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20),
    -- A merged ticket stays readable and points to the ticket it was merged into.
    ADD COLUMN merged_into text REFERENCES tickets (id) CHECK (merged_into <> id),
    ADD CONSTRAINT tickets_assignee_whole CHECK ((assignee_issuer IS NULL) = (assignee IS NULL));
CREATE INDEX tickets_queue ON tickets (queue_id, id);
CREATE INDEX tickets_assignee ON tickets (assignee, assignee_issuer, id);
CREATE INDEX tickets_tags ON tickets USING gin (tags);
CREATE INDEX tickets_merged_into ON tickets (merged_into) WHERE merged_into IS NOT NULL;

-- Related tickets: one row per pair, the smaller id first.
CREATE TABLE ticket_links (
    ticket_id    text NOT NULL REFERENCES tickets (id),
    related_id   text NOT NULL REFERENCES tickets (id),
    execution_id text NOT NULL REFERENCES executions (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, related_id),
    CHECK (ticket_id < related_id)
);
CREATE INDEX ticket_links_related ON ticket_links (related_id);

ALTER TABLE ticket_history DROP CONSTRAINT ticket_history_change_check;
ALTER TABLE ticket_history ADD CONSTRAINT ticket_history_change_check
    CHECK (change IN ('created', 'status_changed', 'commented', 'priority_changed', 'assigned', 'queued',
                      'tagged', 'merged', 'related'));
-- What an assignment, queue move, tagging, merge or link changed.
ALTER TABLE ticket_history ADD COLUMN detail jsonb;
