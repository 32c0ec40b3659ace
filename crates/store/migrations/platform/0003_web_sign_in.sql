-- Staff sign-in for the web app: local accounts, server-side sessions, and
-- the short-lived state of OIDC logins in flight.

CREATE TABLE platform.local_accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    -- Argon2id, PHC string format.
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);

-- Sessions are looked up by the SHA-256 of the cookie value: a leaked table
-- does not yield usable cookies.
CREATE TABLE platform.web_sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    issuer       text NOT NULL,
    subject      text NOT NULL,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX web_sessions_by_expiry ON platform.web_sessions (expires_at);
CREATE INDEX web_sessions_by_subject ON platform.web_sessions (issuer, subject);

CREATE TABLE platform.oidc_logins (
    state_hash    bytea PRIMARY KEY CHECK (length(state_hash) = 32),
    code_verifier text NOT NULL,
    nonce         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Sign-in throttling counts recent failures by account and by address.
CREATE INDEX access_audit_signin_failures ON platform.access_audit (action, outcome, occurred_at)
    WHERE action = 'signin' AND outcome = 'failure';
