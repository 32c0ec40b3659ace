-- The series each agent reports (a metric's name and labels, or a check's
-- name), so that an agent's series are bounded (a setting) and its latest
-- values are found per series rather than by sorting a day of samples.
CREATE TABLE telemetry_series (
    agent_id      text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('metric', 'check')),
    name          text NOT NULL,
    -- The metric's labels ('{}' for none; always '{}' for a check).
    labels        jsonb NOT NULL DEFAULT '{}',
    -- Identifies the series within the agent's (labels can be long).
    key           uuid NOT NULL GENERATED ALWAYS AS (md5(kind || E'\n' || name || E'\n' || labels::text)::uuid) STORED,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    -- Refreshed at most hourly; series silent past retention are forgotten.
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, key)
);
CREATE INDEX telemetry_series_seen ON telemetry_series (last_seen_at);

-- The series of the last day's samples and check results.
INSERT INTO telemetry_series (agent_id, kind, name, labels, first_seen_at, last_seen_at)
SELECT agent_id, 'metric', name, coalesce(labels, '{}'), min(at), max(at)
  FROM metric_samples WHERE at > now() - interval '1 day'
 GROUP BY agent_id, name, coalesce(labels, '{}')
ON CONFLICT DO NOTHING;
INSERT INTO telemetry_series (agent_id, kind, name, first_seen_at, last_seen_at)
SELECT agent_id, 'check', name, min(at), max(at)
  FROM check_results WHERE at > now() - interval '1 day'
 GROUP BY agent_id, name
ON CONFLICT DO NOTHING;
