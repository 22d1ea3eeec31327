-- 0002: glucose readings, and where each reading's time came from. Plain PostgreSQL, no extension.
-- The CHECK lists mirror homewatch.wire.TimeSource and wire.ClockStatus: a value added there needs
-- a migration here too (the database refuses what it does not know instead of storing a guess).

-- Readings stored before 0002 came from gateways without the clock check: the wire contract reads
-- their missing fields as "device" / "unknown", and so do the defaults (a constant default adds
-- the column without rewriting the table).
ALTER TABLE bp_readings
    ADD COLUMN time_source    text NOT NULL DEFAULT 'device'
        CHECK (time_source IN ('device', 'device_corrected', 'received')),
    ADD COLUMN clock_status   text NOT NULL DEFAULT 'unknown'
        CHECK (clock_status IN ('unknown', 'synchronised', 'corrected', 'unset')),
    ADD COLUMN clock_offset_s double precision;  -- device minus gateway clock; NULL: not known

-- Same time and idempotency design as bp_readings: (reading_id, measured_at) is the key, the time
-- column is in it so the table can be partitioned or made a hypertable later. device_time is the
-- meter's own wall clock (base time + time offset), as it stamped the record.
-- The concentration is kept in both clinical units, as the gateway converted it once from what
-- the meter sent (reported_unit); both NULL when the meter reported a special value (HI/LO, NaN)
-- or no concentration. Impossible values are quarantined before they get here (validate.py); the
-- non-negative checks are the last line. A control-solution record tests the meter, not the
-- patient: it is stored for audit and flagged, and no rule may ever read it.
CREATE TABLE glucose_readings (
    reading_id       uuid NOT NULL,
    patient_id       text NOT NULL REFERENCES patients (patient_id),
    device_key       text NOT NULL REFERENCES devices (device_key),
    gateway_id       text NOT NULL REFERENCES gateways (gateway_id),
    measured_at      timestamptz NOT NULL,
    device_time      timestamp,
    received_at      timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    time_source      text NOT NULL DEFAULT 'device'
        CHECK (time_source IN ('device', 'device_corrected', 'received')),
    clock_status     text NOT NULL DEFAULT 'unknown'
        CHECK (clock_status IN ('unknown', 'synchronised', 'corrected', 'unset')),
    clock_offset_s   double precision,
    -- The meter's record number: wraps at 65535 and restarts on reset, so not a key on its own.
    sequence_number  integer NOT NULL CHECK (sequence_number BETWEEN 0 AND 65535),
    mmol_per_l       real CHECK (mmol_per_l >= 0),
    mg_per_dl        real CHECK (mg_per_dl >= 0),
    reported_unit    text NOT NULL CHECK (reported_unit IN ('kg/L', 'mol/L')),
    sample_type      text,  -- snake_case GLS names ("capillary_plasma"), "reserved_<n>", or NULL
    sample_location  text,
    sensor_status    text[] NOT NULL DEFAULT '{}',
    context          jsonb,  -- homewatch.wire.GlucoseContext; NULL: the meter sent none
    control_solution boolean NOT NULL DEFAULT false,
    raw              bytea NOT NULL,  -- Glucose Measurement as received, for audit
    raw_context      bytea,           -- Glucose Measurement Context as received, when one came
    PRIMARY KEY (reading_id, measured_at)
);
CREATE INDEX glucose_readings_patient_time ON glucose_readings (patient_id, measured_at DESC);
