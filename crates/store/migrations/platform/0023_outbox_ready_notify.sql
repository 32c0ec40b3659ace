-- Workers are woken only for work they can take now.
--
-- Every insert into the outbox notified `anchor_outbox`, including events
-- written for later (a command's reconciliation 30 s on, a scheduled job):
-- each woke every worker to claim, and the claim found nothing to take.
-- Events due later are found by the workers' polling when they are due,
-- as before.
CREATE OR REPLACE FUNCTION platform.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted WHERE inserted.available_at <= now()) THEN
        PERFORM pg_catalog.pg_notify('anchor_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER outbox_notify ON platform.outbox_events;
CREATE TRIGGER outbox_notify AFTER INSERT ON platform.outbox_events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION platform.outbox_notify();
