-- Managed machines and what their agents report.

-- The CMDB's first asset kind: a machine with an enrolled agent.
CREATE TABLE assets (
    id         text PRIMARY KEY CHECK (id ~ '^ast_[0-9a-z]{26}$'),
    agent_id   text UNIQUE,
    hostname   text NOT NULL,
    os         text NOT NULL DEFAULT '',
    -- Host facts at enrollment, then the latest inventory snapshot.
    facts      jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every accepted batch, once per (agent, sequence).
CREATE TABLE telemetry_ingest_batches (
    id           text PRIMARY KEY CHECK (id ~ '^tb_[0-9a-z]{26}$'),
    agent_id     text NOT NULL,
    sequence     bigint NOT NULL CHECK (sequence >= 0),
    sent_at      timestamptz,
    received_at  timestamptz NOT NULL DEFAULT now(),
    samples      integer NOT NULL,
    checks       integer NOT NULL,
    events       jsonb NOT NULL DEFAULT '[]',
    UNIQUE (agent_id, sequence)
);

-- Metric samples, partitioned by day (the partition job creates the days
-- ahead and drops those past retention; rows outside go to the default).
CREATE TABLE metric_samples (
    agent_id text NOT NULL,
    at       timestamptz NOT NULL,
    name     text NOT NULL,
    value    double precision NOT NULL,
    labels   jsonb
) PARTITION BY RANGE (at);
CREATE TABLE metric_samples_default PARTITION OF metric_samples DEFAULT;
CREATE INDEX metric_samples_series ON metric_samples (agent_id, name, at);

CREATE TABLE check_results (
    agent_id text NOT NULL,
    at       timestamptz NOT NULL,
    name     text NOT NULL,
    status   text NOT NULL CHECK (status IN ('passing', 'warning', 'failing')),
    output   text NOT NULL DEFAULT ''
);
CREATE INDEX check_results_agent ON check_results (agent_id, name, at);
