-- Retention deletes by time; automation finds the commands of an alert; a
-- reinstalled machine is recognised by its machine id; each batch records
-- what it routed (the alert transitions it caused, [{alert_id, transition}]);
-- ingest finds what is going on for an agent in one indexed query.
CREATE INDEX check_results_at ON check_results (at);
CREATE INDEX telemetry_ingest_batches_received ON telemetry_ingest_batches (received_at);
CREATE INDEX executions_alert ON executions ((input->>'alert_id')) WHERE input ? 'alert_id';
CREATE INDEX assets_machine ON assets ((facts->>'machine_id')) WHERE facts ? 'machine_id';
ALTER TABLE telemetry_ingest_batches ADD COLUMN routed jsonb NOT NULL DEFAULT '[]';
CREATE INDEX alert_conditions_agent ON alert_conditions (agent_id);
CREATE INDEX alerts_agent_open ON alerts (agent_id) WHERE state = 'open';
