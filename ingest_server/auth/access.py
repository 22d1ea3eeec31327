"""Who may read and change which patient's data: the access rule, in one place.

- A patient: their own data only.
- A clinician: a patient whose care team they are an active member of (and they are an active
  clinician) AND who has an active consent, for the purpose of the request, granted to them or
  to their organisation. Either missing: 403.
- An admin or a gateway: no patient's health data.

The rule is one SQL condition (``CLINICIAN_MAY_READ``) so that single reads, the clinician's
patient list, the alerts inbox and the live stream all apply exactly the same rule, evaluated
at the moment of the read (a consent that expired a second ago no longer counts).
"""

from __future__ import annotations

from ingest_server import db
from ingest_server.auth.errors import Forbidden
from ingest_server.auth.principal import Principal, Role
from ingest_server.db import Connection

#: True when clinician ``%(clinician_id)s`` may read the patient in column ``{patient}`` for
#: purpose ``%(purpose)s`` now. Formatted with the patient column of the enclosing query.
CLINICIAN_MAY_READ = """
EXISTS (
    SELECT 1
    FROM care_team_members ct
    JOIN clinicians c ON c.clinician_id = ct.clinician_id AND c.active
    WHERE ct.patient_id = {patient} AND ct.clinician_id = %(clinician_id)s
      AND ct.removed_at IS NULL
      AND EXISTS (
          SELECT 1 FROM consents k
          WHERE k.patient_id = ct.patient_id AND k.purpose = %(purpose)s
            AND k.revoked_at IS NULL AND k.granted_at <= now()
            AND (k.valid_until IS NULL OR k.valid_until > now())
            AND ((k.grantee_kind = 'clinician' AND k.grantee_id = c.clinician_id)
              OR (k.grantee_kind = 'organisation' AND k.grantee_id = c.organisation_id))
      )
)
"""

_CHECK = "SELECT " + CLINICIAN_MAY_READ.format(patient="%(patient_id)s")

#: What a patient's own access is recorded as, in the audit trail.
OWN_DATA = "own data"


def clinician_condition(patient_column: str) -> str:
    """``CLINICIAN_MAY_READ`` for the patient in ``patient_column`` (a trusted column name)."""
    return CLINICIAN_MAY_READ.format(patient=patient_column)


async def clinician_may_read(
    conn: Connection, clinician_id: str, patient_id: str, purpose: str
) -> bool:
    params = {"clinician_id": clinician_id, "patient_id": patient_id, "purpose": purpose}
    ((allowed,),) = await db.fetch_tuples(conn, _CHECK, params)
    return bool(allowed)


async def authorize_patient_access(
    conn: Connection, principal: Principal, patient_id: str, purpose: str
) -> str:
    """The purpose to record when ``principal`` may access ``patient_id``'s data; ``Forbidden``
    otherwise (the same answer whether or not the patient exists, so that a refusal tells
    nothing about who is a patient here)."""
    if principal.role is Role.PATIENT:
        if principal.subject == patient_id:
            return OWN_DATA
        raise Forbidden(f"{principal.actor} asked for another patient's data ({patient_id})")
    if principal.role is Role.CLINICIAN:
        if await clinician_may_read(conn, principal.subject, patient_id, purpose):
            return purpose
        raise Forbidden(
            f"{principal.actor} is not in {patient_id}'s care team under an active "
            f"{purpose} consent",
            public="not in the patient's care team under an active consent",
        )
    raise Forbidden(f"{principal.actor} may not read health data")


def visibility(
    principal: Principal, purpose: str, patient_column: str
) -> tuple[str, dict[str, str]]:
    """An SQL condition on ``patient_column`` (a trusted column name) selecting the patients
    ``principal`` may see, and its parameters: for lists, the inbox and the live stream."""
    if principal.role is Role.PATIENT:
        return f"{patient_column} = %(own_patient_id)s", {"own_patient_id": principal.subject}
    if principal.role is Role.CLINICIAN:
        return clinician_condition(patient_column), {
            "clinician_id": principal.subject,
            "purpose": purpose,
        }
    return "false", {}
