-- 0004: the digital medical profile, care team and consent, API users, the alert lifecycle
-- columns, the audit trail's extra columns, and webhooks. Plain PostgreSQL, no extension.
-- Written to apply after 0002 whatever 0003 did: columns added to existing tables use
-- ADD COLUMN IF NOT EXISTS, and nothing here reads a column that 0003 may have introduced.
-- Codes listed in CHECK constraints mirror the enums of ingest_server.profile.models: a value
-- added there needs a migration here too.

-- --- patient: demographics ----------------------------------------------------------------------

ALTER TABLE patients
    ADD COLUMN IF NOT EXISTS given_name  text,
    ADD COLUMN IF NOT EXISTS family_name text,
    ADD COLUMN IF NOT EXISTS birth_date  date,
    ADD COLUMN IF NOT EXISTS gender      text CHECK (gender IN ('male', 'female', 'other', 'unknown')),
    -- IANA zone: the patient's days, mornings and evenings are local (alerting.PatientProfile).
    ADD COLUMN IF NOT EXISTS timezone    text NOT NULL DEFAULT 'UTC',
    ADD COLUMN IF NOT EXISTS updated_at  timestamptz;

-- Identifiers with their systems; one (system, value) names one patient.
CREATE TABLE patient_identifiers (
    identifier_id bigserial PRIMARY KEY,
    patient_id    text NOT NULL REFERENCES patients (patient_id),
    system        text NOT NULL
        CHECK (system IN ('national_insurance_number', 'health_insurance_policy', 'local')),
    value         text NOT NULL CHECK (value <> ''),
    assigner      text,  -- the insurer or the local system that issued it
    UNIQUE (system, value)
);
CREATE INDEX patient_identifiers_patient ON patient_identifiers (patient_id);

CREATE TABLE patient_contacts (
    contact_id   bigserial PRIMARY KEY,
    patient_id   text NOT NULL REFERENCES patients (patient_id),
    kind         text NOT NULL CHECK (kind IN ('phone', 'email', 'address')),
    value        text NOT NULL CHECK (value <> ''),
    use          text NOT NULL DEFAULT 'home' CHECK (use IN ('home', 'work', 'mobile')),
    -- NULL: the patient's own; otherwise the person to contact ("emergency contact").
    name         text,
    relationship text
);
CREATE INDEX patient_contacts_patient ON patient_contacts (patient_id);

-- --- care team ----------------------------------------------------------------------------------

