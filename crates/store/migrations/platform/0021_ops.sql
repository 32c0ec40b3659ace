-- The Ops centre's read model: one row per item that is, or was, in one of
-- its queues (an open alert, an open ticket, a failed execution), for every
-- workspace, so that "every client I may see" is one query whatever the
-- number of workspaces. The outbox keeps it up to date: each domain event
-- about such an item makes the worker read the item again in its workspace's
-- unit of work and put what it found here through platform.ops_put, which
-- takes the workspace from the role the unit of work switched to.
--
-- `version` is the source row's own clock (its last change): a refresh that
-- read an older version than the one stored loses, so refreshes may run in
-- any order and any number of times. An item that left every queue stays
-- (open = false) until pruned, so a late, older refresh cannot bring it back.
CREATE TABLE platform.ops_items (
    workspace_id bigint NOT NULL REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('alert', 'ticket', 'execution')),
    item_id      text NOT NULL CHECK (length(item_id) <= 64),
    version      timestamptz NOT NULL,
    open         boolean NOT NULL,
    -- Alerts: critical severity, held (snoozed) until, acknowledged.
    critical     boolean NOT NULL DEFAULT false,
    held_until   timestamptz,
    acknowledged boolean NOT NULL DEFAULT false,
    -- Tickets: nobody works it; its SLA is in its warning share or breached;
    -- the nearest deadline of a running clock.
    unassigned   boolean NOT NULL DEFAULT false,
    at_risk      boolean NOT NULL DEFAULT false,
    due_at       timestamptz,
    -- When it began (opened, created, finished) and what a row shows.
    since        timestamptz NOT NULL,
    title        text NOT NULL CHECK (length(title) <= 500),
    detail       jsonb NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, kind, item_id)
);
CREATE INDEX ops_critical ON platform.ops_items (since DESC) WHERE open AND kind = 'alert' AND critical;
CREATE INDEX ops_unassigned ON platform.ops_items (due_at, since) WHERE open AND kind = 'ticket' AND unassigned;
CREATE INDEX ops_at_risk ON platform.ops_items (due_at, since) WHERE open AND kind = 'ticket' AND at_risk;
CREATE INDEX ops_failed ON platform.ops_items (since DESC) WHERE open AND kind = 'execution';
CREATE INDEX ops_closed ON platform.ops_items (updated_at) WHERE NOT open;

-- Pages following the queues hear of every change (one notification per
-- workspace and transaction: PostgreSQL folds equal payloads).
CREATE FUNCTION platform.ops_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('anchor_ops', NEW.workspace_id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER ops_notify AFTER INSERT OR UPDATE ON platform.ops_items
    FOR EACH ROW EXECUTE FUNCTION platform.ops_notify();

-- The one way a workspace's unit of work writes the read model: its own
-- items only, and never older than what is there.
CREATE FUNCTION platform.ops_put(
    kind text, item_id text, version timestamptz, open boolean, since timestamptz, title text, detail jsonb,
    critical boolean DEFAULT false, held_until timestamptz DEFAULT NULL, acknowledged boolean DEFAULT false,
    unassigned boolean DEFAULT false, at_risk boolean DEFAULT false, due_at timestamptz DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
#variable_conflict use_column
DECLARE
    ws bigint;
BEGIN
    SELECT w.id INTO ws FROM platform.workspaces w WHERE w.db_role = current_setting('role');
    IF ws IS NULL THEN
        RAISE EXCEPTION 'platform.ops_put is for workspace units of work' USING ERRCODE = '42501';
    END IF;
    INSERT INTO platform.ops_items AS o
           (workspace_id, kind, item_id, version, open, critical, held_until, acknowledged,
            unassigned, at_risk, due_at, since, title, detail)
    VALUES (ws, ops_put.kind, ops_put.item_id, ops_put.version, ops_put.open, ops_put.critical,
            ops_put.held_until, ops_put.acknowledged, ops_put.unassigned, ops_put.at_risk, ops_put.due_at,
            ops_put.since, ops_put.title, ops_put.detail)
    ON CONFLICT (workspace_id, kind, item_id) DO UPDATE
       SET version = excluded.version, open = excluded.open, critical = excluded.critical,
           held_until = excluded.held_until, acknowledged = excluded.acknowledged,
           unassigned = excluded.unassigned, at_risk = excluded.at_risk, due_at = excluded.due_at,
           since = excluded.since, title = excluded.title, detail = excluded.detail, updated_at = now()
     WHERE o.version <= excluded.version
       AND (o.open, o.critical, o.held_until, o.acknowledged, o.unassigned, o.at_risk, o.due_at, o.title, o.detail)
           IS DISTINCT FROM
           (excluded.open, excluded.critical, excluded.held_until, excluded.acknowledged, excluded.unassigned,
            excluded.at_risk, excluded.due_at, excluded.title, excluded.detail);
END
$$;
REVOKE ALL ON FUNCTION platform.ops_put(text, text, timestamptz, boolean, timestamptz, text, jsonb, boolean,
    timestamptz, boolean, boolean, boolean, timestamptz) FROM PUBLIC;

DO $$
DECLARE
    grp text;
BEGIN
    SELECT installation.id || '_ws__all' INTO grp FROM platform.installation;
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.ops_put(text, text, timestamptz, boolean, timestamptz, text,
        jsonb, boolean, timestamptz, boolean, boolean, boolean, timestamptz) TO %I', grp);
END
$$;

-- ... and of every event that goes to the dead letters (the condition is
-- checked before anything is queued, so other updates cost nothing).
CREATE FUNCTION platform.outbox_failed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('anchor_ops', coalesce(NEW.workspace_id, 0)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_failed_notify AFTER UPDATE OF state ON platform.outbox_events
    FOR EACH ROW WHEN (NEW.state = 'failed' AND OLD.state IS DISTINCT FROM 'failed')
    EXECUTE FUNCTION platform.outbox_failed_notify();

-- Who dealt with a dead letter: replayed or discarded from Ops, by whom.
ALTER TABLE platform.outbox_events ADD COLUMN handled_by text;
