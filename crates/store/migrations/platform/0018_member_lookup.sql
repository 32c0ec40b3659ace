-- A workspace's unit of work may ask who its members are (to check that a
-- ticket's assignee is staff of the workspace) without reading the platform
-- tables: these functions take the workspace from the role the unit of
-- work switched to, like platform.enqueue, so no workspace sees another's.
CREATE FUNCTION platform.member_role(issuer text, subject text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT m.role
      FROM platform.memberships m
      JOIN platform.subjects s ON s.id = m.subject_id
      JOIN platform.workspaces w ON w.id = m.workspace_id
     WHERE w.db_role = current_setting('role') AND s.issuer = member_role.issuer AND s.subject = member_role.subject;
$$;
REVOKE ALL ON FUNCTION platform.member_role(text, text) FROM PUBLIC;

CREATE FUNCTION platform.members() RETURNS TABLE (issuer text, subject text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT s.issuer, s.subject, m.role
      FROM platform.memberships m
      JOIN platform.subjects s ON s.id = m.subject_id
      JOIN platform.workspaces w ON w.id = m.workspace_id
     WHERE w.db_role = current_setting('role')
     ORDER BY s.subject, s.issuer;
$$;
REVOKE ALL ON FUNCTION platform.members() FROM PUBLIC;

DO $$
DECLARE
    grp text;
BEGIN
    SELECT installation.id || '_ws__all' INTO grp FROM platform.installation;
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.member_role(text, text) TO %I', grp);
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.members() TO %I', grp);
END
$$;
