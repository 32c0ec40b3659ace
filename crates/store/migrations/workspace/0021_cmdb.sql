-- The CMDB: asset types with a field schema (configuration, written directly
-- with a change record), assets of every type (machines enrolled agents
-- created, and manual ones for what has no agent), typed relationships.

CREATE TABLE asset_types (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,39}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- [{key, label, kind, required, options}]: the attributes its assets carry.
    fields     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(fields) = 'array'),
    -- Shipped with Anchor: renamed and given fields, never deleted.
    built_in   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX asset_types_name ON asset_types (lower(name));

INSERT INTO asset_types (key, name, built_in, fields) VALUES
    ('workstation', 'Workstation', true, '[
        {"key": "model", "label": "Model", "kind": "text"},
        {"key": "cpu", "label": "Processor", "kind": "text"},
        {"key": "memory_gb", "label": "Memory (GB)", "kind": "number"},
        {"key": "assigned_to", "label": "Assigned to", "kind": "text"}]'),
    ('server', 'Server', true, '[
        {"key": "model", "label": "Model", "kind": "text"},
        {"key": "role", "label": "Role", "kind": "text"},
        {"key": "cpu", "label": "Processor", "kind": "text"},
        {"key": "memory_gb", "label": "Memory (GB)", "kind": "number"},
        {"key": "rack", "label": "Rack position", "kind": "text"}]'),
    ('network_device', 'Network device', true, '[
        {"key": "device_kind", "label": "Kind", "kind": "choice",
         "options": ["switch", "router", "firewall", "access point", "other"]},
        {"key": "model", "label": "Model", "kind": "text"},
        {"key": "management_ip", "label": "Management address", "kind": "text"},
        {"key": "firmware", "label": "Firmware", "kind": "text"},
        {"key": "ports", "label": "Ports", "kind": "integer"}]'),
    ('printer', 'Printer', true, '[
        {"key": "model", "label": "Model", "kind": "text"},
        {"key": "ip_address", "label": "Address", "kind": "text"},
        {"key": "colour", "label": "Colour", "kind": "boolean"}]'),
    ('virtual_machine', 'Virtual machine', true, '[
        {"key": "hypervisor", "label": "Hypervisor", "kind": "choice",
         "options": ["vmware", "hyper-v", "kvm", "proxmox", "xen", "other"]},
        {"key": "vcpus", "label": "Virtual CPUs", "kind": "integer"},
        {"key": "memory_gb", "label": "Memory (GB)", "kind": "number"}]'),
    ('cloud_resource', 'Cloud resource', true, '[
        {"key": "provider", "label": "Provider", "kind": "choice", "options": ["aws", "azure", "gcp", "other"]},
        {"key": "resource_id", "label": "Resource id", "kind": "text", "required": true},
        {"key": "region", "label": "Region", "kind": "text"}]'),
    ('software_licence', 'Software licence', true, '[
        {"key": "product", "label": "Product", "kind": "text", "required": true},
        {"key": "vendor", "label": "Vendor", "kind": "text"},
        {"key": "seats", "label": "Seats", "kind": "integer"},
        {"key": "renews_on", "label": "Renews on", "kind": "date"}]');

-- Every asset has a type, a name people use, a place in its lifecycle and,
-- optionally, a site. Machines enrolled agents created keep their agent
-- link, host name, OS and facts; manual assets have none of these.
ALTER TABLE assets
    ADD COLUMN type_key       text REFERENCES asset_types (key),
    ADD COLUMN name           text,
    ADD COLUMN status         text NOT NULL DEFAULT 'active'
        CHECK (status IN ('planned', 'active', 'in_repair', 'retired', 'disposed')),
    ADD COLUMN site_id        text REFERENCES sites (id),
    ADD COLUMN serial         text CHECK (length(serial) BETWEEN 1 AND 100),
    ADD COLUMN purchased_on   date,
    ADD COLUMN warranty_until date,
    ADD COLUMN attributes     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    ADD COLUMN tags           text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20),
    ADD COLUMN retired_at     timestamptz;
-- A machine is named after its host as people read it (no control
-- characters, no surrounding spaces, at most 200 characters), else its id.
UPDATE assets SET name = coalesce(nullif(left(regexp_replace(regexp_replace(hostname,
                      '[\u0001-\u001f\u007f-\u009f]', '', 'g'), '^[[:space:]]+|[[:space:]]+$', '', 'g'), 200), ''), id),
                  type_key = CASE WHEN os ILIKE '%server%' THEN 'server' ELSE 'workstation' END;
ALTER TABLE assets
    ALTER COLUMN type_key SET NOT NULL,
    ALTER COLUMN name SET NOT NULL,
    ALTER COLUMN hostname SET DEFAULT '',
    ADD CONSTRAINT assets_name_length CHECK (length(name) BETWEEN 1 AND 200),
    ADD CONSTRAINT assets_warranty_after_purchase CHECK (warranty_until >= purchased_on),
    ADD COLUMN search tsvector GENERATED ALWAYS AS
        (to_tsvector('simple', name || ' ' || hostname || ' ' || coalesce(serial, ''))) STORED;
CREATE INDEX assets_by_name ON assets (lower(name), id);
CREATE INDEX assets_type ON assets (type_key, lower(name), id);
CREATE INDEX assets_site ON assets (site_id, lower(name), id);
CREATE INDEX assets_tags ON assets USING gin (tags);
CREATE INDEX assets_search ON assets USING gin (search);
CREATE INDEX alerts_open_asset ON alerts (asset_id) WHERE state = 'open';
CREATE INDEX tickets_asset ON tickets (asset_id) WHERE asset_id IS NOT NULL;

-- `asset_id <kind> target_id`, read as a sentence: "vm-01 runs_on host-02".
-- Cycles are allowed (two servers that back each other up); the impact view
-- walks them once.
CREATE TABLE asset_relationships (
    id           text PRIMARY KEY CHECK (id ~ '^rel_[0-9a-z]{26}$'),
    asset_id     text NOT NULL REFERENCES assets (id),
    kind         text NOT NULL CHECK (kind IN ('runs_on', 'depends_on', 'connected_to', 'backs_up', 'installed_on')),
    target_id    text NOT NULL REFERENCES assets (id),
    execution_id text NOT NULL REFERENCES executions (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (asset_id, kind, target_id),
    CHECK (asset_id <> target_id)
);
CREATE INDEX asset_relationships_target ON asset_relationships (target_id, kind);
