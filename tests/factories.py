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
    return base


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
