-- Producers may give an event more attempts than the default: a command's
-- hand-off to AgentField keeps trying for as long as its envelope is valid.
DROP FUNCTION platform.enqueue(text, jsonb, interval);

CREATE FUNCTION platform.enqueue(
    topic text, payload jsonb, delay interval DEFAULT '0 seconds', max_attempts integer DEFAULT 12
)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    ws bigint;
    new_id bigint;
BEGIN
    SELECT w.id INTO ws FROM platform.workspaces w WHERE w.db_role = current_setting('role');
    IF ws IS NULL THEN
        RAISE EXCEPTION 'platform.enqueue is for workspace units of work' USING ERRCODE = '42501';
    END IF;
    INSERT INTO platform.outbox_events (workspace_id, topic, payload, available_at, max_attempts)
    VALUES (ws, enqueue.topic, enqueue.payload, now() + enqueue.delay, enqueue.max_attempts)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION platform.enqueue(text, jsonb, interval, integer) FROM PUBLIC;
DO $$
DECLARE
    grp text;
BEGIN
    SELECT installation.id || '_ws__all' INTO grp FROM platform.installation;
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.enqueue(text, jsonb, interval, integer) TO %I', grp);
END
$$;
