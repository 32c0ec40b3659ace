-- Claims commit without waiting for the disk.
--
-- A claim is bookkeeping that a crash may forget without harm: a lost lease
-- makes its events claimable again (delivered again, at least once), a lost
-- "delivered" mark delivers them again, and a lost attempt count gives one
-- attempt more. The write-ahead log is flushed in order, so a handler's own
-- (synchronous) commit made after the claim also makes the claim durable.
-- Waiting for the disk on every claim, on the other hand, delays each
-- hand-off to AgentField by a flush. Everything else is as in 0012.

CREATE OR REPLACE FUNCTION platform.outbox_claim(
    worker text, batch_size bigint, per_workspace bigint, topics text[], lease_secs float8,
    delivered bigint[], served_last bigint
) RETURNS TABLE (id bigint, workspace_id bigint, topic text, payload jsonb, attempts integer, expired boolean, spent boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    -- The claim's own transaction commits without waiting for its log
    -- record to reach the disk (set here, not in the function's SET list, so
    -- that it lasts until that commit).
    PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
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
