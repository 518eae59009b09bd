"""The chaos suite, short: `hub chaos --quick` on private services of its own (one
RabbitMQ node, a PostgreSQL cluster, on free ports; never the machine's), a few
thousand updates from four sources, seven faults: two workers and the relay
SIGKILLed, broker and database connections cut, PostgreSQL crashed and restarted,
RabbitMQ restarted. Nothing lost, nothing doubled, nothing unexpected, every
notification delivered. The full suite is `make chaos` (README, Reliability).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import hub

pytestmark = pytest.mark.integration


def test_quick_chaos_loses_doubles_and_invents_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    run = hub(dict(os.environ), "chaos", "--quick", "--json", str(out),
              check=False, timeout=240)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    result = json.loads(out.read_text())
    g = result["figures"]
    assert result["ok"] and not result["problems"]
    # The stream went through: every id confirmed, every confirmed id has an effect.
    assert g["sent"] >= 3000
    assert g["confirmed"] == g["sent"] and g["unconfirmed"] == 0
    assert g["effects"] == g["confirmed"]
    assert (g["lost"], g["doubled"], g["unexpected"], g["misplaced"]) == (0, 0, 0, 0)
    assert g["dead_valid"] == 0  # no valid update held through five faults here
    assert g["duplicate_children"] == 0 and g["stale_links"] == 0
    # Every kind of effect happened, the poison messages after their attempts.
    assert g["changes"] > 1000 and g["noops"] > 10 and g["unchanged"] > 100
    assert g["reviews"] > 0
    assert g["dead_invalid"] > 0 and g["dead_poison"] == 2
    # Faults really met the stream: retried publishes, races run concurrently.
    assert g["publishes"] > g["sent"]
    assert g["race_groups_concurrent"] > 0
    assert [f["name"] for f in result["faults"]] == [
        "SIGKILL a pipeline worker mid-batch", "cut connections: hub-amqp + outside-amqp",
        "SIGKILL the outbox relay", "PostgreSQL restarted mid-stream",
        "SIGKILL a pipeline worker mid-batch", "cut connections: hub-pg",
        "RabbitMQ restarted mid-stream"]
    assert all(f["recovered"] is not None for f in result["faults"])
    # At least once: every committed notification reached its council.
    assert g["notes_committed"] > 1000
    assert g["notes_delivered"] == g["notes_committed"] and g["notes_missing"] == 0
    assert g["notes_unexpected"] == 0 and g["changes_unnotified"] == 0
    assert all(code == 0 for code in result["exit_codes"].values())
