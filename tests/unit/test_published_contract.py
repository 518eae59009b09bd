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
