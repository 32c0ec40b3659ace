-- Alert handling by people: who acknowledged an open alert (someone is on
-- it) and when, and until when it is snoozed (held from queues and
-- escalation for a while). Both are set by commands.
ALTER TABLE alerts
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by jsonb,
    ADD COLUMN snoozed_until   timestamptz,
    ADD CONSTRAINT alerts_acknowledged_whole CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL));
