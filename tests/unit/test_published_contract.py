"""The published JSON Schema and AsyncAPI documents are what the models say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.generate import HERE, documents, render


@pytest.mark.parametrize("name", sorted(documents()))
def test_published_documents_match_the_models(name: str) -> None:
    published = (HERE / name).read_text()
    assert published == render(documents()[name]), (
        f"schemas/{name} is stale: run `python -m schemas.generate`")


def test_schema_rejects_unknown_fields() -> None:
    schema = json.loads((HERE / "canonical_update.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"source", "source_record_id", "source_version", "child"}


def test_contract_example_is_valid() -> None:
    from hub.validate import check
    from schemas.canonical import CanonicalUpdate

    example = json.loads(Path(__file__).with_name("contract_example.json").read_text())
    assert isinstance(check(example, "dwp"), CanonicalUpdate)


def test_an_unknown_field_is_named_when_it_looks_like_a_field_name() -> None:
    """A source mends its feed by the name; a key that could be anything else (a
    child's name sent as a key) stays unnamed."""
    from hub.validate import Rejection, check

    example = json.loads(Path(__file__).with_name("contract_example.json").read_text())
    for where, key, named in ((example, "ethnicity", True),
                              (example["child"], "pupil_premium", True),
                              (example["child"]["address"], "uprn", True),
                              (example, "Amelia Hartley", False),
                              (example["child"], "Hartley", False),
                              (example["child"], "a" * 41, False)):
        where[key] = 1
        got = check(example, "dwp")
        del where[key]
        assert isinstance(got, Rejection) and got.reason == "unknown_field"
        assert (key in got.error) is named, got.error
        assert ("field " + key if named else "a field") in got.error
