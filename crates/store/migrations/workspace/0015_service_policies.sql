-- Service policies: business calendars and SLA policies (configuration,
-- written directly with a change record). Both are versioned: every edit
-- adds a version and keeps the ones before, because a ticket's SLA clock
-- names the versions it was planned with and is recomputed from them.

CREATE TABLE business_calendars (
    id         text PRIMARY KEY CHECK (id ~ '^cal_[0-9a-z]{26}$'),
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 120),
    -- The current version; its definition is in business_calendar_versions.
    version    integer NOT NULL CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE business_calendar_versions (
    calendar_id text NOT NULL REFERENCES business_calendars (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 1),
    -- anchor_sla::Calendar as JSON (time_zone, week, holidays, version).
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (calendar_id, version)
);

CREATE TABLE sla_policies (
    id          text PRIMARY KEY CHECK (id ~ '^slp_[0-9a-z]{26}$'),
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 120),
    calendar_id text NOT NULL REFERENCES business_calendars (id),
    version     integer NOT NULL CHECK (version >= 1),
    -- The workspace's default: used when neither contact, site nor queue names one.
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX sla_policies_one_default ON sla_policies (is_default) WHERE is_default;
CREATE INDEX sla_policies_calendar ON sla_policies (calendar_id);

CREATE TABLE sla_policy_versions (
    policy_id   text NOT NULL REFERENCES sla_policies (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 1),
    calendar_id text NOT NULL,
    -- anchor_sla::SlaPolicy as JSON (targets, warning_percent, pausing_statuses, on_reopen, version).
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (policy_id, version)
);

-- Every workspace starts with a round-the-clock calendar in UTC and a
-- default policy over it; an admin adds office hours and holidays.
INSERT INTO business_calendars (id, name, version) VALUES ('cal_00000000000000000000000001', 'Around the clock (UTC)', 1);
INSERT INTO business_calendar_versions (calendar_id, version, definition) VALUES (
    'cal_00000000000000000000000001', 1,
    '{"version": 1, "time_zone": "UTC", "week": {
        "monday": [{"start": "00:00", "end": "24:00"}], "tuesday": [{"start": "00:00", "end": "24:00"}],
        "wednesday": [{"start": "00:00", "end": "24:00"}], "thursday": [{"start": "00:00", "end": "24:00"}],
        "friday": [{"start": "00:00", "end": "24:00"}], "saturday": [{"start": "00:00", "end": "24:00"}],
        "sunday": [{"start": "00:00", "end": "24:00"}]}, "holidays": []}'
);
INSERT INTO sla_policies (id, name, calendar_id, version, is_default)
VALUES ('slp_00000000000000000000000001', 'Standard', 'cal_00000000000000000000000001', 1, true);
INSERT INTO sla_policy_versions (policy_id, version, calendar_id, definition) VALUES (
    'slp_00000000000000000000000001', 1, 'cal_00000000000000000000000001',
    '{"version": 1, "targets": {
        "p1": {"first_response_minutes": 30, "next_update_minutes": 60, "resolution_minutes": 240},
        "p2": {"first_response_minutes": 60, "next_update_minutes": 240, "resolution_minutes": 480},
        "p3": {"first_response_minutes": 240, "next_update_minutes": 480, "resolution_minutes": 1440},
        "p4": {"first_response_minutes": 480, "next_update_minutes": 1440, "resolution_minutes": 2400}},
      "warning_percent": 80, "pausing_statuses": ["waiting_on_client"], "on_reopen": "resume"}'
);
