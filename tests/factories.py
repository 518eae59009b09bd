"""Invented children and canonical updates for tests (NHS numbers start 999)."""

from __future__ import annotations

import copy
from typing import Any

from hub.ingest import Incoming
from hub.nhs import check_digit
from hub.publishing import canonical_body


def nhs(n: int) -> str:
    """The n-th valid test NHS number (999 prefix, valid check digit)."""
    for i in range(n * 10, n * 10 + 10):  # distinct n never share a number
        first = f"999{i:06d}"
        d = check_digit(first)
        if d is not None:
            return first + str(d)
    raise ValueError(f"no valid test NHS number near {n}")


def child(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "nhs_number": nhs(1),
        "given_name": "Marigold",
        "family_name": "Quenby",
        "date_of_birth": "2014-03-09",
        "sex": "female",
        "address": {"lines": ["12 Orchard Row"], "town": "Leeds", "postcode": "LS6 1AA",
                    "la": "383"},
        "carers": [{"name": "Rowan Quenby", "relationship": "mother", "phone": "07700 900111"}],
    }
    base.update(over)
    number = str(base.get("nhs_number") or "")
    if "carers" not in over and number != nhs(1) and number[3:9].isdigit():
        # Another child: another family's number (rule 6 protects a shielded child's).
        base["carers"] = [{"name": "Rowan Quenby", "relationship": "mother",
                           "phone": drama_phone(int(number[3:9]) // 10)}]
    return base


#: Ofcom's ranges for drama (no real line): 1,000 numbers each.
_DRAMA = ("0113 496 0", "0114 496 0", "0115 496 0", "0116 496 0", "0117 496 0", "0118 496 0",
          "0121 496 0", "0131 496 0", "0141 496 0", "0151 496 0", "0161 496 0", "020 7946 0",
          "0191 498 0", "028 9649 6", "029 2018 0", "01632 960")


def drama_phone(n: int) -> str:
    """The n-th invented phone number (n below 16,000), none of them 07700 900111."""
    return f"{_DRAMA[n // 1000 % len(_DRAMA)]}{n % 1000:03d}"


def update(source: str, rid: str, version: int = 1, **child_over: Any) -> dict[str, Any]:
    return {"source": source, "source_record_id": rid, "source_version": version,
            "kind": "upsert", "child": child(**child_over)}


def moved(u: dict[str, Any], **address: Any) -> dict[str, Any]:
    out = copy.deepcopy(u)
    out["child"]["address"] = {"lines": ["3 Harbour Lane"], "town": "Birmingham",
                               "postcode": "B5 7QQ", "la": "330", **address}
    return out


def incoming(u: dict[str, Any]) -> Incoming:
    """An update as the pipeline receives it, its message id made of its source,
    record id and version."""
    return Incoming(f"m-{u['source']}-{u['source_record_id']}-{u['source_version']}",
                    f"source.{u['source']}", canonical_body(u))
