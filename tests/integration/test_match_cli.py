"""`hub match train|models|activate` through the CLI, and the pipeline using the model."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from hub.synth.feed import initial_load, write_jsonl
from hub.synth.population import generate_population
from tests.helpers import HubProcess, hub, jsonl

pytestmark = pytest.mark.integration


async def test_train_activate_and_decisions_record_the_version(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    hub(hub_env, "setup")
    pop = generate_population(400, seed=3, shielded_fraction=0.0)
    write_jsonl(initial_load(pop), tmp_path / "la.jsonl")
    proc = HubProcess(hub_env, log=tmp_path / "hub.log")
    try:
        hub(hub_env, "publish", "--source", "la", "--format", "jsonl", "--quiet",
            str(tmp_path / "la.jsonl"))
        hub(hub_env, "wait", "--timeout", "60")
    finally:
        assert proc.stop() == 0
    trained = jsonl(hub(hub_env, "match", "train", "--sample", "400", "--pairs", "2000").stdout)
    version = trained[0]["version"]
    assert version.startswith("trained-") and trained[0]["active"] is True
    models = jsonl(hub(hub_env, "match", "models").stdout)
    assert [m["version"] for m in models if m["active"]] == [version]
    assert hub(hub_env, "match", "activate", "nope", check=False).returncode == 1

    # A restarted hub scores with the model in force and says so in its decisions.
    proc = HubProcess(hub_env, log=tmp_path / "hub2.log")
    try:
        first = pop.children[0].to_child()
        first["given_name"] = first["given_name"] + "e"  # a near match: scored, not tied
        first["nhs_number"] = None
        write_jsonl([{"source": "dwp", "source_record_id": "CB-1", "source_version": 1,
                      "child": {k: v for k, v in first.items() if v not in (None, [])}}],
                    tmp_path / "dwp.jsonl")
        hub(hub_env, "publish", "--source", "dwp", "--format", "jsonl",
            str(tmp_path / "dwp.jsonl"))
        hub(hub_env, "wait", "--timeout", "60")
    finally:
        assert proc.stop() == 0
    log = (tmp_path / "hub2.log").read_text()
    assert f'"model_version": "{version}"' in log
    conn = await asyncpg.connect(settings.database_url)
    try:
        used = await conn.fetchval(
            "SELECT detail->>'model_version' FROM audit_log WHERE subject = 'dwp/CB-1@1'")
    finally:
        await conn.close()
    assert used == version
