-- The dispatcher's claim, as a function so that it can carry its planner
-- setting: within one workspace the oldest ready events must come from an
-- ordered scan of `outbox_ready` that stops after `per_ws` rows. Left to
-- its costs the planner prefers a bitmap scan of the workspace's whole
-- backlog and a sort, which makes every claim as slow as the backlog is long.
-- (PL/pgSQL, so the plan is prepared once per connection.)
--
-- One statement: marks the previous batch delivered, finds the workspaces
-- with pending work by a loose index scan (one probe each), serves them
-- round robin from the one after `last_served` (workspaces whose events all
-- wait cost one probe and never crowd out the others), at most `per_ws`
-- events each and `batch` in all, locked with SKIP LOCKED and leased.
CREATE FUNCTION platform.claim_outbox(
    worker text, batch bigint, per_ws bigint, topics text[], lease_secs double precision,
    settled bigint[], last_served bigint
) RETURNS TABLE (id bigint, workspace_id bigint, topic text, payload jsonb, attempts integer)
LANGUAGE plpgsql SET search_path = pg_catalog SET enable_bitmapscan = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH RECURSIVE done AS (
        UPDATE platform.outbox_events
           SET state = 'delivered', delivered_at = now(), locked_until = NULL, locked_by = NULL, last_error = NULL
         WHERE outbox_events.id = ANY(claim_outbox.settled) AND locked_by = claim_outbox.worker
           AND state = 'processing'
    ), ws(key) AS (
        SELECT min(coalesce(e.workspace_id, 0)) FROM platform.outbox_events e WHERE e.state = 'pending'
        UNION ALL
        SELECT (SELECT min(coalesce(o.workspace_id, 0)) FROM platform.outbox_events o
                 WHERE o.state = 'pending' AND coalesce(o.workspace_id, 0) > ws.key)
          FROM ws WHERE ws.key IS NOT NULL
    ), chosen AS (
        SELECT key FROM ws WHERE key IS NOT NULL ORDER BY key <= claim_outbox.last_served, key
    ), picked AS (
        SELECT p.id FROM chosen CROSS JOIN LATERAL (
            SELECT o.id FROM platform.outbox_events o
             WHERE o.state = 'pending' AND coalesce(o.workspace_id, 0) = chosen.key
               AND o.available_at <= now() AND o.topic = ANY(claim_outbox.topics)
             ORDER BY o.available_at, o.id
             LIMIT claim_outbox.per_ws
             FOR UPDATE SKIP LOCKED
        ) p
        LIMIT claim_outbox.batch
    )
    UPDATE platform.outbox_events o
       SET state = 'processing', attempts = o.attempts + 1,
           locked_until = now() + make_interval(secs => claim_outbox.lease_secs), locked_by = claim_outbox.worker
      FROM picked WHERE o.id = picked.id
    RETURNING o.id, o.workspace_id, o.topic, o.payload, o.attempts;
END
$$;
