-- A claim rewrites only columns no index covers, so PostgreSQL makes it a
-- heap-only (HOT) update: the new row version stays on its page and no index
-- gets an entry. The queue's index now covers every event not yet settled,
-- pending or leased, through a column derived from `state`: a claim
-- (pending -> processing) leaves it unchanged; only settling (delivered or
-- failed) takes the event out. A claim skips live leases by their row, and
-- takes an expired lease over at once: no separate reaper and no index on
-- leases.

-- Room on each page for the claims' new row versions (set first: adding the
-- stored column below rewrites the table, and the rewrite honours it).
ALTER TABLE platform.outbox_events SET (fillfactor = 70);

ALTER TABLE platform.outbox_events
    ADD COLUMN settled boolean GENERATED ALWAYS AS (state IN ('delivered', 'failed')) STORED;

DROP INDEX platform.outbox_ready;
DROP INDEX platform.outbox_leased;
DROP INDEX platform.outbox_failed;

-- Claims walk the distinct workspaces with unsettled events through this
-- index (installation-level events, without a workspace, count as workspace 0).
CREATE INDEX outbox_unsettled ON platform.outbox_events ((coalesce(workspace_id, 0)), available_at, id)
    WHERE NOT settled;
-- The dead letters: settled, never delivered.
CREATE INDEX outbox_dead_letters ON platform.outbox_events (created_at)
    WHERE settled AND delivered_at IS NULL;

-- The claim, one statement: marks the calling worker's previous batch
-- delivered, walks the workspaces with unsettled events round robin from the
-- one after the workspace served last by a loose index scan (one probe each,
-- and only as many as it takes to fill the batch, however many workspaces
-- there are: recursive queries are evaluated only as far as they are read),
-- takes at most `per_workspace` events each with FOR UPDATE SKIP LOCKED
-- (workspaces whose events all wait for a retry cost a probe and never crowd
-- out the others), and leases them. Planning this statement costs as much as
-- running it and no parameter value changes the best plan, so it is planned
-- once per session (a generic plan), not on every call.
CREATE FUNCTION platform.outbox_claim(
    worker text, batch_size bigint, per_workspace bigint, topics text[], lease_secs float8,
    delivered bigint[], served_last bigint
) RETURNS TABLE (id bigint, workspace_id bigint, topic text, payload jsonb, attempts integer, expired boolean, spent boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH RECURSIVE done AS (
        UPDATE platform.outbox_events
           SET state = 'delivered', delivered_at = now(), locked_until = NULL, locked_by = NULL, last_error = NULL
         WHERE outbox_events.id = ANY(outbox_claim.delivered) AND locked_by = outbox_claim.worker
           AND state = 'processing'
    ), after_last(key) AS (
        -- The workspaces with unsettled events after the one served last, in order, one index
        -- probe each, found only as far as `picked` asks for them ...
        SELECT (SELECT min(coalesce(e.workspace_id, 0)) FROM platform.outbox_events e
                 WHERE NOT e.settled AND coalesce(e.workspace_id, 0) > outbox_claim.served_last)
        UNION ALL
        SELECT (SELECT min(coalesce(o.workspace_id, 0)) FROM platform.outbox_events o
                 WHERE NOT o.settled AND coalesce(o.workspace_id, 0) > after_last.key)
          FROM after_last WHERE after_last.key IS NOT NULL
    ), from_start(key) AS (
        -- ... then from the start, up to it: round robin.
        SELECT (SELECT min(coalesce(e.workspace_id, 0)) FROM platform.outbox_events e WHERE NOT e.settled)
        UNION ALL
        SELECT (SELECT min(coalesce(o.workspace_id, 0)) FROM platform.outbox_events o
                 WHERE NOT o.settled AND coalesce(o.workspace_id, 0) > from_start.key)
          FROM from_start WHERE from_start.key < outbox_claim.served_last
    ), chosen AS (
        SELECT key FROM after_last WHERE key IS NOT NULL
        UNION ALL
        SELECT key FROM from_start WHERE key <= outbox_claim.served_last
    ), picked AS (
        SELECT p.id, p.expired,
               -- A lease that ran out on the event's last attempt: the event
               -- kills its worker every time, so it goes to the dead letters.
               p.expired AND p.attempts >= p.max_attempts AS spent
          FROM chosen CROSS JOIN LATERAL (
            SELECT o.id, o.state = 'processing' AS expired, o.attempts, o.max_attempts
              FROM platform.outbox_events o
             WHERE NOT o.settled AND coalesce(o.workspace_id, 0) = chosen.key
               AND o.available_at <= now() AND o.topic = ANY(outbox_claim.topics)
               AND (o.state = 'pending' OR o.locked_until < now())
               AND o.id <> ALL(outbox_claim.delivered)
             ORDER BY o.available_at, o.id
             LIMIT outbox_claim.per_workspace
             FOR UPDATE SKIP LOCKED
        ) p
        LIMIT outbox_claim.batch_size
    )
    UPDATE platform.outbox_events o
       SET state = CASE WHEN picked.spent THEN 'failed' ELSE 'processing' END,
           attempts = o.attempts + CASE WHEN picked.spent THEN 0 ELSE 1 END,
           locked_until = CASE WHEN NOT picked.spent THEN now() + make_interval(secs => outbox_claim.lease_secs) END,
           locked_by = CASE WHEN NOT picked.spent THEN outbox_claim.worker END,
           last_error = CASE WHEN picked.expired
                             THEN 'lease expired: the worker stopped while delivering'
                             ELSE o.last_error END
      FROM picked WHERE o.id = picked.id
    RETURNING o.id, o.workspace_id, o.topic, o.payload, o.attempts, picked.expired, picked.spent;
END
$$;
REVOKE ALL ON FUNCTION platform.outbox_claim(text, bigint, bigint, text[], float8, bigint[], bigint) FROM PUBLIC;
