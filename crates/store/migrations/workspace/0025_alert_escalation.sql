-- A critical alert nobody acknowledged within the escalation time is
-- escalated once: when, kept on the alert.
ALTER TABLE alerts ADD COLUMN escalated_at timestamptz;
