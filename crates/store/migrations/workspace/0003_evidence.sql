-- Signed audit evidence: one credential per finished execution, chained.

-- What a credential attests about an execution that the execution row did
-- not yet say: the actor's role when the command was accepted, and the
-- AgentField target that performed it.
ALTER TABLE executions ADD COLUMN actor_role text;
ALTER TABLE executions ADD COLUMN agentfield_target text;

-- The index of the workspace's credentials; the documents live in the
-- evidence store under `object_key` (content-addressed by `digest`).
CREATE TABLE evidence (
    id              text PRIMARY KEY CHECK (id ~ '^evd_[0-9a-z]{26}$'),
    seq             bigint NOT NULL UNIQUE CHECK (seq > 0),
    execution_id    text NOT NULL UNIQUE REFERENCES executions (id),
    -- sha256:<hex> of the RFC 8785 canonical JSON of the signed credential.
    digest          text NOT NULL UNIQUE,
    previous_digest text,
    key_id          text NOT NULL,
    object_key      text NOT NULL,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((seq = 1) = (previous_digest IS NULL))
);

-- The head of the chain, locked by whoever issues the next credential, so
-- credentials of a workspace are issued one after the other.
CREATE TABLE evidence_chain (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    head_seq    bigint NOT NULL DEFAULT 0,
    head_digest text
);
INSERT INTO evidence_chain DEFAULT VALUES;
