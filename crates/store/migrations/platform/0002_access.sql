-- Identity and access: who exists, which workspaces they belong to in which
-- role, who administers the platform, and the access audit log.

-- A subject is one identity at one issuer: the same `sub` at two issuers is
-- two subjects, so one identity provider can never speak for another's users.
CREATE TABLE platform.subjects (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issuer       text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 500),
    subject      text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz,
    UNIQUE (issuer, subject)
);

CREATE TABLE platform.platform_roles (
    subject_id bigint NOT NULL REFERENCES platform.subjects (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('platform_admin')),
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_id, role)
);

CREATE TABLE platform.memberships (
    workspace_id bigint NOT NULL REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    subject_id   bigint NOT NULL REFERENCES platform.subjects (id) ON DELETE CASCADE,
    role         text NOT NULL
                 CHECK (role IN ('msp_admin', 'technician', 'finance', 'auditor', 'client_admin', 'client_user')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, subject_id)
);
CREATE INDEX memberships_by_subject ON platform.memberships (subject_id);

-- Append-only record of access decisions: sign-ins and their failures,
-- authorization denials, membership changes.
CREATE TABLE platform.access_audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    issuer       text,
    subject      text,
    workspace    text,
    action       text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    request_id   text,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX access_audit_by_time ON platform.access_audit (occurred_at DESC, id DESC);
CREATE INDEX access_audit_by_workspace ON platform.access_audit (workspace, occurred_at DESC);
