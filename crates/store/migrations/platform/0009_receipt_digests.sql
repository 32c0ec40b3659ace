-- Receipts answer with the delivery id and the digest of the body first
-- accepted, so a replay's answer is the original receipt in full.
DROP FUNCTION platform.record_callback_receipt(text, text, text, text, jsonb);
DROP FUNCTION platform.callback_receipt(text, text);

CREATE FUNCTION platform.record_callback_receipt(
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
        ON CONFLICT ON CONSTRAINT callback_receipts_source_delivery_id_key DO NOTHING
        RETURNING r.id, r.outcome, r.received_at, r.body_sha256, false;
    IF NOT FOUND THEN
        RETURN QUERY SELECT r.id, r.outcome, r.received_at, r.body_sha256, true FROM platform.callback_receipts r
                      WHERE r.source = record_callback_receipt.source
                        AND r.delivery_id = record_callback_receipt.delivery_id
                        AND r.workspace_id = ws;
    END IF;
END
$$;

CREATE FUNCTION platform.callback_receipt(source text, delivery_id text)
RETURNS TABLE (id text, outcome jsonb, received_at timestamptz, body_sha256 text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT r.id, r.outcome, r.received_at, r.body_sha256 FROM platform.callback_receipts r
      JOIN platform.workspaces w ON w.id = r.workspace_id
     WHERE r.source = callback_receipt.source AND r.delivery_id = callback_receipt.delivery_id
       AND w.db_role = current_setting('role')
$$;

REVOKE ALL ON FUNCTION platform.record_callback_receipt(text, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION platform.callback_receipt(text, text) FROM PUBLIC;
DO $$
DECLARE
    grp text;
BEGIN
    SELECT installation.id || '_ws__all' INTO grp FROM platform.installation;
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.record_callback_receipt(text, text, text, text, jsonb) TO %I', grp);
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.callback_receipt(text, text) TO %I', grp);
END
$$;
