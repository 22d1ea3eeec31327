-- 0001: the walking skeleton's schema. Plain PostgreSQL (15+), no extension required.
-- All times are timestamptz in UTC, except bp_readings.device_time: the device's own wall clock.

CREATE TABLE patients (
    patient_id   text PRIMARY KEY CHECK (patient_id <> ''),
    display_name text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- device_key is homewatch.wire.DeviceIdentity.device_key. A device can be registered (bound to a
-- patient) before it is first seen, so the descriptive columns and first/last seen may be NULL.
CREATE TABLE devices (
    device_key        text PRIMARY KEY,
    manufacturer      text,
    model             text,
    serial_number     text,
    address           text,
    firmware_revision text,
    first_seen_at     timestamptz,
    last_seen_at      timestamptz
);

-- Which patient a device belongs to over time; history is kept (a cuff handed to another patient
-- gets a new row, the old one is closed). valid_to NULL = still bound. Overlap of closed periods
-- is prevented by ingest_server.store.bind_device (no btree_gist exclusion constraint, on purpose:
-- the embedded demo database has no extensions); one open binding per device is enforced here.
CREATE TABLE device_bindings (
    binding_id bigserial PRIMARY KEY,
    device_key text NOT NULL REFERENCES devices (device_key),
    patient_id text NOT NULL REFERENCES patients (patient_id),
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX device_bindings_one_open ON device_bindings (device_key) WHERE valid_to IS NULL;
CREATE INDEX device_bindings_lookup ON device_bindings (device_key, valid_from);
CREATE INDEX device_bindings_patient ON device_bindings (patient_id);

CREATE TABLE gateways (
    gateway_id    text PRIMARY KEY,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL
);

-- The time column is in the primary key on purpose: a later migration can partition by
-- measured_at or make this a TimescaleDB hypertable. measured_at is deterministic per reading
-- (the gateway fixes it before the reading enters its outbox), so (reading_id, measured_at) is
-- the idempotency key.
CREATE TABLE bp_readings (
    reading_id        uuid NOT NULL,
    patient_id        text NOT NULL REFERENCES patients (patient_id),
    device_key        text NOT NULL REFERENCES devices (device_key),
    gateway_id        text NOT NULL REFERENCES gateways (gateway_id),
    measured_at       timestamptz NOT NULL,
    device_time       timestamp,
    received_at       timestamptz NOT NULL,
    stored_at         timestamptz NOT NULL DEFAULT now(),
    systolic_mmhg     real,  -- NULL: the device reported no value (failed measurement)
    diastolic_mmhg    real,
    mean_arterial_mmhg real,
    pulse_bpm         real,
    reported_unit     text NOT NULL CHECK (reported_unit IN ('mmHg', 'kPa')),
    user_id           smallint,
    flags             text[] NOT NULL DEFAULT '{}',
    raw               bytea NOT NULL,
    PRIMARY KEY (reading_id, measured_at)
);
CREATE INDEX bp_readings_patient_time ON bp_readings (patient_id, measured_at DESC);

-- One open alert per (patient, rule); repeats update it. Severity is stored by name.
CREATE TABLE alerts (
    alert_id      bigserial PRIMARY KEY,
    patient_id    text NOT NULL REFERENCES patients (patient_id),
    rule_id       text NOT NULL,
    rule_version  integer NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('info', 'warning', 'high', 'urgent')),
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    title         text NOT NULL,
    explanation   text NOT NULL,
    evidence      jsonb NOT NULL,
    occurrences   integer NOT NULL CHECK (occurrences > 0),
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alerts_one_open_per_rule ON alerts (patient_id, rule_id) WHERE status <> 'resolved';
CREATE INDEX alerts_patient ON alerts (patient_id, last_seen_at DESC);

-- Messages and readings that could not be stored, kept byte-exact with the reason.
-- reading_id is set for a single reading set aside (e.g. "unbound device"): its payload is then a
-- one-reading ReadingsMessage that can be re-ingested once the device is bound, and the unique
-- index keeps a redelivered message from quarantining the same reading twice.
CREATE TABLE quarantine (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    reason      text NOT NULL,
    detail      text,
    reading_id  uuid
);
CREATE UNIQUE INDEX quarantine_one_per_reading ON quarantine (reading_id) WHERE reading_id IS NOT NULL;
CREATE INDEX quarantine_reason ON quarantine (reason, received_at);

-- Append-only audit of every read of personal health data.
CREATE TABLE access_log (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,
    action         text NOT NULL,
    patient_id     text,  -- no foreign key: the audit trail outlives what it is about
    purpose        text,
    client_address text
);
CREATE INDEX access_log_patient ON access_log (patient_id, at);

CREATE FUNCTION access_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log is append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER access_log_no_update_delete BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_is_append_only();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_is_append_only();
