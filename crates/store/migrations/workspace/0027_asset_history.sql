-- An asset's page lists the commands that touched it (named it in their
-- arguments, or created it): found by index, however many executions.
CREATE INDEX executions_input_asset ON executions ((input->>'asset_id'), created_at) WHERE input ? 'asset_id';
CREATE INDEX executions_result_asset ON executions ((result->>'asset_id'), created_at) WHERE result ? 'asset_id';
