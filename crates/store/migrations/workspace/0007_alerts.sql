-- Alerting: rules over telemetry, the state of each condition, alerts.

CREATE TABLE alert_rules (
    id            text PRIMARY KEY CHECK (id ~ '^rul_[0-9a-z]{26}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- metric: a sample compared with a threshold; check: a failing check;
    -- agent_offline: no batch for duration_secs.
    kind          text NOT NULL CHECK (kind IN ('metric', 'check', 'agent_offline')),
    metric        text,
    comparison    text CHECK (comparison IN ('>', '>=', '<', '<=')),
    threshold     double precision,
    -- How long the condition must hold before the alert opens, and be clear
    -- before it resolves (flap suppression).
    duration_secs integer NOT NULL DEFAULT 0 CHECK (duration_secs >= 0),
    severity      text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'metric') = (metric IS NOT NULL AND comparison IS NOT NULL AND threshold IS NOT NULL))
);

-- Sensible defaults every workspace starts with.
INSERT INTO alert_rules (id, name, kind, metric, comparison, threshold, duration_secs, severity) VALUES
    ('rul_00000000000000000000000001', 'Disk almost full', 'metric', 'disk.used_percent', '>=', 90, 0, 'critical'),
    ('rul_00000000000000000000000002', 'Memory exhausted', 'metric', 'memory.used_percent', '>=', 95, 300, 'warning'),
    ('rul_00000000000000000000000003', 'Check failing', 'check', NULL, NULL, NULL, 0, 'warning'),
    ('rul_00000000000000000000000004', 'Agent offline', 'agent_offline', NULL, NULL, NULL, 240, 'critical');

-- Per (rule, agent, subject): since when the condition holds or is clear.
CREATE TABLE alert_conditions (
    rule_id         text NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    agent_id        text NOT NULL,
    -- What the condition is about on that agent: a mount, a check's name, ''.
    subject         text NOT NULL,
    breaching_since timestamptz,
    clear_since     timestamptz,
    PRIMARY KEY (rule_id, agent_id, subject)
);

CREATE TABLE alerts (
    id          text PRIMARY KEY CHECK (id ~ '^alr_[0-9a-z]{26}$'),
    rule_id     text NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    agent_id    text NOT NULL,
    asset_id    text,
    subject     text NOT NULL,
    severity    text NOT NULL,
    state       text NOT NULL CHECK (state IN ('open', 'resolved')),
    summary     text NOT NULL,
    value       double precision,
    -- Re-opened within a minute of resolving: counted, not a new alert.
    flaps       integer NOT NULL DEFAULT 0,
    ticket_id   text,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
-- One live alert per (rule, agent, subject).
CREATE UNIQUE INDEX alerts_live ON alerts (rule_id, agent_id, subject) WHERE state = 'open';
CREATE INDEX alerts_recent ON alerts (id DESC);

-- Tickets opened for an alert name the machine and the alert.
ALTER TABLE tickets ADD COLUMN asset_id text;
ALTER TABLE tickets ADD COLUMN alert_id text;
