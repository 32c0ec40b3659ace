-- The installation's evidence issuer keys (Ed25519, as did:key). Private
-- keys are sealed with the master key (XChaCha20-Poly1305, associated data
-- binding the ciphertext to this table and key id). A rotated key stays,
-- with the end of its validity, so every earlier credential stays
-- verifiable and a verifier can tell which key was current when.
CREATE TABLE platform.evidence_keys (
    id             text PRIMARY KEY,             -- the public key multibase, z6Mk...
    did            text NOT NULL UNIQUE,         -- did:key:z6Mk...
    sealed_private bytea NOT NULL,
    nonce          bytea NOT NULL,
    master_key_id  text NOT NULL,
    valid_from     timestamptz NOT NULL DEFAULT now(),
    valid_until    timestamptz,
    CHECK (valid_until IS NULL OR valid_until >= valid_from)
);
-- At most one current key.
CREATE UNIQUE INDEX evidence_keys_current ON platform.evidence_keys ((true)) WHERE valid_until IS NULL;
