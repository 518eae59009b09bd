"""Every source format through `hub publish` and the real pipeline: each record ends
as exactly one effect (a record change, a review item or a dead letter)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.base import Record
from adapters.registry import reader
from hub.validate import Rejection, check
from tests.helpers import HubProcess, hub, jsonl, write_jsonl

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parent.parent / "fixtures" / "adapters"

CASES = [
    ("csv", "dwp", ["good.csv", "mixed.csv", "bom_crlf_quoted.csv"]),
    ("fhir", "pds", ["bundle.json", "mixed.ndjson", "restricted.json"]),
    ("ctf", "dfe", ["good.xml", "mixed.xml"]),
    ("jsonl", "dwp", ["good.jsonl", "mixed.jsonl"]),
]


def expected(fmt: str, source: str, files: list[Path]) -> tuple[int, int]:
    good = bad = 0
    for path in files:
        with path.open("rb") as f:
            for item in reader(fmt)(f, source):
                if isinstance(item, Record) and not isinstance(check(item.update, source),
                                                               Rejection):
                    good += 1
                else:
                    bad += 1
    return good, bad


@pytest.mark.parametrize(("fmt", "source", "names"), CASES)
def test_format_through_the_pipeline(
    fmt: str, source: str, names: list[str], hub_env: dict[str, str], tmp_path: Path
) -> None:
    files = [FIXTURES / fmt / n for n in names]
    good, bad = expected(fmt, source, files)
    assert good and bad  # the fixtures hold both kinds
    hub(hub_env, "setup")
    proc = HubProcess(hub_env, log=tmp_path / "hub.log")
    try:
        out = hub(hub_env, "publish", "--source", source, "--format", fmt, "--quiet",
                  *map(str, files))
        hub(hub_env, "wait", "--timeout", "60")
        dead = jsonl(hub(hub_env, "dlq", "list", "--json").stdout)
        # A retry re-drives a canonical body; a CSV row, a FHIR resource or a CTF
        # pupil the adapter rejected is refused (it came back as invalid_json or
        # unknown_field, its own reason lost). Either way each keeps its reason.
        retried = hub(hub_env, "dlq", "retry", "--all", "--by", "op-1")
        hub(hub_env, "wait", "--timeout", "60")
        again = jsonl(hub(hub_env, "dlq", "list", "--json").stdout)
    finally:
        assert proc.stop() == 0
    refused = retried.stderr.count("adapter rejected it")
    assert refused == sum(1 for d in dead if d["format"] == fmt) > 0, retried.stderr
    assert f"retried {len(dead) - retried.stderr.count('cannot retry')}" in retried.stdout
    assert sorted((d["reason"], str(d["source_record_id"])) for d in again) == sorted(
        (d["reason"], str(d["source_record_id"])) for d in dead)
    summaries = re.findall(r"^/\S+: published (\d+), rejected (\d+)", out.stdout, re.M)
    assert len(summaries) == len(files)
    assert sum(int(p) for p, _ in summaries) == good
    assert sum(int(r) for _, r in summaries) == bad
    assert len(dead) == bad
    assert all(d["reason"] and d["error"] for d in dead)
    exported = jsonl(hub(hub_env, "export").stdout)
    review = jsonl(hub(hub_env, "review", "list", "--json").stdout)
    linked = {(s["source"], s["source_record_id"]) for e in exported for s in e["sources"]}
    assert len(linked) + len(review) <= good and linked  # duplicates within a file collapse
    if fmt == "fhir":
        restricted = [e for e in exported if e["shielded"]]
        assert restricted, "a restricted-at-origin patient is shielded on arrival"
        assert all("address" not in e["child"] for e in restricted)


def test_a_pupil_at_a_school_across_the_border_stays_with_their_council(
    hub_env: dict[str, str], tmp_path: Path
) -> None:
    """A CTF names its school's LA, not the pupil's (address.la_inferred): a child the
    hub knows in Leeds (383), whose Bradford school (380) sends a transfer file from
    the same postcode, is not moved to Bradford, and Bradford is told nothing."""
    hub(hub_env, "setup")
    for la in ("383", "380"):
        hub(hub_env, "council", "add", la)
    known = {"source": "la", "source_record_id": "LA-7", "source_version": 1,
             "kind": "upsert", "child": {
                 "given_name": "Amara", "middle_names": "Grace Olu", "family_name": "Okafor",
                 "date_of_birth": "2014-05-17", "sex": "female",
                 "address": {"lines": ["Flat 4", "12 Larch Road", "Headingley"],
                             "town": "Leeds", "postcode": "LS6 3QT", "la": "383"}}}
    ctf = (FIXTURES / "ctf" / "good.xml").read_text().replace(
        "<LEA>383</LEA>", "<LEA>380</LEA>", 1)
    (tmp_path / "bradford.xml").write_text(ctf)
    proc = HubProcess(hub_env, log=tmp_path / "hub.log")
    try:
        hub(hub_env, "publish", "--source", "la", "--format", "jsonl",
            str(write_jsonl(tmp_path / "la.jsonl", [known])))
        hub(hub_env, "wait", "--timeout", "60")
        hub(hub_env, "publish", "--source", "dfe", "--format", "ctf",
            str(tmp_path / "bradford.xml"))
        hub(hub_env, "wait", "--timeout", "60")
    finally:
        assert proc.stop() == 0
    [amara] = [e for e in jsonl(hub(hub_env, "export").stdout)
               if e["child"]["family_name"] == "Okafor"]
    assert {s["source"] for s in amara["sources"]} == {"la", "dfe"}  # one child, linked
    assert amara["child"]["address"]["la"] == "383"
    assert "la_inferred" not in amara["child"]["address"]
    leeds = jsonl(hub(hub_env, "notifications", "consume", "--council", "383").stdout)
    assert [n["event"] for n in leeds if n["child_id"] == amara["child_id"]] == [
        "child.created", "child.updated"]
    bradford = jsonl(hub(hub_env, "notifications", "consume", "--council", "380").stdout)
    assert [n for n in bradford if n["child_id"] == amara["child_id"]] == []


def test_every_rejection_a_publish_reports_is_kept(
    hub_env: dict[str, str], tmp_path: Path
) -> None:
    """A bad record's letter is its run's own: published again after its letter was
    purged, or the same bytes read as another format, it was reported rejected and
    dropped as an id already parked (found by an independent probe)."""
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"not json at all\n")
    hub(hub_env, "setup")
    proc = HubProcess(hub_env, log=tmp_path / "hub.log")
    try:
        def publish(fmt: str) -> None:
            out = hub(hub_env, "publish", "--source", "dwp", "--format", fmt, str(bad))
            assert "rejected 1" in out.stdout, out.stdout
            hub(hub_env, "wait", "--timeout", "60")

        publish("jsonl")
        assert len(jsonl(hub(hub_env, "dlq", "list", "--json").stdout)) == 1
        assert "purged 1" in hub(hub_env, "dlq", "purge", "--older-than-days", "0").stdout
        publish("jsonl")
        publish("csv")
        dead = jsonl(hub(hub_env, "dlq", "list", "--json").stdout)
    finally:
        assert proc.stop() == 0
    assert sorted(d["format"] or "-" for d in dead) == ["csv", "jsonl"], dead
