"""The canonical update: one child as a source knows it.

These models are the contract (../shared/contract.md). Unknown fields are
rejected, never ignored, so a source that sends something we do not
understand finds out from the dead letters rather than by silent loss.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from hub.nhs import nhs_number_problem

PROTECTED_FIELDS: tuple[str, ...] = (
    "address",
    "carers",
    "education_setting",
    "gp_practice",
    "services",
)
VISIBLE_FIELDS: tuple[str, ...] = ("given_name", "family_name", "date_of_birth", "sex")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Address(Strict):
    lines: list[str] = Field(default_factory=list)
    town: str | None = None
    postcode: str | None = None
    la: str | None = Field(default=None, description="Three-digit DfE local authority number")
    la_inferred: bool | None = Field(
        default=None,
        description="true when `la` is the source's guess, not the LA the address lies in "
        "(a CTF knows only its school's LA): for the same postcode, the hub keeps an LA it "
        "already knows")

    @field_validator("la")
    @classmethod
    def _la_code(cls, v: str | None) -> str | None:
        if v is not None and not (v.isascii() and v.isdigit() and len(v) == 3):
            raise ValueError("local authority must be a three-digit DfE LA number")
        return v


class Carer(Strict):
    name: str | None = None
    relationship: str | None = None
    phone: str | None = None


class EducationSetting(Strict):
    urn: str | None = None
    name: str | None = None


class GpPractice(Strict):
    ods_code: str | None = None
    name: str | None = None


class Service(Strict):
    name: str | None = None
    contact: str | None = None


class Child(Strict):
    nhs_number: str | None = None
    upn: str | None = None
    given_name: str | None = None
    middle_names: str | None = None
    family_name: str | None = None
    former_family_names: list[str] = Field(default_factory=list)
    date_of_birth: date
    sex: Literal["female", "male", "unknown"] | None = None
    address: Address | None = None
    carers: list[Carer] = Field(default_factory=list)
    education_setting: EducationSetting | None = None
    gp_practice: GpPractice | None = None
    services: list[Service] = Field(default_factory=list)

    @field_validator("nhs_number")
    @classmethod
    def _nhs(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        v = v.replace(" ", "")
        problem = nhs_number_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("date_of_birth", mode="before")
    @classmethod
    def _date_text(cls, v: Any) -> Any:
        # Only "YYYY-MM-DD": pydantic would also read a number (or a string of
        # digits) as seconds since 1970, and a date-time as its date.
        if not isinstance(v, str | date) or (isinstance(v, str) and not _DATE.match(v.strip())):
            raise ValueError("date_of_birth must be a YYYY-MM-DD date")
        return v

    @field_validator("given_name", "family_name", "middle_names", "upn")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None

    @model_validator(mode="after")
    def _one_name(self) -> Child:
        if not self.given_name and not self.family_name:
            raise ValueError("at least one of given_name and family_name is required")
        if self.date_of_birth > date.today():
            raise ValueError("date of birth is in the future")
        return self


#: A source's name: it is in routing keys (source.NAME) and queue names (hub.held.NAME).
SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class CanonicalUpdate(Strict):
    source: str = Field(pattern=f"^{SOURCE_NAME.pattern}$")
    source_record_id: str = Field(min_length=1, max_length=200)
    # Strict: true is not version 1, nor "yes" restricted.
    source_version: StrictInt = Field(ge=0, le=2**63 - 1)
    kind: Literal["upsert"] = "upsert"
    restricted: StrictBool = Field(
        default=False,
        description="Restricted at origin (e.g. NHS PDS meta.security R or V): the hub "
        "treats the child as shielded on arrival until an authority decides.",
    )
    child: Child
