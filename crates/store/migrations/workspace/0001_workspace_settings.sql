-- Runs with search_path set to the workspace's own schema, as the schema's
-- owner; the workspace role receives table privileges through the default
-- privileges set when the schema was provisioned.

-- Workspace-level runtime settings (the runtime configuration plane fills
-- these in; keys are namespaced like `sla.business_hours`).
CREATE TABLE workspace_settings (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);
