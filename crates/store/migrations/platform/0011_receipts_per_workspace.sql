-- Delivery ids are unique per workspace, not across the installation: two
-- workspaces may register senders of the same name that reuse an id (a
-- sender fanning one message out to several customers does), and one
-- workspace's receipts must never block or answer another's deliveries.
ALTER TABLE platform.callback_receipts
    DROP CONSTRAINT callback_receipts_source_delivery_id_key,
    ADD CONSTRAINT callback_receipts_delivery UNIQUE (workspace_id, source, delivery_id);

CREATE OR REPLACE FUNCTION platform.record_callback_receipt(
    new_id text, source text, delivery_id text, body_sha256 text, outcome jsonb
) RETURNS TABLE (receipt_id text, first_outcome jsonb, first_received_at timestamptz, first_body_sha256 text, replay boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    ws bigint;
BEGIN
    SELECT w.id INTO ws FROM platform.workspaces w WHERE w.db_role = current_setting('role');
    IF ws IS NULL THEN
        RAISE EXCEPTION 'platform.record_callback_receipt is for workspace units of work' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
        INSERT INTO platform.callback_receipts AS r (id, workspace_id, source, delivery_id, body_sha256, outcome)
        VALUES (record_callback_receipt.new_id, ws, record_callback_receipt.source, record_callback_receipt.delivery_id,
                record_callback_receipt.body_sha256, record_callback_receipt.outcome)
        ON CONFLICT ON CONSTRAINT callback_receipts_delivery DO NOTHING
        RETURNING r.id, r.outcome, r.received_at, r.body_sha256, false;
    IF NOT FOUND THEN
        RETURN QUERY SELECT r.id, r.outcome, r.received_at, r.body_sha256, true FROM platform.callback_receipts r
                      WHERE r.source = record_callback_receipt.source
                        AND r.delivery_id = record_callback_receipt.delivery_id
                        AND r.workspace_id = ws;
    END IF;
END
$$;
