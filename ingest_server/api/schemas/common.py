"""Field types shared by the request models: bounded ids and texts, paging."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, Field

#: An id of ours (patient, clinician, organisation, gateway): what ``wire.Identifier`` allows.
ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,64}$"
Id = Annotated[str, Field(pattern=ID_PATTERN, examples=["p-0001"])]
#: Free text: no NUL and no other control characters except tab and newlines.
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
ShortText = Annotated[str, Field(min_length=1, max_length=200, pattern=_TEXT)]
LongText = Annotated[str, Field(min_length=1, max_length=4000, pattern=_TEXT)]

PatientIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="The patient's id")]
#: ``wire.DeviceIdentity.device_key`` (make/model/serial or addr/ADDRESS)
DeviceKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]

#: Largest page any list returns.
MAX_PAGE = 500
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page length")]
Offset = Annotated[int, Query(ge=0, le=100_000, description="Rows to skip")]


class ErrorDetail(BaseModel):
    """What an error answer says: a short reason, never an internal detail."""

    detail: str


#: Answers every authenticated route can give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "No valid bearer token"},
    403: {"model": ErrorDetail, "description": "The role or the care/consent rule forbids it"},
    404: {"model": ErrorDetail, "description": "Not found"},
    409: {"model": ErrorDetail, "description": "Conflicts with the stored state"},
    413: {"model": ErrorDetail, "description": "Request body too large"},
    503: {"model": ErrorDetail, "description": "Database unavailable"},
}
