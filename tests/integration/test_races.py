"""Two workers racing on the same new child from several sources create it once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import nhs, update
from tests.helpers import HubProcess, hub, jsonl

pytestmark = pytest.mark.integration

NAMES = ["Aurelie", "Bastian", "Cosima", "Dashiell", "Elspeth", "Fenwick", "Greer", "Hamish",
         "Imogen", "Jasper", "Kenna", "Lorcan", "Maren", "Niall", "Odile", "Piers"]


async def test_racing_workers_create_each_child_once(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    from hub.client import SourcePublisher

    env = dict(hub_env, HUB_BATCH_SIZE="1")  # one message per transaction: most interleaving
    hub(env, "setup")
    publishers = {s: SourcePublisher(settings.amqp_url, s) for s in ("dwp", "pds", "dfe")}
    for p in publishers.values():
        await p.__aenter__()
    try:
        # Adjacent in the queue: the three sources' updates about one child arrive
        # together and go to different consumers at the same moment.
        for i, name in enumerate(NAMES):
            for source, pub in publishers.items():
                # dfe knows no NHS number: it must find the child by name and date of birth.
                await pub.publish(update(
                    source, f"{source}-{i}", nhs_number=None if source == "dfe"
                    else nhs(200 + i), given_name=name, family_name="Rookwood",
                    date_of_birth=f"2015-0{1 + i % 9}-1{i % 10}"))
    finally:
        for p in publishers.values():
            await p.__aexit__(None, None, None)
    workers = [HubProcess(env, "--workers", "2", log=tmp_path / f"hub{i}.log") for i in range(2)]
    try:
        hub(env, "wait", "--timeout", "120")
    finally:
        for w in workers:
            assert w.stop() == 0
    exported = jsonl(hub(env, "export").stdout)
    review = jsonl(hub(env, "review", "list", "--json").stdout)
    assert len(exported) == len(NAMES)  # four concurrent consumers, no duplicate
    assert review == []
    assert all(len(e["sources"]) == 3 for e in exported)
