"""A message delivered twice at once (a redelivery after a cut connection while the
first delivery is still being processed, or one message published twice) is
decided once: the second transaction waits for the first, then finds it done.

Found by the chaos suite (`hub chaos`): before, the processed-message check ran
before the locks were taken, so the second delivery saw nothing processed, waited
for the first's locks, and was then decided again (an audit decision
`stale_version` beside the first one's link or create).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from hub.broker.connection import message_id_for
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import Incoming, process
from hub.publishing import canonical_body
from tests.factories import update

pytestmark = pytest.mark.integration


def _incoming(body: bytes) -> Incoming:
    return Incoming(message_id_for("source.dwp", body), "source.dwp", body)


@pytest.mark.parametrize("body", [
    canonical_body(update("dwp", "CB-RACE-1")),
    json.dumps({"source": "dwp", "source_record_id": "CB-RACE-2", "source_version": 1,
                "kind": "upsert", "child": {"given_name": "Ottoline"}}).encode(),  # invalid
], ids=["update", "invalid"])
async def test_a_message_processed_twice_at_once_is_decided_once(
    database_url: str, body: bytes
) -> None:
    item = _incoming(body)
    first, second = await connect(database_url), await connect(database_url)
    try:
        # The first delivery is processed inside a transaction that has not committed.
        holding = first.transaction()
        await holding.start()
        [one] = await process(first, [item], Thresholds())
        assert one.action in ("create", "dead")
        # The second delivery of the same message, on another connection, meanwhile.
        racing = asyncio.create_task(process(second, [item], Thresholds()))
        await asyncio.sleep(0.5)
        assert not racing.done()  # it waits for the first
        await holding.commit()
        [two] = await asyncio.wait_for(racing, 10)
        assert (two.action, two.reason) == ("duplicate", "already_processed")
        decisions = await first.fetchval(
            "SELECT count(*) FROM audit_log WHERE detail->>'message_id' = $1", item.message_id)
        assert decisions == 1
        assert await first.fetchval("SELECT count(*) FROM parked") == (one.action == "dead")
        assert await first.fetchval("SELECT count(*) FROM children") == (one.action == "create")
    finally:
        await first.close()
        await second.close()


async def test_a_dead_letter_delivered_twice_is_parked_and_audited_once(
    running: dict[str, str], settings
) -> None:
    import aio_pika

    from hub.broker import topology as topo
    from hub.broker.connection import message
    from tests.helpers import count, hub

    conn = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        dead = await channel.get_exchange(topo.DEAD)
        for _ in range(2):  # the broker redelivers what was parked but not acked
            await dead.publish(message(b"{not json", message_id="dead-twice-1",
                                       headers={topo.H_REASON: "invalid_json"}),
                               routing_key="source.dwp")
    finally:
        await conn.close()
    hub(running, "wait", "--timeout", "60")
    url = settings.database_url
    # Known by its publisher's id within its routing key (scoped_message_id).
    mid = "source.dwp/dead-twice-1"
    assert await count(url, f"SELECT count(*) FROM parked WHERE message_id = '{mid}'") == 1
    assert await count(url, "SELECT count(*) FROM audit_log"
                            f" WHERE detail->>'message_id' = '{mid}'") == 1


async def test_a_processed_message_dead_lettered_by_the_delivery_limit_is_no_dead_letter(
    running: dict[str, str], settings
) -> None:
    """Its acknowledgement lost again and again (faults), the broker dead-letters a
    message a worker had committed: its effect exists, so parking drops the copy."""

    from tests.helpers import count

    body = canonical_body(update("dwp", "CB-LIMIT-1"))
    mid = message_id_for("source.dwp", body)
    await _processed_then_dead_lettered(running, settings.amqp_url, mid, body, [body])
    url = settings.database_url
    assert await count(url, "SELECT count(*) FROM children") == 1
    assert await count(url, "SELECT count(*) FROM parked") == 0
    assert await count(url, "SELECT count(*) FROM audit_log"
                            f" WHERE detail->>'message_id' = '{mid}'") == 1


async def test_a_good_update_returned_to_the_delivery_limit_by_lost_consumers_is_applied(
    hub_env: dict[str, str], settings, tmp_path
) -> None:
    """RabbitMQ 3.x counts a consumer's lost channel toward the quorum queue's delivery
    limit. A good update held by consumers that kept dying reaches the limit unprocessed:
    it goes back to the pipeline (a bounded number of times), not to the dead letters."""
    import aio_pika

    from hub.broker import topology as topo
    from hub.broker.connection import message
    from tests.helpers import HubProcess, count, hub

    hub(hub_env, "setup")
    body = canonical_body(update("dwp", "CB-UNLUCKY-1"))
    conn = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        ingest = await channel.get_exchange(topo.INGEST)
        await ingest.publish(message(body, message_id=message_id_for("source.dwp", body)),
                             routing_key="source.dwp")
        # Consumers that take it and die before acknowledging, past the delivery limit.
        for _ in range(topo.DELIVERY_LIMIT + 1):
            doomed = await conn.channel()
            queue = await doomed.declare_queue(topo.INBOUND, passive=True)
            got = await queue.get(no_ack=False, fail=False, timeout=5)
            if got is None:  # the broker has dead-lettered it
                break
            await doomed.close()
        waiting = 0
        for _ in range(50):  # dead-lettering (at-least-once) takes a moment
            look = await conn.channel()
            dead = await look.declare_queue(topo.PARKING_DEAD, passive=True)
            waiting = dead.declaration_result.message_count or 0
            await look.close()
            if waiting:
                break
            await asyncio.sleep(0.1)
        assert waiting == 1
    finally:
        await conn.close()
    proc = HubProcess(hub_env, log=tmp_path / "hub.log")
    try:
        hub(hub_env, "wait", "--timeout", "60")
    finally:
        assert proc.stop() == 0
    url = settings.database_url
    assert await count(url, "SELECT count(*) FROM children") == 1
    assert await count(url, "SELECT count(*) FROM parked") == 0


async def test_a_message_at_the_delivery_limit_again_and_again_is_parked_as_poison(
    running: dict[str, str], settings
) -> None:
    """The bound: after MAX_REDRIVES trips back, a message that keeps reaching the
    delivery limit (a worker dies on it every time) is a poison message."""
    import aio_pika

    from hub.broker import topology as topo
    from hub.broker.connection import message
    from tests.helpers import count, hub, jsonl
    from workers.parking import H_REDRIVEN, MAX_REDRIVES

    body = canonical_body(update("dwp", "CB-KILLER-1"))
    death = {"reason": "delivery_limit", "queue": topo.INBOUND, "count": 1,
             "exchange": topo.INGEST, "routing-keys": ["source.dwp"]}
    conn = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        dead = await channel.get_exchange(topo.DEAD)
        await dead.publish(message(body, message_id=message_id_for("source.dwp", body),
                                   headers={"x-death": [death], H_REDRIVEN: MAX_REDRIVES,
                                            "x-first-death-reason": "delivery_limit"}),
                           routing_key="source.dwp")
    finally:
        await conn.close()
    hub(running, "wait", "--timeout", "60")
    assert await count(settings.database_url, "SELECT count(*) FROM children") == 0
    dead_letters = jsonl(hub(running, "dlq", "list", "--json").stdout)
    assert [(d["reason"], d["source_record_id"]) for d in dead_letters] == [
        ("poison_message", "CB-KILLER-1")]


async def test_a_different_message_dead_lettered_under_a_processed_id_is_parked(
    running: dict[str, str], settings
) -> None:
    """A copy of a committed message is dropped, but a different message reusing its
    id that reaches the dead-letter exchange is kept, as the pipeline keeps one."""

    from tests.helpers import count

    body = canonical_body(update("dwp", "CB-REUSE-1"))
    other = canonical_body(update("dwp", "CB-REUSE-2", given_name="Tamsin"))
    mid = "reused-at-the-limit-1"
    # The copy; the other message, twice.
    await _processed_then_dead_lettered(running, settings.amqp_url, mid, body,
                                        [body, other, other])
    url = settings.database_url
    assert await count(url, "SELECT count(*) FROM children") == 1
    assert await count(url, f"SELECT count(*) FROM parked WHERE message_id = 'source.dwp/{mid}'"
                            " AND reason = 'poison_message' AND source_record_id = 'CB-REUSE-2'"
                            " AND body_digest IS NOT NULL") == 1
    assert await count(url, "SELECT count(*) FROM parked") == 1


async def _processed_then_dead_lettered(env: dict[str, str], amqp_url: str, mid: str,
                                        body: bytes, dead_bodies: list[bytes]) -> None:
    """`body` published and processed under `mid`; then `dead_bodies` under the same
    id reach the dead-letter exchange as the delivery limit sends them."""
    import aio_pika

    from hub.broker import topology as topo
    from hub.broker.connection import message
    from tests.helpers import hub

    conn = await aio_pika.connect(amqp_url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        ingest = await channel.get_exchange(topo.INGEST)
        await ingest.publish(message(body, message_id=mid), routing_key="source.dwp")
        hub(env, "wait", "--timeout", "60")
        dead = await channel.get_exchange(topo.DEAD)
        for payload in dead_bodies:
            await dead.publish(message(payload, message_id=mid,
                                       headers={"x-first-death-reason": "delivery_limit"}),
                               routing_key="source.dwp")
    finally:
        await conn.close()
    hub(env, "wait", "--timeout", "60")
