"""A rejection says what was expected in words a publisher reads, not a validation
code (an independent probe read "kind: literal_error", "source_version: int_type"),
and never the value it was given."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hub.validate import Rejection, check

BASE: dict[str, Any] = {"source": "dwp", "source_record_id": "X", "source_version": 1,
                        "kind": "upsert",
                        "child": {"given_name": "Ada", "date_of_birth": "2015-01-01"}}


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    target = data
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return data


@pytest.mark.parametrize("path,value,reason,error", [
    (("kind",), "Kqzcanary", "schema_violation", "kind: should be 'upsert'"),
    (("source_version",), "Kqzcanary", "schema_violation",
     "source_version: should be a valid integer"),
    (("child", "sex"), "Kqzcanary", "schema_violation",
     "child.sex: should be 'female', 'male' or 'unknown'"),
    (("child", "address"), {"la": "Kqzcanary"}, "schema_violation",
     "child.address.la: local authority must be a three-digit DfE LA number"),
    (("child", "nhs_number"), 12, "invalid_nhs_number",
     "nhs_number should be a valid string"),
    (("child", "date_of_birth"), "2015-02-30", "invalid_date_of_birth",
     "date_of_birth is not a valid date (day value is outside expected range)"),
])
def test_rejections_read_as_words(path: tuple[str, ...], value: Any, reason: str,
                                  error: str) -> None:
    got = check(_with(path, value))
    assert isinstance(got, Rejection)
    assert (got.reason, got.error) == (reason, error)
    assert "Kqzcanary" not in got.error
