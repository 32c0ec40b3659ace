-- Runbooks (configuration: written by those who manage the workspace, each
-- save a new version, recorded with its signed credential) and their runs
-- (domain state: started and stepped through by commands). A run follows
-- the version it started on; each step done records who, when, a note and,
-- for a command step, the execution that ran the command.
CREATE TABLE runbooks (
    id             text PRIMARY KEY CHECK (id ~ '^rbk_[0-9a-z]{26}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description    text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    -- What it is for: any of an asset type, an alert rule, a ticket queue.
    asset_type     text,
    rule_id        text,
    queue_id       text,
    version        integer NOT NULL CHECK (version > 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX runbooks_name ON runbooks (lower(name));
CREATE INDEX runbooks_rule ON runbooks (rule_id) WHERE rule_id IS NOT NULL;
CREATE INDEX runbooks_asset_type ON runbooks (asset_type) WHERE asset_type IS NOT NULL;
CREATE INDEX runbooks_queue ON runbooks (queue_id) WHERE queue_id IS NOT NULL;

CREATE TABLE runbook_versions (
    runbook_id text NOT NULL REFERENCES runbooks (id) ON DELETE CASCADE,
    version    integer NOT NULL CHECK (version > 0),
    steps      jsonb NOT NULL CHECK (jsonb_typeof(steps) = 'array'),
    saved_by   jsonb NOT NULL,
    saved_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (runbook_id, version)
);

CREATE TABLE runbook_runs (
    id           text PRIMARY KEY CHECK (id ~ '^rbr_[0-9a-z]{26}$'),
    runbook_id   text NOT NULL,
    version      integer NOT NULL,
    ticket_id    text,
    alert_id     text,
    asset_id     text,
    started_by   jsonb NOT NULL,
    execution_id text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    FOREIGN KEY (runbook_id, version) REFERENCES runbook_versions (runbook_id, version)
);
CREATE INDEX runbook_runs_ticket ON runbook_runs (ticket_id) WHERE ticket_id IS NOT NULL;
CREATE INDEX runbook_runs_alert ON runbook_runs (alert_id) WHERE alert_id IS NOT NULL;

CREATE TABLE runbook_run_steps (
    run_id       text NOT NULL REFERENCES runbook_runs (id) ON DELETE CASCADE,
    step         integer NOT NULL CHECK (step > 0),
    done_by      jsonb NOT NULL,
    note         text CHECK (length(note) <= 20000),
    -- The execution that ran a command step's command.
    ran          text,
    execution_id text NOT NULL,
    done_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step)
);
