-- Teams: an MSP's staff in groups (service desk, NOC, projects), each team
-- granted a staff role in a set of workspaces, or in every workspace,
-- present and future. A person's roles in a workspace are their membership's
-- and those of every grant of every team they are in; authorization reads
-- them on every request, so a change takes effect on the next one.
CREATE TABLE platform.teams (
    id          text PRIMARY KEY CHECK (id ~ '^tea_[0-9a-z]{26}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX teams_name ON platform.teams (lower(name));

CREATE TABLE platform.team_members (
    team_id    text NOT NULL REFERENCES platform.teams (id) ON DELETE CASCADE,
    subject_id bigint NOT NULL REFERENCES platform.subjects (id) ON DELETE CASCADE,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, subject_id)
);
CREATE INDEX team_members_subject ON platform.team_members (subject_id);

-- A grant names one workspace, or none: every workspace, present and future.
-- Staff roles only: client roles come from a person's own membership.
CREATE TABLE platform.team_grants (
    team_id      text NOT NULL REFERENCES platform.teams (id) ON DELETE CASCADE,
    workspace_id bigint REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('msp_admin', 'technician', 'finance', 'auditor')),
    granted_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX team_grants_one ON platform.team_grants (team_id, coalesce(workspace_id, 0));
CREATE INDEX team_grants_workspace ON platform.team_grants (workspace_id);

-- A subject's roles in a workspace: its membership's and its teams', most
-- powerful first.
CREATE FUNCTION platform.roles_in(workspace bigint, subject bigint) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
    SELECT coalesce(array_agg(r.role ORDER BY array_position(
               ARRAY['msp_admin', 'technician', 'finance', 'auditor', 'client_admin', 'client_user'], r.role)), '{}')
      FROM (SELECT m.role FROM platform.memberships m
             WHERE m.workspace_id = roles_in.workspace AND m.subject_id = roles_in.subject
            UNION
            SELECT g.role FROM platform.team_members t
              JOIN platform.team_grants g ON g.team_id = t.team_id
             WHERE t.subject_id = roles_in.subject
               AND (g.workspace_id = roles_in.workspace OR g.workspace_id IS NULL)) r;
$$;
REVOKE ALL ON FUNCTION platform.roles_in(bigint, bigint) FROM PUBLIC;

-- A workspace's unit of work asks whether someone is its staff (a ticket's
-- assignee, a queue's member): their most powerful role there, through a
-- membership or a team.
CREATE OR REPLACE FUNCTION platform.member_role(issuer text, subject text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT (platform.roles_in(w.id, s.id))[1]
      FROM platform.workspaces w, platform.subjects s
     WHERE w.db_role = current_setting('role') AND s.issuer = member_role.issuer AND s.subject = member_role.subject;
$$;

-- Its staff: members, and the members of teams granted a role there.
CREATE OR REPLACE FUNCTION platform.members() RETURNS TABLE (issuer text, subject text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT s.issuer, s.subject, (platform.roles_in(w.id, s.id))[1]
      FROM platform.workspaces w
      JOIN platform.subjects s ON s.id IN (
               SELECT m.subject_id FROM platform.memberships m WHERE m.workspace_id = w.id
               UNION
               SELECT t.subject_id FROM platform.team_members t JOIN platform.team_grants g ON g.team_id = t.team_id
                WHERE g.workspace_id = w.id OR g.workspace_id IS NULL)
     WHERE w.db_role = current_setting('role')
     ORDER BY s.subject, s.issuer;
$$;
