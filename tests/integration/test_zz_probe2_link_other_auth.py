"""Probe: an update beside shielded children of two authorities (hidden from each,
fix D) is linked by one authority into its own shielded child; it then reads it."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import moved, nhs, update
from tests.helpers import hub, jsonl
from tests.integration.test_operators import publish

pytestmark = pytest.mark.integration

OTHER = {"lines": ["9 Mill Street"], "town": "Liverpool", "postcode": "L1 8JQ", "la": "341"}


def test_probe_link_into_own_shielded_reveals_update(running: dict[str, str], tmp_path: Path) -> None:
    env = running
    for la in ("383", "330", "341"):
        hub(env, "council", "add", la)
    publish(env, tmp_path, "la", update("la", "LA-1"))
    s1 = jsonl(hub(env, "export").stdout)[0]["child_id"]
    hub(env, "shield", s1, "--authority", "383", "--by", "o", "--reason", "refuge")
    publish(env, tmp_path, "la", update("la", "LA-2", nhs_number=nhs(2), family_name="Quenby-Hart",
                                        address=OTHER))
    for it in jsonl(hub(env, "review", "list", "--json").stdout):
        hub(env, "review", "resolve", it["id"], "--create", "--by", "o", "--authority", "383")
    s2 = next(e["child_id"] for e in jsonl(hub(env, "export").stdout) if e["child_id"] != s1)
    hub(env, "shield", s2, "--authority", "330", "--by", "o", "--reason", "refuge")
    for la in ("383", "330", "341"):
        hub(env, "notifications", "consume", "--council", la)
    publish(env, tmp_path, "dwp", moved(update("dwp", "CB-1", nhs_number=None),
                                        lines=["7 Heron Way"], postcode="B6 4AA"))
    [item] = jsonl(hub(env, "review", "list", "--json").stdout)
    print("ITEM", item["reason"], [c["child_id"] for c in item["candidates"]], s1, s2)
    assert {c["child_id"] for c in item["candidates"]} == {s1, s2}
    shown = hub(env, "review", "show", item["id"], "--authority", "383").stdout
    assert "Heron" not in shown  # fix D: 383's user may not see the update's address
    done = hub(env, "review", "resolve", item["id"], "--link", s1, "--by", "la-383-manager",
               "--authority", "383", check=False)
    print("RESOLVE rc", done.returncode, done.stdout, done.stderr)
    rec = jsonl(hub(env, "show", s1, "--by", "la-383-manager", "--authority", "383").stdout)[0]
    print("SHOW 383", rec["child"].get("address"))
    told = hub(env, "notifications", "consume", "--council", "383").stdout
    print("383 TOLD Heron:", "Heron" in told)
    assert "Heron" not in str(rec["child"].get("address")), "383 now reads the update's address"
