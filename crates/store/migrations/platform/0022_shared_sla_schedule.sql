-- Planning a clock no longer serialises a workspace's units of work.
--
-- `platform.sla_schedule` (0017) upserted the workspace's one entry with
-- `least(...)`. An upsert locks the row it meets even when it changes
-- nothing, so every unit of work that planned a clock (every new ticket)
-- held the workspace's entry until it committed, and commands in one
-- workspace ran one after the other from planning to commit.
--
-- Now an entry that already asks for a look no later than `at` is only held
-- shared: units of work planning clocks run side by side, while the
-- recurring job's exclusive lock (`platform.sla_lock_schedule`) still waits
-- for them to commit, so it reads their clocks when it sets what is left.
-- A unit of work arriving while the job holds the entry waits for it, then
-- looks at the entry the job left (a row the job moved past `at` is not
-- held, and the upsert below moves it earlier). Only an entry to move
-- earlier, or a missing one, is written, under the exclusive lock as
-- before. (A unit of work that first holds the entry shared and then moves
-- it earlier asks for the exclusive lock while holding the shared one; two
-- doing so at once is a deadlock PostgreSQL breaks by failing one of them,
-- which is retried like any failed command. One plan per unit of work, the
-- usual case, never does.)
CREATE OR REPLACE FUNCTION platform.sla_schedule(at timestamptz) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog AS $$
DECLARE
    ws bigint := platform.sla_workspace();
BEGIN
    PERFORM 1 FROM platform.sla_schedule s
     WHERE s.workspace_id = ws AND s.next_check_at <= sla_schedule.at
       FOR SHARE;
    IF FOUND THEN
        RETURN;
    END IF;
    INSERT INTO platform.sla_schedule AS s (workspace_id, next_check_at)
    VALUES (ws, sla_schedule.at)
    ON CONFLICT (workspace_id) DO UPDATE SET next_check_at = least(s.next_check_at, EXCLUDED.next_check_at);
END
$$;
REVOKE ALL ON FUNCTION platform.sla_schedule(timestamptz) FROM PUBLIC;
