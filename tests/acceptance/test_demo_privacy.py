"""`hub demo` end to end: it reports, proves the shield held, and its logs and
output carry no personal data of the children it generated."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hub.synth.feed import central_feed
from hub.synth.population import generate_population
from tests.helpers import hub

pytestmark = pytest.mark.integration


def personal_values(children: int, seed: int) -> tuple[set[str], set[str]]:
    pop = generate_population(children, seed)
    feed = central_feed(pop, seed)
    exact: set[str] = set()
    names: set[str] = set()
    for u in feed.updates:
        c = u["child"]
        for k in ("nhs_number", "date_of_birth", "upn"):
            if isinstance(c.get(k), str):
                exact.add(c[k])
        if c.get("address") and c["address"].get("postcode"):
            exact.add(c["address"]["postcode"])
        for k in ("given_name", "family_name"):
            if isinstance(c.get(k), str) and len(c[k]) >= 4:
                names.add(c[k])
    return exact, names


def test_demo_reports_and_leaks_nothing(harness_env: dict[str, str]) -> None:
    demo_env = harness_env
    res = hub(demo_env, "demo", "--children", "400", "--seed", "5", timeout=600)
    out = res.stdout
    assert "PROOF: no shielded child was duplicated or exposed" in out
    assert re.search(r"updates: create \d+, link \d+", out)
    assert "operator burden:" in out
    log_path = Path(re.search(r"its log: (\S+)", out).group(1))  # type: ignore[union-attr]
    lines = log_path.read_text().splitlines()
    assert any('"event": "decision"' in line for line in lines)
    # The demo's workers ran as a least-privilege database login, not the superuser.
    assert "hub run connects as database login" in out
    assert "db_login_too_powerful" not in log_path.read_text()
    # Errors (dead letters, review items) and metrics, read back from the demo's database.
    demo = dict(demo_env, HUB_DATABASE_URL=demo_env["HUB_DATABASE_URL"] + "_demo")
    dead = hub(demo, "dlq", "list", "--json").stdout.splitlines()
    assert dead, "the demo's feed has invalid records"
    reviews = hub(demo, "review", "list", "--json").stdout.splitlines()
    metrics = hub(demo, "status", "--prometheus").stdout.splitlines()
    assert any(m.startswith("hub_") for m in metrics)
    exact, names = personal_values(400, 5)
    name_re = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b")
    for text in [*lines, *out.splitlines(), *res.stderr.splitlines(), *dead, *reviews,
                 *metrics]:
        values = json.loads(text) if text.startswith("{") else {"text": text}
        for value in values.values():
            v = str(value)
            assert not any(e in v for e in exact), text
            assert not name_re.search(v), text
