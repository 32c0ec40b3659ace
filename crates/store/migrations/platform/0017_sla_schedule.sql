-- When each workspace next has an SLA clock to look at: the recurring
-- `sla.clocks` job reads this one small table instead of visiting every
-- workspace. A workspace's unit of work moves its own entry earlier
-- (`platform.sla_schedule`); the job, holding the entry's lock
-- (`platform.sla_lock_schedule`), sets it to what is left
-- (`platform.sla_reschedule`). Like `platform.enqueue`, these take the
-- workspace from the role the unit of work switched to, never from an
-- argument.
CREATE TABLE platform.sla_schedule (
    workspace_id  bigint PRIMARY KEY REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    next_check_at timestamptz NOT NULL
);
CREATE INDEX sla_schedule_due ON platform.sla_schedule (next_check_at);

CREATE FUNCTION platform.sla_workspace() RETURNS bigint LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog AS $$
DECLARE
    ws bigint;
BEGIN
    SELECT w.id INTO ws FROM platform.workspaces w WHERE w.db_role = current_setting('role');
    IF ws IS NULL THEN
        RAISE EXCEPTION 'the SLA schedule is for workspace units of work' USING ERRCODE = '42501';
    END IF;
    RETURN ws;
END
$$;
REVOKE ALL ON FUNCTION platform.sla_workspace() FROM PUBLIC;

-- A clock of this workspace wants looking at no later than `at`.
CREATE FUNCTION platform.sla_schedule(at timestamptz) RETURNS void LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog AS $$
    INSERT INTO platform.sla_schedule AS s (workspace_id, next_check_at)
    VALUES (platform.sla_workspace(), sla_schedule.at)
    ON CONFLICT (workspace_id) DO UPDATE SET next_check_at = least(s.next_check_at, EXCLUDED.next_check_at);
$$;
REVOKE ALL ON FUNCTION platform.sla_schedule(timestamptz) FROM PUBLIC;

-- Locks this workspace's entry until the unit of work ends: schedules made
-- meanwhile wait and then apply on top of what the job sets.
CREATE FUNCTION platform.sla_lock_schedule() RETURNS void LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog AS $$
    SELECT 1 FROM platform.sla_schedule WHERE workspace_id = platform.sla_workspace() FOR UPDATE;
$$;
REVOKE ALL ON FUNCTION platform.sla_lock_schedule() FROM PUBLIC;

-- The next look this workspace needs (none: `at` is null).
CREATE FUNCTION platform.sla_reschedule(at timestamptz) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog AS $$
BEGIN
    IF at IS NULL THEN
        DELETE FROM platform.sla_schedule WHERE workspace_id = platform.sla_workspace();
    ELSE
        INSERT INTO platform.sla_schedule (workspace_id, next_check_at) VALUES (platform.sla_workspace(), at)
        ON CONFLICT (workspace_id) DO UPDATE SET next_check_at = EXCLUDED.next_check_at;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION platform.sla_reschedule(timestamptz) FROM PUBLIC;

DO $$
DECLARE
    grp text;
BEGIN
    SELECT installation.id || '_ws__all' INTO grp FROM platform.installation;
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.sla_workspace() TO %I', grp);
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.sla_schedule(timestamptz) TO %I', grp);
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.sla_lock_schedule() TO %I', grp);
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.sla_reschedule(timestamptz) TO %I', grp);
END
$$;
