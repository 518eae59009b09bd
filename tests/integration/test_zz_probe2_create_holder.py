"""Probe: resolve --create beside a shielded candidate of authority 330, with the update
at an address held by a child shielded by 383: which authority shields the new record?"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import moved, nhs, update
from tests.helpers import hub, jsonl
from tests.integration.test_operators import publish

pytestmark = pytest.mark.integration

OTHER = {"lines": ["9 Mill Street"], "town": "Liverpool", "postcode": "L1 8JQ", "la": "341"}
OSWIN = {"nhs_number": nhs(3), "given_name": "Oswin", "family_name": "Pellow",
         "date_of_birth": "2017-08-01", "sex": "male"}


def test_probe_create_beside_330_at_383_address(running: dict[str, str], tmp_path: Path) -> None:
    env = running
    for la in ("383", "330", "341"):
        hub(env, "council", "add", la)
    # S1: a child shielded by 383 at 12 Orchard Row (its refuge).
    publish(env, tmp_path, "la", update("la", "LA-1", **OSWIN))
    s1 = jsonl(hub(env, "export").stdout)[0]["child_id"]
    hub(env, "shield", s1, "--authority", "383", "--by", "o", "--reason", "refuge")
    # S2: Marigold, shielded by 330, elsewhere.
    publish(env, tmp_path, "la", update("la", "LA-2", nhs_number=nhs(2), address=OTHER))
    s2 = next(e["child_id"] for e in jsonl(hub(env, "export").stdout) if e["child_id"] != s1)
    hub(env, "shield", s2, "--authority", "330", "--by", "o", "--reason", "refuge")
    for la in ("383", "330", "341"):
        hub(env, "notifications", "consume", "--council", la)
    # The central feed: Marigold (typo, no NHS number) now at the 383 refuge.
    publish(env, tmp_path, "dwp", update("dwp", "CB-1", nhs_number=None, given_name="Marigld"))
    [item] = jsonl(hub(env, "review", "list", "--json").stdout)
    print("ITEM", item["reason"], [c["child_id"] for c in item["candidates"]], "s2", s2)
    created = hub(env, "review", "resolve", item["id"], "--create", "--by", "op-1")
    print("CREATE", created.stdout.strip(), "|", created.stderr.strip())
    new = created.stdout.strip().rsplit(" ", 1)[-1]
    rec = next(e for e in jsonl(hub(env, "export").stdout) if e["child_id"] == new)
    print("NEW shielded", rec["shielded"], "authority", rec["shielding_authority"])
    print("330 told:", [n["event"] for n in jsonl(hub(env, "notifications", "consume",
                                                       "--council", "330").stdout)])
    told383 = jsonl(hub(env, "notifications", "consume", "--council", "383").stdout)
    print("383 told:", [(n["event"], n["child"].get("carers")) for n in told383])
    # 383, told, sees no child of its own in it and lifts the shield.
    hub(env, "unshield", new, "--authority", "383", "--by", "la-383", "--reason", "not ours")
    # Marigold's next update through the same source record: a new refuge.
    publish(env, tmp_path, "dwp", moved(update("dwp", "CB-1", 2, nhs_number=None,
                                               given_name="Marigld"),
                                        lines=["7 Heron Way"], postcode="B6 4AA"))
    print("REVIEW after v2:", [i["reason"] for i in jsonl(hub(env, "review", "list", "--json").stdout)])
    rec = next(e for e in jsonl(hub(env, "export").stdout) if e["child_id"] == new)
    print("EXPORT new:", rec["shielded"], rec["child"].get("address"))
    assert rec["shielding_authority"] == "330" or rec["shielded"], "open record of 330's candidate"
