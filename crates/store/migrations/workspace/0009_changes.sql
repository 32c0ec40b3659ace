-- Administrative changes people make to a workspace (webhook endpoints,
-- inbound sources, alert rules, enrollment tokens, agents, members): each is
-- recorded with who made it, in their role then, in the same unit of work
-- as the change, and signed into the workspace's evidence chain like an
-- execution. `details` says what changed and never holds a secret.
CREATE TABLE changes (
    id            text PRIMARY KEY CHECK (id ~ '^chg_[0-9a-z]{26}$'),
    action        text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    target        text NOT NULL,
    actor_issuer  text NOT NULL,
    actor_subject text NOT NULL,
    actor_role    text,
    details       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    evidence_id   text
);
CREATE INDEX changes_target ON changes (target, id);

-- A credential attests an execution or a change, never both.
ALTER TABLE evidence ALTER COLUMN execution_id DROP NOT NULL;
ALTER TABLE evidence ADD COLUMN change_id text UNIQUE REFERENCES changes (id);
ALTER TABLE evidence ADD CONSTRAINT evidence_attests_one CHECK ((execution_id IS NULL) <> (change_id IS NULL));
