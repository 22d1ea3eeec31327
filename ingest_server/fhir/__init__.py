"""FHIR R4 export of the profile: pure mappings from our rows to FHIR resources (JSON dicts).

The resources follow FHIR R4 (and are valid R4B: the two do not differ for the resources used
here); observations follow the HL7 Personal Health Device IG: IEEE 11073-10101 (MDC) codes with
LOINC where the FHIR vital-signs profiles apply, UCUM units, the measuring device and the
gateway as Device resources, and the reading's deterministic id as identifier, so a receiver
that imports the same reading twice can tell.
"""

from ingest_server.fhir.export import (
    FHIR_JSON,
    blood_pressure_observations,
    bundle,
    condition,
    consent,
    device,
    flag,
    gateway_device,
    glucose_observation,
    operation_outcome,
    patient,
)

__all__ = [
    "FHIR_JSON",
    "blood_pressure_observations",
    "bundle",
    "condition",
    "consent",
    "device",
    "flag",
    "gateway_device",
    "glucose_observation",
    "operation_outcome",
    "patient",
]