CREATE TABLE organisations (
    organisation_id text PRIMARY KEY CHECK (organisation_id <> ''),
    name            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clinicians (
    clinician_id    text PRIMARY KEY CHECK (clinician_id <> ''),
    display_name    text NOT NULL,
    organisation_id text NOT NULL REFERENCES organisations (organisation_id),
    profession      text,
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Who is responsible for the patient: an organisation, and within it the clinicians (a row per
-- clinician; clinician_id NULL: the organisation as such). History is kept: a member leaves by
-- getting removed_at, never by deletion.
CREATE TABLE care_team_members (
    member_id       bigserial PRIMARY KEY,
    patient_id      text NOT NULL REFERENCES patients (patient_id),
    organisation_id text NOT NULL REFERENCES organisations (organisation_id),
    clinician_id    text REFERENCES clinicians (clinician_id),
    role            text NOT NULL DEFAULT 'treating'
        CHECK (role IN ('treating', 'nurse', 'consultant', 'responsible_organisation')),
    added_at        timestamptz NOT NULL DEFAULT now(),
    added_by        text NOT NULL,
    removed_at      timestamptz,
    removed_by      text
);
CREATE UNIQUE INDEX care_team_one_active ON care_team_members
    (patient_id, organisation_id, coalesce(clinician_id, '')) WHERE removed_at IS NULL;
CREATE INDEX care_team_clinician ON care_team_members (clinician_id) WHERE removed_at IS NULL;

-- A patient's consent: access for one grantee (an organisation, or one clinician), for one
-- purpose, from granted_at until valid_until (NULL: until revoked). Revoking sets revoked_at;
-- consent_events keeps the history, append-only.
CREATE TABLE consents (
    consent_id   bigserial PRIMARY KEY,
    patient_id   text NOT NULL REFERENCES patients (patient_id),
    grantee_kind text NOT NULL CHECK (grantee_kind IN ('organisation', 'clinician')),
    grantee_id   text NOT NULL,
    purpose      text NOT NULL CHECK (purpose IN ('treatment', 'research')),
    granted_at   timestamptz NOT NULL DEFAULT now(),
    valid_until  timestamptz,
    granted_by   text NOT NULL,
    revoked_at   timestamptz,
    revoked_by   text,
    CHECK (valid_until IS NULL OR valid_until > granted_at)
);
CREATE INDEX consents_patient ON consents (patient_id, grantee_kind, grantee_id);

CREATE TABLE consent_events (
    event_id   bigserial PRIMARY KEY,
    consent_id bigint NOT NULL REFERENCES consents (consent_id),
    event      text NOT NULL CHECK (event IN ('granted', 'revoked')),
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL
);
CREATE INDEX consent_events_consent ON consent_events (consent_id, at);

-- --- clinical profile ---------------------------------------------------------------------------

-- Chronic conditions, ICD-10 coded. programme is the dispensary programme the code put the
-- patient in when it was recorded (the rule-set files of alerting/ list each programme's ICD-10
-- categories; NULL: none applies). Not a CHECK list: programmes come with rule-set files.
CREATE TABLE conditions (
    condition_id    bigserial PRIMARY KEY,
    patient_id      text NOT NULL REFERENCES patients (patient_id),
    icd10_code      text NOT NULL CHECK (icd10_code ~ '^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$'),
    display         text NOT NULL,
    programme       text,
    onset_date      date,
    clinical_status text NOT NULL DEFAULT 'active'
        CHECK (clinical_status IN ('active', 'remission', 'resolved')),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    recorded_by     text NOT NULL
);
CREATE INDEX conditions_patient ON conditions (patient_id);

-- Per-patient targets set by a clinician (names: alerting.profiles.TARGETS) and the patient's
-- own measurement schedule (readings per week per metric), each overriding the programme's
-- default. Append-only: the newest row per (patient, name) is in force (value NULL: back to the
-- default), the older rows are the history of who set what, when.
CREATE TABLE patient_targets (
    target_id  bigserial PRIMARY KEY,
    patient_id text NOT NULL REFERENCES patients (patient_id),
    name       text NOT NULL,
    value      double precision,
    unit       text NOT NULL,
    note       text,
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patient_targets_current ON patient_targets (patient_id, name, set_at DESC, target_id DESC);

CREATE TABLE patient_schedule (
    schedule_id bigserial PRIMARY KEY,
    patient_id  text NOT NULL REFERENCES patients (patient_id),
    metric      text NOT NULL CHECK (metric IN ('blood_pressure_per_week', 'glucose_per_week')),
    per_week    double precision CHECK (per_week BETWEEN 0 AND 100),
    note        text,
    set_by      text NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patient_schedule_current ON patient_schedule (patient_id, metric, set_at DESC, schedule_id DESC);

CREATE TABLE medications (
    medication_id bigserial PRIMARY KEY,
    patient_id    text NOT NULL REFERENCES patients (patient_id),
    name          text NOT NULL,
    atc_code      text CHECK (atc_code ~ '^[A-Z][0-9]{2}[A-Z]{0,2}[0-9]{0,2}$'),
    dose          text,
    frequency     text,
    start_date    date,
    end_date      date,
    prescribed_by text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (end_date IS NULL OR start_date IS NULL OR end_date >= start_date)
);
CREATE INDEX medications_patient ON medications (patient_id);

CREATE TABLE risk_factors (
    risk_factor_id bigserial PRIMARY KEY,
    patient_id     text NOT NULL REFERENCES patients (patient_id),
    code           text NOT NULL CHECK (code IN ('smoking', 'obesity', 'physical_inactivity',
        'dyslipidaemia', 'family_history_cvd', 'alcohol', 'chronic_kidney_disease', 'other')),
    note           text,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    recorded_by    text NOT NULL
);
CREATE INDEX risk_factors_patient ON risk_factors (patient_id);

-- What the patient writes: free notes and symptoms (with when they occurred).
CREATE TABLE patient_entries (
    entry_id    bigserial PRIMARY KEY,
    patient_id  text NOT NULL REFERENCES patients (patient_id),
    kind        text NOT NULL CHECK (kind IN ('note', 'symptom')),
    symptom     text CHECK (symptom IN ('headache', 'dizziness', 'chest_pain', 'shortness_of_breath',
        'palpitations', 'blurred_vision', 'nausea', 'thirst', 'fatigue', 'hypoglycaemia', 'other')),
    text        text NOT NULL,
    occurred_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'symptom') = (symptom IS NOT NULL))
);
CREATE INDEX patient_entries_patient ON patient_entries (patient_id, created_at DESC);

CREATE TABLE clinician_notes (
    note_id      bigserial PRIMARY KEY,
    patient_id   text NOT NULL REFERENCES patients (patient_id),
    clinician_id text NOT NULL REFERENCES clinicians (clinician_id),
    alert_id     bigint REFERENCES alerts (alert_id),
    text         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clinician_notes_patient ON clinician_notes (patient_id, created_at DESC);

-- --- devices and gateways -----------------------------------------------------------------------

ALTER TABLE devices
    ADD COLUMN IF NOT EXISTS kind  text CHECK (kind IN ('blood_pressure', 'glucose')),
    ADD COLUMN IF NOT EXISTS label text;

-- A gateway is installed in one patient's home (NULL: not assigned yet). It is registered by an
-- admin before its first message, so first/last seen become optional.
ALTER TABLE gateways
    ADD COLUMN IF NOT EXISTS patient_id text REFERENCES patients (patient_id),
    ADD COLUMN IF NOT EXISTS label      text,
    ALTER COLUMN first_seen_at DROP NOT NULL,
    ALTER COLUMN last_seen_at DROP NOT NULL;

-- Ended bindings say who ended them and why.
ALTER TABLE device_bindings
    ADD COLUMN IF NOT EXISTS ended_by   text,
    ADD COLUMN IF NOT EXISTS end_reason text;

-- --- alert lifecycle ----------------------------------------------------------------------------

ALTER TABLE alerts
    ADD COLUMN IF NOT EXISTS acknowledged_at timestamptz,
    ADD COLUMN IF NOT EXISTS acknowledged_by text,
    ADD COLUMN IF NOT EXISTS resolved_at     timestamptz,
    ADD COLUMN IF NOT EXISTS resolved_by     text,
    ADD COLUMN IF NOT EXISTS snoozed_until   timestamptz,
    ADD COLUMN IF NOT EXISTS snoozed_by      text,
    ADD COLUMN IF NOT EXISTS last_note       text;
-- The live stream and the webhook dispatcher poll for changes by updated_at.
CREATE INDEX IF NOT EXISTS alerts_updated ON alerts (updated_at, alert_id);

-- Every transition of an alert, with the clinician's note: the lifecycle's history.
CREATE TABLE alert_events (
    event_id      bigserial PRIMARY KEY,
    alert_id      bigint NOT NULL REFERENCES alerts (alert_id),
    action        text NOT NULL CHECK (action IN ('acknowledge', 'resolve', 'snooze')),
    from_status   text NOT NULL,
    to_status     text NOT NULL,
    snoozed_until timestamptz,
    note          text,
    actor         text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, at);

-- --- audit --------------------------------------------------------------------------------------

-- Who (actor = role:subject), what (action, resource), when (at), why (purpose), from where
-- (client_address), and whether it was allowed. Constant defaults: no table rewrite, and the
-- append-only triggers of 0001 stay as they are.
ALTER TABLE access_log
    ADD COLUMN IF NOT EXISTS role     text,
    ADD COLUMN IF NOT EXISTS resource text,
    ADD COLUMN IF NOT EXISTS outcome  text NOT NULL DEFAULT 'allowed'
        CHECK (outcome IN ('allowed', 'denied'));
CREATE INDEX IF NOT EXISTS access_log_actor ON access_log (actor, at);
CREATE INDEX IF NOT EXISTS access_log_at ON access_log (at);

-- --- API users (the server's own login, for development and small deployments) ------------------

-- subject is what the token's "sub" carries: the clinician_id, patient_id or gateway_id of the
-- user, or an admin's own name.
CREATE TABLE api_users (
    username      text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9._@-]{1,64}$'),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('clinician', 'patient', 'admin', 'gateway')),
    subject       text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- --- quarantine review --------------------------------------------------------------------------

CREATE TABLE quarantine_reviews (
    quarantine_id bigint PRIMARY KEY REFERENCES quarantine (id),
    decision      text NOT NULL CHECK (decision IN ('dismissed', 'reingested')),
    note          text,
    reviewed_by   text NOT NULL,
    reviewed_at   timestamptz NOT NULL DEFAULT now()
);

-- --- webhooks -----------------------------------------------------------------------------------

CREATE TABLE webhook_endpoints (
    endpoint_id  bigserial PRIMARY KEY,
    url          text NOT NULL CHECK (url ~ '^https?://'),
    secret       text NOT NULL,
    min_severity text NOT NULL DEFAULT 'urgent' CHECK (min_severity IN ('info', 'warning', 'high', 'urgent')),
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL
);

-- One delivery per (endpoint, alert, event): an alert that reaches the endpoint's severity is
-- sent once, however often the dispatcher sees it.
CREATE TABLE webhook_deliveries (
    delivery_id     bigserial PRIMARY KEY,
    endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    alert_id        bigint NOT NULL REFERENCES alerts (alert_id),
    event           text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (endpoint_id, alert_id, event)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- The delivery log: every attempt, its answer or its error.
CREATE TABLE webhook_attempts (
    attempt_id  bigserial PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries (delivery_id),
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    status_code integer,
    error       text,
    duration_ms integer NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
