"""Who is calling: a role and a subject, from a verified token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    #: Reads and annotates the patients of their care teams, under the patients' consents.
    CLINICIAN = "clinician"
    #: Reads their own profile, readings and alerts; grants and revokes consents.
    PATIENT = "patient"
    #: Manages organisations, clinicians, gateways, devices, bindings, webhooks; reads the audit.
    #: Not a clinical role: an admin does not read health data.
    ADMIN = "admin"
    #: A home gateway: reads the list of devices it should accept.
    GATEWAY = "gateway"


#: A subject we accept: the id of a clinician, patient or gateway, or an admin's name.
SUBJECT = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    #: clinician_id, patient_id, gateway_id, or an admin's name.
    subject: str
    issuer: str

    @property
    def actor(self) -> str:
        """How the audit trail names the caller: ``role:subject``."""
        return f"{self.role}:{self.subject}"
