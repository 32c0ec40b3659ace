-- A workspace's unit of work may read how its own agents are (last seen,
-- revoked) to show them beside their assets, without reading the platform
-- tables: the workspace comes from the role the unit of work switched to,
-- like platform.members(), so no workspace sees another's agents.
CREATE FUNCTION platform.agent_states(ids text[])
RETURNS TABLE (id text, last_seen_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT a.id, a.last_seen_at, a.revoked_at
      FROM platform.agents a
      JOIN platform.workspaces w ON w.id = a.workspace_id
     WHERE w.db_role = current_setting('role') AND a.id = ANY (agent_states.ids);
$$;
REVOKE ALL ON FUNCTION platform.agent_states(text[]) FROM PUBLIC;

DO $$
DECLARE
    grp text;
BEGIN
    SELECT installation.id || '_ws__all' INTO grp FROM platform.installation;
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.agent_states(text[]) TO %I', grp);
END
$$;
