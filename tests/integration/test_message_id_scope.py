"""A publisher's message ids are its own: two sources publishing straight to
hub.ingest may each number their messages 1, 2, 3 (found by an independent probe:
the second source's updates were dead letters as `message_id_reused`). Within one
source an id still says "this message"."""

from __future__ import annotations

import aio_pika
import pytest

from hub.broker import topology as topo
from hub.broker.connection import message, scoped_message_id
from hub.publishing import canonical_body
from tests.factories import nhs, update
from tests.helpers import hub, jsonl

pytestmark = pytest.mark.integration


def test_ids_are_scoped_once_and_the_hubs_own_are_kept() -> None:
    assert scoped_message_id("source.dwp", "1", b"{}") == "source.dwp/1"
    assert scoped_message_id("source.dwp", "source.dwp/1", b"{}") == "source.dwp/1"
    assert scoped_message_id("source.dwp", "retry:x:2", b"{}") == "retry:x:2"
    content = scoped_message_id("source.dwp", "", b"{}")
    assert content.startswith("sha256:")
    assert scoped_message_id("source.dwp", content, b"{}") == content


async def test_two_sources_may_use_the_same_message_ids(
    running: dict[str, str], settings,
) -> None:
    env = running
    conn = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        ingest = await channel.get_exchange(topo.INGEST)
        for source, n, name in (("dwp", 1, "Anwen"), ("pds", 2, "Bartholomew")):
            body = canonical_body(update(source, f"{source}-1", nhs_number=nhs(n),
                                         given_name=name, date_of_birth=f"201{n}-05-06"))
            await ingest.publish(message(body, message_id="1"), routing_key=f"source.{source}")
        # The same source's id again, for another message: kept as a dead letter.
        other = canonical_body(update("dwp", "dwp-2", nhs_number=nhs(3), given_name="Cerys",
                                      date_of_birth="2015-01-02"))
        await ingest.publish(message(other, message_id="1"), routing_key="source.dwp")
    finally:
        await conn.close()
    hub(env, "wait", "--timeout", "60")
    names = sorted(c["child"]["given_name"] for c in jsonl(hub(env, "export").stdout))
    assert names == ["Anwen", "Bartholomew"]
    dead = jsonl(hub(env, "dlq", "list", "--json").stdout)
    assert [(d["reason"], d["source"]) for d in dead] == [("message_id_reused", "dwp")]
