"""Code systems and codes of the FHIR export, in one table-like module."""

from __future__ import annotations

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
#: IEEE 11073-10101 nomenclature (MDC), as the PHD IG names it.
MDC = "urn:iso:std:iso:11073:10101"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PHD_CATEGORY = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
FLAG_PRIORITY_CODES = "http://terminology.hl7.org/CodeSystem/flag-priority-code"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
RFC3986 = "urn:ietf:rfc:3986"

# Extensions (FHIR core extensions registry).
EXT_GATEWAY_DEVICE = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"
EXT_FLAG_PRIORITY = "http://hl7.org/fhir/StructureDefinition/flag-priority"
EXT_FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"

# Our own identifier systems. A deployment registers national ones (an OID or URL for the
# national insurance number and each insurer's policy numbers) and maps them here.
SYSTEM_PATIENT_ID = "urn:homewatch:patient-id"
SYSTEM_DEVICE_KEY = "urn:homewatch:device-key"
SYSTEM_GATEWAY_ID = "urn:homewatch:gateway-id"
SYSTEM_ALERT_RULE = "urn:homewatch:alert-rule"
SYSTEM_ORGANISATION_ID = "urn:homewatch:organisation-id"
SYSTEM_CLINICIAN_ID = "urn:homewatch:clinician-id"
IDENTIFIER_SYSTEMS = {
    "national_insurance_number": "urn:homewatch:identifier:national-insurance-number",
    "health_insurance_policy": "urn:homewatch:identifier:health-insurance-policy",
    "local": "urn:homewatch:identifier:local",
}

# (system, code, display) triples.
BP_PANEL_LOINC = (LOINC, "85354-9", "Blood pressure panel with all children optional")
BP_PANEL_MDC = (MDC, "150020", "MDC_PRESS_BLD_NONINV")
SYSTOLIC = (
    (LOINC, "8480-6", "Systolic blood pressure"),
    (MDC, "150021", "MDC_PRESS_BLD_NONINV_SYS"),
)
DIASTOLIC = (
    (LOINC, "8462-4", "Diastolic blood pressure"),
    (MDC, "150022", "MDC_PRESS_BLD_NONINV_DIA"),
)
MEAN_ARTERIAL = (
    (LOINC, "8478-0", "Mean blood pressure"),
    (MDC, "150023", "MDC_PRESS_BLD_NONINV_MEAN"),
)
HEART_RATE = ((LOINC, "8867-4", "Heart rate"), (MDC, "149546", "MDC_PULS_RATE_NON_INV"))

#: Glucose by GLS sample type: the MDC concentration code.
GLUCOSE_MDC = {
    "capillary_whole_blood": ("160192", "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD"),
    "capillary_plasma": ("160196", "MDC_CONC_GLU_CAPILLARY_PLASMA"),
    "venous_whole_blood": ("160200", "MDC_CONC_GLU_VENOUS_WHOLEBLOOD"),
    "venous_plasma": ("160204", "MDC_CONC_GLU_VENOUS_PLASMA"),
    "arterial_whole_blood": ("160208", "MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD"),
    "arterial_plasma": ("160212", "MDC_CONC_GLU_ARTERIAL_PLASMA"),
    "interstitial_fluid": ("160220", "MDC_CONC_GLU_ISF"),
}
GLUCOSE_MDC_GENERIC = ("160184", "MDC_CONC_GLU_GEN")
#: Glucose LOINC by (specimen group, unit group). Capillary (and undetermined) samples are
#: glucometer readings; venous and arterial ones are blood or plasma.
GLUCOSE_LOINC = {
    ("capillary", "molar"): ("14743-9", "Glucose [Moles/volume] in Capillary blood by Glucometer"),
    ("capillary", "mass"): ("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer"),
    ("blood", "molar"): ("15074-8", "Glucose [Moles/volume] in Blood"),
    ("blood", "mass"): ("2339-0", "Glucose [Mass/volume] in Blood"),
    ("plasma", "molar"): ("14749-6", "Glucose [Moles/volume] in Serum or Plasma"),
    ("plasma", "mass"): ("2345-7", "Glucose [Mass/volume] in Serum or Plasma"),
}

# Device types (PHD IG): a simple measuring device, its specialisation, and the gateway.
DEVICE_TYPE_SIMPLE = (MDC, "65573", "MDC_MOC_VMS_MDS_SIMP")
DEVICE_TYPE_GATEWAY = (MDC, "531981", "MDC_MOC_VMS_MDS_AHD")
DEVICE_SPECIALISATION = {
    "blood_pressure": (MDC, "528391", "MDC_DEV_SPEC_PROFILE_BPM"),
    "glucose": (MDC, "528401", "MDC_DEV_SPEC_PROFILE_GLUCOSE"),
}

#: Our alert severities as flag priorities (high priority for high and urgent).
FLAG_PRIORITY = {"urgent": "PH", "high": "PH", "warning": "PM", "info": "PL"}
#: Consent purposes as purposes of use (v3 ActReason).
PURPOSE_OF_USE = {
    "treatment": ("TREAT", "treatment"),
    "research": ("HRESCH", "healthcare research"),
}
