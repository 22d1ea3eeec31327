-- 0003: storage at national scale. The readings tables become time-partitioned: TimescaleDB
-- hypertables when the extension can be created here, otherwise native declarative range
-- partitions (the machine's PostgreSQL, CI, the pgserver demo). Both paths expose the same
-- tables, views and functions to the rest of the code:
--
--   bp_readings, glucose_readings     the readings (same columns as after 0002)
--   reading_ids                       every reading id ever stored: the idempotency arbiter
--   bp_daily, glucose_daily           daily summaries (native: views over totals kept current by
--                                     the ingest path; TimescaleDB: real-time continuous
--                                     aggregates)
--   homewatch_add_*_daily(...)        called by the ingest path (no-ops with TimescaleDB)
--   homewatch_maintain_storage(...)   future partitions, retention (run at start and hourly)
--   storage_settings                  which path was taken and its parameters
--
-- Parameters are read once, here, from custom settings (set them before migrating, e.g.
-- ALTER DATABASE homewatch SET homewatch.summary_timezone = 'Europe/Moscow'):
--   homewatch.timescaledb          auto (default) | on (fail without it) | off (native even if
--                                  the extension is there)
--   homewatch.summary_timezone     zone of the daily summaries' days, mornings and evenings
--                                  (default UTC): one zone per deployment, see bp_daily below
--   homewatch.readings_retention   how long readings are kept (default 10 years)
--   homewatch.partition_interval   partition / chunk width (default 7 days)

CREATE TABLE storage_settings (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    flavor             text NOT NULL DEFAULT 'native' CHECK (flavor IN ('native', 'timescaledb')),
    summary_timezone   text NOT NULL,
    -- whole days, no months (date_bin cannot bin by months; partitions are named by their day)
    partition_interval interval NOT NULL CHECK (
        partition_interval >= interval '1 day'
        AND date_trunc('day', partition_interval) = partition_interval
        AND extract(month FROM partition_interval) = 0 AND extract(year FROM partition_interval) = 0
    ),
    -- native only: partitions kept ready before and after the current one
    partitions_behind  integer NOT NULL DEFAULT 4 CHECK (partitions_behind >= 0),
    partitions_ahead   integer NOT NULL DEFAULT 8 CHECK (partitions_ahead >= 1),
    -- Readings whose measured_at is older than this are dropped by maintenance (native) or the
    -- retention policy (TimescaleDB); the ingest path quarantines a reading that arrives already
    -- older than it, so nothing acknowledged is deleted behind the sender's back.
    retention          interval NOT NULL CHECK (retention >= interval '1 year'),
    -- TimescaleDB only: chunks older than this are compressed
    compress_after     interval NOT NULL DEFAULT interval '30 days'
);
INSERT INTO storage_settings (summary_timezone, partition_interval, retention)
VALUES (
    coalesce(nullif(current_setting('homewatch.summary_timezone', true), ''), 'UTC'),
    coalesce(nullif(current_setting('homewatch.partition_interval', true), ''), '7 days')::interval,
    coalesce(nullif(current_setting('homewatch.readings_retention', true), ''),
             '10 years')::interval
);
-- An unknown zone fails here, not at the first reading.
SELECT now() AT TIME ZONE summary_timezone FROM storage_settings;
-- One row: say so to the planner (it joins this table into every batch's statements).
ANALYZE storage_settings;

-- The path: TimescaleDB when wanted and creatable (it must be in shared_preload_libraries).
DO $flavor$
DECLARE
    wanted text := coalesce(nullif(current_setting('homewatch.timescaledb', true), ''), 'auto');
BEGIN
    IF wanted NOT IN ('auto', 'on', 'off') THEN
        RAISE EXCEPTION 'homewatch.timescaledb must be auto, on or off, not %', wanted;
    END IF;
    IF wanted = 'off' THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        IF wanted = 'on' THEN
            RAISE EXCEPTION
                'homewatch.timescaledb = on, but the timescaledb extension is not installed';
        END IF;
        RETURN;
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
        IF wanted = 'on' THEN
            RAISE;
        END IF;
        RAISE WARNING
            'timescaledb is installed but cannot be created (%); using native partitioning',
            SQLERRM;
        RETURN;
    END;
    IF string_to_array(
           split_part((SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), '-', 1),
           '.')::int[] < ARRAY[2, 13] THEN
        RAISE EXCEPTION 'timescaledb % is too old: 2.13 or later is needed (by_range)',
            (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb');
    END IF;
    UPDATE storage_settings SET flavor = 'timescaledb';
END
$flavor$;

-- Idempotency beyond the primary key. (reading_id, measured_at) stays the readings' key (a
-- partitioned table's unique keys must contain the partitioning column), but a gateway can send a
-- record again with another clock correction, hence another measured_at, and it is still the same
-- reading. This table is the arbiter: a reading is stored if and only if its id is new here
-- (INSERT ... ON CONFLICT DO NOTHING, which also settles two workers racing on one id). Kept as
-- long as the readings (pruned with the same retention); BRIN: ids arrive roughly in time order.
CREATE TABLE reading_ids (
    reading_id  uuid PRIMARY KEY,
    measured_at timestamptz NOT NULL
);
CREATE INDEX reading_ids_measured_at ON reading_ids USING brin (measured_at);
-- Readings stored before 0003: the first one stored of an id owns it (any later copy with another
-- measured_at stays where it is: a migration does not delete readings).
INSERT INTO reading_ids (reading_id, measured_at)
SELECT DISTINCT ON (reading_id) reading_id, measured_at
FROM (
    SELECT reading_id, measured_at, stored_at FROM bp_readings
    UNION ALL
    SELECT reading_id, measured_at, stored_at FROM glucose_readings
) AS existing
ORDER BY reading_id, stored_at, measured_at;

-- Quarantine operations (ingest_server/quarantine.py): a row is resolved when a re-ingest stored
-- (or found already stored) what it held; it is kept, for the audit.
ALTER TABLE quarantine
    ADD COLUMN resolved_at     timestamptz,
    ADD COLUMN resolution      text,
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN last_attempt_at timestamptz,
    ADD COLUMN last_outcome    text;
CREATE INDEX quarantine_open ON quarantine (received_at) WHERE resolved_at IS NULL;

-- No foreign keys on the readings tables any more (both paths). The ingest path is their only
-- writer and guarantees what the keys checked: it records the gateway and the device (at the
-- latest in the transaction of their first reading), and takes the patient from a device binding
-- (whose own key guarantees the patient); patients are never deleted (the audit trail keeps
-- them). The keys cost more than the rest of the insert together (20,000 rows: 274 ms with them,
-- 81 ms without, measured here) and take a KEY SHARE lock on the patient, device and gateway rows
-- for every reading (multixacts when workers insert for the same patient).

-- === Native path: declarative range partitioning on measured_at =================================
-- The 0002 tables are rebuilt as partitioned tables with the same columns, key, checks and index,
-- and their rows copied over. Each has a DEFAULT partition, so that a reading outside every
-- partition (a clock years off, a backlog older than the partitions kept ready) is still stored;
-- homewatch_maintain_storage moves such rows into a partition when one is created for their range.

DO $native$
DECLARE
    old_table text;
    c record;
BEGIN
    IF (SELECT flavor FROM storage_settings) <> 'native' THEN
        RETURN;
    END IF;
    -- Free the names (table, constraints, indexes) for the new tables.
    FOREACH old_table IN ARRAY ARRAY['bp_readings', 'glucose_readings'] LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', old_table, old_table || '_0002');
        FOR c IN SELECT conname FROM pg_constraint
                 WHERE conrelid = (old_table || '_0002')::regclass LOOP
            EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I',
                           old_table || '_0002', c.conname, 'old_' || c.conname);
        END LOOP;
    END LOOP;
    ALTER INDEX bp_readings_patient_time RENAME TO old_bp_readings_patient_time;
    ALTER INDEX glucose_readings_patient_time RENAME TO old_glucose_readings_patient_time;

    CREATE TABLE bp_readings (
        reading_id         uuid NOT NULL,
        patient_id         text NOT NULL,
        device_key         text NOT NULL,
        gateway_id         text NOT NULL,
        measured_at        timestamptz NOT NULL,
        device_time        timestamp,
        received_at        timestamptz NOT NULL,
        stored_at          timestamptz NOT NULL DEFAULT now(),
        systolic_mmhg      real,
        diastolic_mmhg     real,
        mean_arterial_mmhg real,
        pulse_bpm          real,
        reported_unit      text NOT NULL CHECK (reported_unit IN ('mmHg', 'kPa')),
        user_id            smallint,
        flags              text[] NOT NULL DEFAULT '{}',
        raw                bytea NOT NULL,
        time_source        text NOT NULL DEFAULT 'device'
            CHECK (time_source IN ('device', 'device_corrected', 'received')),
        clock_status       text NOT NULL DEFAULT 'unknown'
            CHECK (clock_status IN ('unknown', 'synchronised', 'corrected', 'unset')),
        clock_offset_s     double precision,
        PRIMARY KEY (reading_id, measured_at)
    ) PARTITION BY RANGE (measured_at);
    CREATE INDEX bp_readings_patient_time ON bp_readings (patient_id, measured_at DESC);
    CREATE TABLE bp_readings_default PARTITION OF bp_readings DEFAULT;

    CREATE TABLE glucose_readings (
        reading_id       uuid NOT NULL,
        patient_id       text NOT NULL,
        device_key       text NOT NULL,
        gateway_id       text NOT NULL,
        measured_at      timestamptz NOT NULL,
        device_time      timestamp,
        received_at      timestamptz NOT NULL,
        stored_at        timestamptz NOT NULL DEFAULT now(),
        time_source      text NOT NULL DEFAULT 'device'
            CHECK (time_source IN ('device', 'device_corrected', 'received')),
        clock_status     text NOT NULL DEFAULT 'unknown'
            CHECK (clock_status IN ('unknown', 'synchronised', 'corrected', 'unset')),
        clock_offset_s   double precision,
        sequence_number  integer NOT NULL CHECK (sequence_number BETWEEN 0 AND 65535),
        mmol_per_l       real CHECK (mmol_per_l >= 0),
        mg_per_dl        real CHECK (mg_per_dl >= 0),
        reported_unit    text NOT NULL CHECK (reported_unit IN ('kg/L', 'mol/L')),
        sample_type      text,
        sample_location  text,
        sensor_status    text[] NOT NULL DEFAULT '{}',
        context          jsonb,
        control_solution boolean NOT NULL DEFAULT false,
        raw              bytea NOT NULL,
        raw_context      bytea,
        PRIMARY KEY (reading_id, measured_at)
    ) PARTITION BY RANGE (measured_at);
    CREATE INDEX glucose_readings_patient_time ON glucose_readings (patient_id, measured_at DESC);
    CREATE TABLE glucose_readings_default PARTITION OF glucose_readings DEFAULT;
END
$native$;

-- === Daily summaries ===========================================================================
-- Days are local days of storage_settings.summary_timezone: one zone per deployment, because a
-- continuous aggregate cannot bucket by a per-patient zone (the rules compute per-patient-zone
-- summaries from the readings themselves). Mornings and evenings are the local hours of
-- alerting.summaries.blood_pressure (MORNING_HOURS 4-11, EVENING_HOURS 16-23). A reading counts
-- only when plausible, with the ranges of alerting.plausibility (systolic 50-300, diastolic 20-200
-- and below systolic; glucose 0.5-42 mmol/L), and a control-solution test never. Glucose ranges are
-- the consensus ones of alerting.summaries.glucose (mmol/L). Columns, on both paths:
--
--   bp_daily       patient_id, day_start (local midnight), readings, usable_readings,
--                  mean_systolic_mmhg, mean_diastolic_mmhg, mean_pulse_bpm, morning_readings,
--                  morning_systolic_mmhg, morning_diastolic_mmhg, evening_readings,
--                  evening_systolic_mmhg, evening_diastolic_mmhg
--   glucose_daily  patient_id, day_start, readings (control solution left out), usable_readings,
--                  mean_mmol_per_l, sd_mmol_per_l (sample SD; NULL for one reading),
--                  min_mmol_per_l, max_mmol_per_l, below_3_0, from_3_0_below_3_9,
--                  in_range_3_9_to_10_0, above_10_0_to_13_9, above_13_9 (counts)
--
-- Native path: the views bp_daily and glucose_daily over tables of per-day totals (counts, sums,
-- sums of squares, min, max) to which the ingest path adds each new reading, in the transaction
-- that stores it (homewatch_add_bp_daily, homewatch_add_glucose_daily). Totals add up in any
-- order, so late and out-of-order readings and concurrent workers give the same result as
-- in-order ones, and a reading is added exactly once because only readings new in reading_ids
-- are. Chosen over a materialised view, whose REFRESH recomputes every day of every patient (at
-- national scale, billions of readings: it cannot run often enough to be current), and over
-- recomputing the touched days from the readings (measured: a scan per patient-day, 3x the cost
-- of adding).

-- The predicates, once for both paths (immutable: usable in a continuous aggregate).
CREATE FUNCTION homewatch_bp_usable(systolic real, diastolic real) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN systolic BETWEEN 50 AND 300 AND diastolic BETWEEN 20 AND 200 AND diastolic < systolic;

CREATE FUNCTION homewatch_glucose_usable(mmol_per_l real, control_solution boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN NOT control_solution AND mmol_per_l BETWEEN 0.5 AND 42;

CREATE FUNCTION homewatch_is_morning(local_hour numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN local_hour BETWEEN 4 AND 11;

CREATE FUNCTION homewatch_is_evening(local_hour numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN local_hour BETWEEN 16 AND 23;

DO $native_summaries$
BEGIN
    IF (SELECT flavor FROM storage_settings) <> 'native' THEN
        RETURN;
    END IF;
    CREATE TABLE bp_daily_totals (
        patient_id             text NOT NULL,
        day_start              timestamptz NOT NULL,
        readings               bigint NOT NULL,
        usable_readings        bigint NOT NULL,
        sum_systolic           double precision NOT NULL,
        sum_diastolic          double precision NOT NULL,
        pulse_readings         bigint NOT NULL,
        sum_pulse              double precision NOT NULL,
        morning_readings       bigint NOT NULL,
        morning_sum_systolic   double precision NOT NULL,
        morning_sum_diastolic  double precision NOT NULL,
        evening_readings       bigint NOT NULL,
        evening_sum_systolic   double precision NOT NULL,
        evening_sum_diastolic  double precision NOT NULL,
        PRIMARY KEY (patient_id, day_start)
    );
    CREATE TABLE glucose_daily_totals (
        patient_id            text NOT NULL,
        day_start             timestamptz NOT NULL,
        readings              bigint NOT NULL,
        usable_readings       bigint NOT NULL,
        sum_mmol              double precision NOT NULL,
        sum_squares_mmol      double precision NOT NULL,
        min_mmol              double precision,
        max_mmol              double precision,
        below_3_0             bigint NOT NULL,
        from_3_0_below_3_9    bigint NOT NULL,
        in_range_3_9_to_10_0  bigint NOT NULL,
        above_10_0_to_13_9    bigint NOT NULL,
        above_13_9            bigint NOT NULL,
        PRIMARY KEY (patient_id, day_start)
    );
    CREATE VIEW bp_daily AS
    SELECT patient_id, day_start, readings, usable_readings,
           sum_systolic / nullif(usable_readings, 0) AS mean_systolic_mmhg,
           sum_diastolic / nullif(usable_readings, 0) AS mean_diastolic_mmhg,
           sum_pulse / nullif(pulse_readings, 0) AS mean_pulse_bpm,
           morning_readings,
           morning_sum_systolic / nullif(morning_readings, 0) AS morning_systolic_mmhg,
           morning_sum_diastolic / nullif(morning_readings, 0) AS morning_diastolic_mmhg,
           evening_readings,
           evening_sum_systolic / nullif(evening_readings, 0) AS evening_systolic_mmhg,
           evening_sum_diastolic / nullif(evening_readings, 0) AS evening_diastolic_mmhg
    FROM bp_daily_totals;
    CREATE VIEW glucose_daily AS
    SELECT patient_id, day_start, readings, usable_readings,
           sum_mmol / nullif(usable_readings, 0) AS mean_mmol_per_l,
           CASE WHEN usable_readings > 1 THEN
               sqrt(greatest(0, (sum_squares_mmol - sum_mmol * sum_mmol / usable_readings)
                                / (usable_readings - 1)))
           END AS sd_mmol_per_l,
           min_mmol AS min_mmol_per_l, max_mmol AS max_mmol_per_l,
           below_3_0, from_3_0_below_3_9, in_range_3_9_to_10_0, above_10_0_to_13_9, above_13_9
    FROM glucose_daily_totals;
END
$native_summaries$;

-- Add new readings to the native totals, given as arrays (one element per reading) by the ingest
-- path: the readings it has just stored, each exactly once (only readings new in reading_ids).
-- No table is read, so the cost is that of the upsert. Rows are upserted in key order, so that
-- concurrent batches wait for each other instead of deadlocking. With TimescaleDB they do
-- nothing: the continuous aggregates keep themselves current.
CREATE FUNCTION homewatch_add_bp_daily(
    patient_ids text[], measured_at timestamptz[], systolic real[], diastolic real[], pulse real[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    tz text;
BEGIN
    SELECT s.summary_timezone INTO tz FROM storage_settings AS s WHERE s.flavor = 'native';
    IF tz IS NULL OR cardinality(patient_ids) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO bp_daily_totals AS t
    SELECT r.patient_id,
           date_trunc('day', r.measured_at AT TIME ZONE tz) AT TIME ZONE tz,
           count(*),
           count(*) FILTER (WHERE r.usable),
           coalesce(sum(r.systolic) FILTER (WHERE r.usable), 0),
           coalesce(sum(r.diastolic) FILTER (WHERE r.usable), 0),
           count(r.pulse) FILTER (WHERE r.usable),
           coalesce(sum(r.pulse) FILTER (WHERE r.usable), 0),
           count(*) FILTER (WHERE r.usable AND r.morning),
           coalesce(sum(r.systolic) FILTER (WHERE r.usable AND r.morning), 0),
           coalesce(sum(r.diastolic) FILTER (WHERE r.usable AND r.morning), 0),
           count(*) FILTER (WHERE r.usable AND r.evening),
           coalesce(sum(r.systolic) FILTER (WHERE r.usable AND r.evening), 0),
           coalesce(sum(r.diastolic) FILTER (WHERE r.usable AND r.evening), 0)
    FROM (
        SELECT n.patient_id, n.measured_at, n.systolic::float8 AS systolic,
               n.diastolic::float8 AS diastolic, n.pulse::float8 AS pulse,
               coalesce(homewatch_bp_usable(n.systolic, n.diastolic), false) AS usable,
               homewatch_is_morning(extract(hour FROM n.measured_at AT TIME ZONE tz)) AS morning,
               homewatch_is_evening(extract(hour FROM n.measured_at AT TIME ZONE tz)) AS evening
        FROM unnest(patient_ids, measured_at, systolic, diastolic, pulse)
             AS n(patient_id, measured_at, systolic, diastolic, pulse)
    ) AS r
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (patient_id, day_start) DO UPDATE SET
        readings = t.readings + EXCLUDED.readings,
        usable_readings = t.usable_readings + EXCLUDED.usable_readings,
        sum_systolic = t.sum_systolic + EXCLUDED.sum_systolic,
        sum_diastolic = t.sum_diastolic + EXCLUDED.sum_diastolic,
        pulse_readings = t.pulse_readings + EXCLUDED.pulse_readings,
        sum_pulse = t.sum_pulse + EXCLUDED.sum_pulse,
        morning_readings = t.morning_readings + EXCLUDED.morning_readings,
        morning_sum_systolic = t.morning_sum_systolic + EXCLUDED.morning_sum_systolic,
        morning_sum_diastolic = t.morning_sum_diastolic + EXCLUDED.morning_sum_diastolic,
        evening_readings = t.evening_readings + EXCLUDED.evening_readings,
        evening_sum_systolic = t.evening_sum_systolic + EXCLUDED.evening_sum_systolic,
        evening_sum_diastolic = t.evening_sum_diastolic + EXCLUDED.evening_sum_diastolic;
END
$$;

CREATE FUNCTION homewatch_add_glucose_daily(
    patient_ids text[], measured_at timestamptz[], mmol_per_l real[], control_solution boolean[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    tz text;
BEGIN
    SELECT s.summary_timezone INTO tz FROM storage_settings AS s WHERE s.flavor = 'native';
    IF tz IS NULL OR cardinality(patient_ids) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO glucose_daily_totals AS t
    SELECT r.patient_id,
           date_trunc('day', r.measured_at AT TIME ZONE tz) AT TIME ZONE tz,
           count(*),
           count(*) FILTER (WHERE r.usable),
           coalesce(sum(r.mmol) FILTER (WHERE r.usable), 0),
           coalesce(sum(r.mmol * r.mmol) FILTER (WHERE r.usable), 0),
           min(r.mmol) FILTER (WHERE r.usable),
           max(r.mmol) FILTER (WHERE r.usable),
           count(*) FILTER (WHERE r.usable AND r.mmol < 3.0),
           count(*) FILTER (WHERE r.usable AND r.mmol >= 3.0 AND r.mmol < 3.9),
           count(*) FILTER (WHERE r.usable AND r.mmol >= 3.9 AND r.mmol <= 10.0),
           count(*) FILTER (WHERE r.usable AND r.mmol > 10.0 AND r.mmol <= 13.9),
           count(*) FILTER (WHERE r.usable AND r.mmol > 13.9)
    FROM (
        SELECT n.patient_id, n.measured_at, n.mmol::float8 AS mmol,
               coalesce(homewatch_glucose_usable(n.mmol, n.control), false) AS usable
        FROM unnest(patient_ids, measured_at, mmol_per_l, control_solution)
             AS n(patient_id, measured_at, mmol, control)
        WHERE NOT n.control
    ) AS r
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (patient_id, day_start) DO UPDATE SET
        readings = t.readings + EXCLUDED.readings,
        usable_readings = t.usable_readings + EXCLUDED.usable_readings,
        sum_mmol = t.sum_mmol + EXCLUDED.sum_mmol,
        sum_squares_mmol = t.sum_squares_mmol + EXCLUDED.sum_squares_mmol,
        min_mmol = least(t.min_mmol, EXCLUDED.min_mmol),
        max_mmol = greatest(t.max_mmol, EXCLUDED.max_mmol),
        below_3_0 = t.below_3_0 + EXCLUDED.below_3_0,
        from_3_0_below_3_9 = t.from_3_0_below_3_9 + EXCLUDED.from_3_0_below_3_9,
        in_range_3_9_to_10_0 = t.in_range_3_9_to_10_0 + EXCLUDED.in_range_3_9_to_10_0,
        above_10_0_to_13_9 = t.above_10_0_to_13_9 + EXCLUDED.above_10_0_to_13_9,
        above_13_9 = t.above_13_9 + EXCLUDED.above_13_9;
END
$$;

-- Rebuild the native totals from every stored reading (after summary_timezone was changed, say).
CREATE FUNCTION homewatch_rebuild_daily() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT flavor FROM storage_settings) <> 'native' THEN
        RAISE EXCEPTION 'with TimescaleDB, refresh the continuous aggregates instead'
            USING HINT = 'CALL refresh_continuous_aggregate(''bp_daily'', NULL, NULL)';
    END IF;
    LOCK TABLE bp_daily_totals, glucose_daily_totals IN EXCLUSIVE MODE;
    DELETE FROM bp_daily_totals;
    DELETE FROM glucose_daily_totals;
    PERFORM homewatch_add_bp_daily(array_agg(patient_id), array_agg(measured_at),
                                   array_agg(systolic_mmhg), array_agg(diastolic_mmhg),
                                   array_agg(pulse_bpm))
    FROM bp_readings;
    PERFORM homewatch_add_glucose_daily(array_agg(patient_id), array_agg(measured_at),
                                        array_agg(mmol_per_l), array_agg(control_solution))
    FROM glucose_readings;
END
$$;

-- === TimescaleDB path ============================================================================
-- Written from the TimescaleDB documentation (2.13+): create_hypertable with by_range, compression
-- segmented by patient (a patient's readings are read together; orderby holds every column of the
-- primary key, as compression of a table with a unique constraint asks), a compression and a
-- retention policy, and real-time continuous aggregates (materialized_only = false: what the
-- policy has not materialised yet is aggregated at query time, so the summaries are current),
-- created WITH NO DATA (the only form allowed inside a transaction) and filled by their policy.
-- time_bucket with a time zone is allowed in continuous aggregates from 2.8, FILTER from 2.7.
-- The refresh window reaches 35 days back, beyond the 30 days a late backlog is expected within;
-- older late readings need CALL refresh_continuous_aggregate for their range.

DO $timescale$
DECLARE
    s storage_settings;
    t text;
    tz text;
BEGIN
    SELECT * INTO STRICT s FROM storage_settings;
    IF s.flavor <> 'timescaledb' THEN
        RETURN;
    END IF;
    tz := quote_literal(s.summary_timezone);
    FOREACH t IN ARRAY ARRAY['bp_readings', 'glucose_readings'] LOOP
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT IF EXISTS %I,'
                       ' DROP CONSTRAINT IF EXISTS %I, DROP CONSTRAINT IF EXISTS %I',
                       t, t || '_patient_id_fkey', t || '_device_key_fkey',
                       t || '_gateway_id_fkey');
        PERFORM create_hypertable(t::regclass, by_range('measured_at', s.partition_interval),
                                  create_default_indexes => false, migrate_data => true);
        EXECUTE format('ALTER TABLE %I SET (timescaledb.compress,'
                       ' timescaledb.compress_segmentby = %L, timescaledb.compress_orderby = %L)',
                       t, 'patient_id', 'measured_at DESC, reading_id');
        PERFORM add_compression_policy(t::regclass, compress_after => s.compress_after);
        PERFORM add_retention_policy(t::regclass, drop_after => s.retention);
    END LOOP;
    EXECUTE format($view$
        CREATE MATERIALIZED VIEW bp_daily
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT patient_id,
               time_bucket(INTERVAL '1 day', measured_at, %1$s) AS day_start,
               count(*) AS readings,
               count(*) FILTER (WHERE homewatch_bp_usable(systolic_mmhg, diastolic_mmhg))
                   AS usable_readings,
               avg(systolic_mmhg) FILTER (WHERE homewatch_bp_usable(systolic_mmhg, diastolic_mmhg))
                   AS mean_systolic_mmhg,
               avg(diastolic_mmhg) FILTER (WHERE homewatch_bp_usable(systolic_mmhg, diastolic_mmhg))
                   AS mean_diastolic_mmhg,
               avg(pulse_bpm) FILTER (WHERE homewatch_bp_usable(systolic_mmhg, diastolic_mmhg))
                   AS mean_pulse_bpm,
               count(*) FILTER (WHERE homewatch_bp_usable(systolic_mmhg, diastolic_mmhg)
                   AND homewatch_is_morning(extract(hour FROM measured_at AT TIME ZONE %1$s)))
                   AS morning_readings,
               avg(systolic_mmhg) FILTER (WHERE homewatch_bp_usable(systolic_mmhg, diastolic_mmhg)
                   AND homewatch_is_morning(extract(hour FROM measured_at AT TIME ZONE %1$s)))
                   AS morning_systolic_mmhg,
               avg(diastolic_mmhg) FILTER (WHERE homewatch_bp_usable(systolic_mmhg, diastolic_mmhg)
                   AND homewatch_is_morning(extract(hour FROM measured_at AT TIME ZONE %1$s)))
                   AS morning_diastolic_mmhg,
               count(*) FILTER (WHERE homewatch_bp_usable(systolic_mmhg, diastolic_mmhg)
                   AND homewatch_is_evening(extract(hour FROM measured_at AT TIME ZONE %1$s)))
                   AS evening_readings,
               avg(systolic_mmhg) FILTER (WHERE homewatch_bp_usable(systolic_mmhg, diastolic_mmhg)
                   AND homewatch_is_evening(extract(hour FROM measured_at AT TIME ZONE %1$s)))
                   AS evening_systolic_mmhg,
               avg(diastolic_mmhg) FILTER (WHERE homewatch_bp_usable(systolic_mmhg, diastolic_mmhg)
                   AND homewatch_is_evening(extract(hour FROM measured_at AT TIME ZONE %1$s)))
                   AS evening_diastolic_mmhg
        FROM bp_readings
        GROUP BY 1, 2
        WITH NO DATA$view$, tz);
    EXECUTE format($view$
        CREATE MATERIALIZED VIEW glucose_daily
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT patient_id,
               time_bucket(INTERVAL '1 day', measured_at, %1$s) AS day_start,
               count(*) FILTER (WHERE NOT control_solution) AS readings,
               count(*) FILTER (WHERE homewatch_glucose_usable(mmol_per_l, control_solution))
                   AS usable_readings,
               avg(mmol_per_l) FILTER (WHERE homewatch_glucose_usable(mmol_per_l, control_solution))
                   AS mean_mmol_per_l,
               stddev_samp(mmol_per_l)
                   FILTER (WHERE homewatch_glucose_usable(mmol_per_l, control_solution))
                   AS sd_mmol_per_l,
               min(mmol_per_l::float8)
                   FILTER (WHERE homewatch_glucose_usable(mmol_per_l, control_solution))
                   AS min_mmol_per_l,
               max(mmol_per_l::float8)
                   FILTER (WHERE homewatch_glucose_usable(mmol_per_l, control_solution))
                   AS max_mmol_per_l,
               count(*) FILTER (WHERE homewatch_glucose_usable(mmol_per_l, control_solution)
                   AND mmol_per_l < 3.0) AS below_3_0,
               count(*) FILTER (WHERE homewatch_glucose_usable(mmol_per_l, control_solution)
                   AND mmol_per_l >= 3.0 AND mmol_per_l < 3.9) AS from_3_0_below_3_9,
               count(*) FILTER (WHERE homewatch_glucose_usable(mmol_per_l, control_solution)
                   AND mmol_per_l >= 3.9 AND mmol_per_l <= 10.0) AS in_range_3_9_to_10_0,
               count(*) FILTER (WHERE homewatch_glucose_usable(mmol_per_l, control_solution)
                   AND mmol_per_l > 10.0 AND mmol_per_l <= 13.9) AS above_10_0_to_13_9,
               count(*) FILTER (WHERE homewatch_glucose_usable(mmol_per_l, control_solution)
                   AND mmol_per_l > 13.9) AS above_13_9
        FROM glucose_readings
        GROUP BY 1, 2
        WITH NO DATA$view$, tz);
    FOREACH t IN ARRAY ARRAY['bp_daily', 'glucose_daily'] LOOP
        PERFORM add_continuous_aggregate_policy(t::regclass,
            start_offset => INTERVAL '35 days',
            end_offset => INTERVAL '1 hour',
            schedule_interval => INTERVAL '1 hour');
    END LOOP;
END
$timescale$;

-- === Maintenance (both paths) ====================================================================
-- homewatch_maintain_storage(now): native path: the partitions from partitions_behind before to
-- partitions_ahead after the current one exist (a new one takes over the rows of its range from
-- the DEFAULT partition), partitions entirely older than the retention are dropped, and so are
-- older rows of the DEFAULT partition; both paths: reading ids older than the retention are
-- forgotten. Idempotent; concurrent callers serialise on an advisory lock. Returns what it did.

CREATE FUNCTION homewatch_partition_bounds(parent regclass)
RETURNS TABLE (partition regclass, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.oid::regclass, b[1]::timestamptz, b[2]::timestamptz
    FROM pg_inherits AS i
    JOIN pg_class AS c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                    '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') AS b
    WHERE i.inhparent = parent
$$;

CREATE FUNCTION homewatch_maintain_storage(at_time timestamptz DEFAULT now())
RETURNS TABLE (action text, relation text, detail text)
LANGUAGE plpgsql AS $$
DECLARE
    s storage_settings;
    parent text;
    step integer;
    lo timestamptz;
    hi timestamptz;
    part_name text;
    default_part text;
    moved bigint;
    cutoff timestamptz;
    old record;
BEGIN
    -- "hwstore": one maintainer at a time (the ingest workers all run it at start).
    PERFORM pg_advisory_xact_lock(x'687773746f726500'::bigint);
    SELECT * INTO STRICT s FROM storage_settings;
    cutoff := at_time - s.retention;
    IF s.flavor = 'native' THEN
        FOREACH parent IN ARRAY ARRAY['bp_readings', 'glucose_readings'] LOOP
            default_part := parent || '_default';
            FOR step IN -s.partitions_behind .. s.partitions_ahead LOOP
                lo := date_bin(s.partition_interval, at_time, timestamptz '2000-01-03 00:00Z')
                      + step * s.partition_interval;
                hi := lo + s.partition_interval;
                CONTINUE WHEN hi <= cutoff;
                CONTINUE WHEN EXISTS (
                    SELECT FROM homewatch_partition_bounds(parent::regclass) AS p
                    WHERE p.lower_bound < hi AND lo < p.upper_bound);
                part_name := format('%s_p%s', parent, to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD'));
                -- First, so that no ingest transaction adds rows of this range to the DEFAULT
                -- partition between the move and the attach (inserts elsewhere go on).
                EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', default_part);
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                               part_name, parent);
                EXECUTE format('WITH moved AS (DELETE FROM %I'
                               ' WHERE measured_at >= $1 AND measured_at < $2 RETURNING *)'
                               ' INSERT INTO %I SELECT * FROM moved',
                               default_part, part_name)
                    USING lo, hi;
                GET DIAGNOSTICS moved = ROW_COUNT;
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               parent, part_name, lo, hi);
                action := 'created'; relation := part_name;
                detail := format('[%s, %s), %s rows from %s', lo, hi, moved,
                                 default_part);
                RETURN NEXT;
            END LOOP;
            FOR old IN SELECT * FROM homewatch_partition_bounds(parent::regclass) AS p
                       WHERE p.upper_bound <= cutoff ORDER BY p.lower_bound LOOP
                relation := old.partition::text;  -- its name, while it has one
                EXECUTE format('DROP TABLE %s', old.partition);
                action := 'dropped';
                detail := format('[%s, %s) older than the retention of %s', old.lower_bound,
                                 old.upper_bound, s.retention);
                RETURN NEXT;
            END LOOP;
            EXECUTE format('DELETE FROM %I WHERE measured_at < $1', default_part) USING cutoff;
            GET DIAGNOSTICS moved = ROW_COUNT;
            IF moved > 0 THEN
                action := 'deleted'; relation := default_part;
                detail := format('%s rows older than %s', moved, cutoff);
                RETURN NEXT;
            END IF;
        END LOOP;
    END IF;
    DELETE FROM reading_ids WHERE reading_ids.measured_at < cutoff;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved > 0 THEN
        action := 'forgotten'; relation := 'reading_ids';
        detail := format('%s reading ids older than %s', moved, cutoff);
        RETURN NEXT;
    END IF;
END
$$;

-- Change the retention later (both paths; with TimescaleDB the policies are replaced).
CREATE FUNCTION homewatch_set_retention(keep interval) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    UPDATE storage_settings SET retention = keep;
    IF (SELECT flavor FROM storage_settings) = 'timescaledb' THEN
        FOREACH t IN ARRAY ARRAY['bp_readings', 'glucose_readings'] LOOP
            EXECUTE 'SELECT remove_retention_policy($1, if_exists => true)' USING t::regclass;
            EXECUTE 'SELECT add_retention_policy($1, drop_after => $2)' USING t::regclass, keep;
        END LOOP;
    END IF;
END
$$;

-- === The rows of 0002, and the partitions they need ============================================
SELECT * FROM homewatch_maintain_storage();

DO $copy$
BEGIN
    IF (SELECT flavor FROM storage_settings) <> 'native' THEN
        RETURN;
    END IF;
    INSERT INTO bp_readings (reading_id, patient_id, device_key, gateway_id, measured_at,
                             device_time, received_at, stored_at, systolic_mmhg, diastolic_mmhg,
                             mean_arterial_mmhg, pulse_bpm, reported_unit, user_id, flags, raw,
                             time_source, clock_status, clock_offset_s)
    SELECT reading_id, patient_id, device_key, gateway_id, measured_at, device_time, received_at,
           stored_at, systolic_mmhg, diastolic_mmhg, mean_arterial_mmhg, pulse_bpm, reported_unit,
           user_id, flags, raw, time_source, clock_status, clock_offset_s
    FROM bp_readings_0002;
    INSERT INTO glucose_readings (reading_id, patient_id, device_key, gateway_id, measured_at,
                                  device_time, received_at, stored_at, time_source, clock_status,
                                  clock_offset_s, sequence_number, mmol_per_l, mg_per_dl,
                                  reported_unit, sample_type, sample_location, sensor_status,
                                  context, control_solution, raw, raw_context)
    SELECT reading_id, patient_id, device_key, gateway_id, measured_at, device_time, received_at,
           stored_at, time_source, clock_status, clock_offset_s, sequence_number, mmol_per_l,
           mg_per_dl, reported_unit, sample_type, sample_location, sensor_status, context,
           control_solution, raw, raw_context
    FROM glucose_readings_0002;
    DROP TABLE bp_readings_0002, glucose_readings_0002;
    PERFORM homewatch_rebuild_daily();
END
$copy$;
