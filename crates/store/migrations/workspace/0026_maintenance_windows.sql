-- Maintenance windows (configuration): while one covers an asset, or the
-- site it is at, alerts that open on it are held until the window ends
-- (snoozed: out of the queues, no ticket from automation, no escalation).
CREATE TABLE maintenance_windows (
    id         text PRIMARY KEY CHECK (id ~ '^mnt_[0-9a-z]{26}$'),
    asset_id   text,
    site_id    text,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    reason     text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    created_by jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((asset_id IS NULL) <> (site_id IS NULL)),
    CHECK (ends_at > starts_at)
);
CREATE INDEX maintenance_windows_asset ON maintenance_windows (asset_id, ends_at) WHERE asset_id IS NOT NULL;
CREATE INDEX maintenance_windows_site ON maintenance_windows (site_id, ends_at) WHERE site_id IS NOT NULL;
