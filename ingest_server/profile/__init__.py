"""The digital medical profile in PostgreSQL: identity, demographics, contacts, conditions and
their programmes, targets and schedule, medications, risk factors, the patient's own notes,
devices and gateways, care team, consents, alert lifecycle, clinician notes, the audit trail.

One module per part, each with its SQL as named constants; the API calls these and never writes
SQL of its own. Reads of readings and alerts as the ingest path stores them go through
``ingest_server.store``.
"""
