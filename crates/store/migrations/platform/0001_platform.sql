-- The platform schema: what belongs to the installation rather than to one
-- workspace. Every object is schema-qualified (CVE-2018-1058 practice); the
-- migration runs with an empty search_path so an unqualified name fails.

-- Nobody may create objects in `public` or temporary objects: a workspace role
-- must not be able to plant a table or function that shadows another's.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'anchor: could not revoke TEMPORARY from PUBLIC on this database; '
        'grant the anchor role ownership of the database to harden it';
END
$$;

-- One row: the installation's identity. Database roles are cluster-wide, so
-- every role this installation creates is prefixed with its id; two
-- installations (or two test databases) in one cluster never collide.
CREATE TABLE platform.installation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id         text NOT NULL CHECK (id ~ '^a[0-9a-f]{10}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO platform.installation (id)
VALUES ('a' || substr(md5(pg_catalog.gen_random_uuid()::text), 1, 10));

-- The workspace registry: one row per client company.
CREATE TABLE platform.workspaces (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    schema_name text NOT NULL UNIQUE,
    db_role     text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Which workspace migrations each workspace schema has, and with what text.
CREATE TABLE platform.workspace_schema_migrations (
    workspace_id bigint NOT NULL REFERENCES platform.workspaces (id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version > 0),
    name         text NOT NULL,
    checksum     bytea NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, version)
);
