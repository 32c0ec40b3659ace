-- The durable outbox: every effect that leaves a transaction is a row
-- written in that same transaction, delivered at least once by workers.

CREATE TABLE platform.outbox_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL for installation-level events.
    workspace_id bigint REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    topic        text NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
    payload      jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'processing', 'delivered', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 12 CHECK (max_attempts > 0),
    available_at timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    locked_by    text,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
-- Claims walk the distinct workspaces with pending work through this index
-- (installation-level events, without a workspace, count as workspace 0).
CREATE INDEX outbox_ready ON platform.outbox_events ((coalesce(workspace_id, 0)), available_at, id) WHERE state = 'pending';
CREATE INDEX outbox_leased ON platform.outbox_events (locked_until) WHERE state = 'processing';
CREATE INDEX outbox_failed ON platform.outbox_events (created_at) WHERE state = 'failed';

-- Wake workers when work arrives (they also poll, in case a notification is missed).
CREATE FUNCTION platform.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('anchor_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON platform.outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION platform.outbox_notify();

-- The one path from a workspace's unit of work into the outbox. It runs as
-- its owner, takes the workspace from the role the unit of work switched to
-- (never from an argument), so a workspace can only enqueue its own events.
CREATE FUNCTION platform.enqueue(topic text, payload jsonb, delay interval DEFAULT '0 seconds')
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    ws bigint;
    new_id bigint;
BEGIN
    SELECT w.id INTO ws FROM platform.workspaces w WHERE w.db_role = current_setting('role');
    IF ws IS NULL THEN
        RAISE EXCEPTION 'platform.enqueue is for workspace units of work' USING ERRCODE = '42501';
    END IF;
    INSERT INTO platform.outbox_events (workspace_id, topic, payload, available_at)
    VALUES (ws, enqueue.topic, enqueue.payload, now() + enqueue.delay)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION platform.enqueue(text, jsonb, interval) FROM PUBLIC;

-- Every workspace role reaches the path through one group role per
-- installation (`<installation>_ws__all`; `__` cannot occur in a workspace
-- role's name). Joining a group adds a membership row, so provisioning
-- workspaces in parallel never contends on one object's privileges.
DO $$
DECLARE
    grp text;
    r record;
BEGIN
    SELECT id || '_ws__all' INTO grp FROM platform.installation;
    EXECUTE format('CREATE ROLE %I NOLOGIN', grp);
    EXECUTE format('GRANT USAGE ON SCHEMA platform TO %I', grp);
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.enqueue(text, jsonb, interval) TO %I', grp);
    FOR r IN SELECT db_role FROM platform.workspaces LOOP
        EXECUTE format('ALTER ROLE %I INHERIT', r.db_role);
        EXECUTE format('GRANT %I TO %I', grp, r.db_role);
    END LOOP;
END
$$;

-- Recurring jobs: whoever moves next_run_at forward runs the job, so each
-- occurrence runs once across all worker replicas.
CREATE TABLE platform.recurring_jobs (
    name        text PRIMARY KEY,
    every_secs  integer NOT NULL CHECK (every_secs > 0),
    next_run_at timestamptz NOT NULL DEFAULT now(),
    last_run_at timestamptz,
    last_error  text
);
