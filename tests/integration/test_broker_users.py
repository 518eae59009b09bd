"""Broker access: deploy/rabbitmq/definitions.json applied to the LIVE broker with
`hub broker-users apply`, in a fresh vhost with users unique to the test, then each
user tried against what it must not do. RabbitMQ refuses with ACCESS_REFUSED (403),
so loosening a pattern in the definitions file makes these tests fail."""

from __future__ import annotations

import copy
import json
import secrets
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import aiormq
import pytest

from hub.broker import topology as topo
from hub.broker.connection import message
from tests.conftest import AMQP_BASE, RUN_ID, rabbitmqctl
from tests.factories import update
from tests.helpers import HubProcess, hub, jsonl

pytestmark = pytest.mark.integration

DEFINITIONS = Path(__file__).parents[2] / "deploy" / "rabbitmq" / "definitions.json"
HOST = AMQP_BASE.split("@", 1)[1].split("/", 1)[0]


def renamed(defs: dict[str, Any], vhost: str, prefix: str) -> dict[str, Any]:
    """The deployed definitions with the vhost and every user renamed for this test."""
    out = copy.deepcopy(defs)
    for user in out["users"]:
        user["name"] = prefix + user["name"]
    out["vhosts"] = [{"name": vhost}]
    for section in ("permissions", "topic_permissions"):
        for p in out[section]:
            assert p["vhost"] == "hub"
            p["user"], p["vhost"] = prefix + p["user"], vhost
    return out


class Access:
    def __init__(self, tmp: Path) -> None:
        self.vhost = f"hub_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
        self.prefix = f"t{RUN_ID}{uuid.uuid4().hex[:4]}-"
        self.defs = renamed(json.loads(DEFINITIONS.read_text()), self.vhost, self.prefix)
        self.file = tmp / "definitions.json"
        self.file.write_text(json.dumps(self.defs))
        self.passwords_dir = tmp / "passwords"
        self.passwords_dir.mkdir()
        self.passwords: dict[str, str] = {}
        for user in self.defs["users"]:
            name = user["name"].removeprefix(self.prefix)
            if name.startswith("council-"):
                # No secret file: the example hash in the file applies.
                self.passwords[name] = f"{name}-example-only"
            else:
                self.passwords[name] = secrets.token_urlsafe(12)
                (self.passwords_dir / user["name"]).write_text(self.passwords[name])

    def url(self, name: str) -> str:
        user = quote(self.prefix + name, safe="")
        return (f"amqp://{user}:{quote(self.passwords[name], safe='')}@{HOST}/"
                f"{quote(self.vhost, safe='')}")

    def cli(self, env: dict[str, str], action: str, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        res = hub(env, "broker-users", action, str(self.file),
                  "--passwords-dir", str(self.passwords_dir), check=check)
        text = res.stdout + res.stderr
        for user in self.defs["users"]:
            assert user["password_hash"] not in text
        for password in self.passwords.values():
            assert password not in text
        return res

    def cleanup(self) -> None:
        rabbitmqctl("delete_vhost", self.vhost)
        for user in self.defs["users"]:
            subprocess.run(["rabbitmqctl", "-q", "delete_user", user["name"]],
                           capture_output=True, timeout=60)


@pytest.fixture
def access(hub_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Access, dict[str, str]]]:
    """The definitions applied; the hub set up in the new vhost as the hub's user."""
    acc = Access(tmp_path)
    try:
        acc.cli(hub_env, "apply")
        env = dict(hub_env, HUB_AMQP_URL=acc.url("hub"))
        hub(env, "setup")
        hub(env, "council", "add", "383")
        hub(env, "council", "add", "330")
        yield acc, env
    finally:
        acc.cleanup()


async def refused(url: str, action: Callable[[aio_pika.abc.AbstractChannel],
                                             Awaitable[Any]]) -> None:
    """The action is refused by the broker with ACCESS_REFUSED (not any other error)."""
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await action(channel)
    finally:
        await conn.close()


async def allowed(url: str, action: Callable[[aio_pika.abc.AbstractChannel],
                                            Awaitable[Any]]) -> Any:
    conn = await aio_pika.connect(url)
    try:
        return await action(await conn.channel(publisher_confirms=True))
    finally:
        await conn.close()


def publish(exchange: str, key: str, body: bytes = b"{}", user_id: str | None = None
            ) -> Callable[[aio_pika.abc.AbstractChannel], Awaitable[Any]]:
    async def go(channel: aio_pika.abc.AbstractChannel) -> Any:
        ex = (channel.default_exchange if exchange == "" else
              await channel.get_exchange(exchange, ensure=False))
        return await ex.publish(message(body, user_id=user_id), routing_key=key)
    return go


def get(queue: str) -> Callable[[aio_pika.abc.AbstractChannel], Awaitable[Any]]:
    async def go(channel: aio_pika.abc.AbstractChannel) -> Any:
        q = await channel.declare_queue(queue, passive=True)
        return await q.get(no_ack=False, fail=False)
    return go


def consume(queue: str) -> Callable[[aio_pika.abc.AbstractChannel], Awaitable[Any]]:
    async def go(channel: aio_pika.abc.AbstractChannel) -> Any:
        q = await channel.declare_queue(queue, passive=True)
        async def ignore(_: aio_pika.abc.AbstractIncomingMessage) -> None:
            return None
        return await q.consume(ignore)
    return go


async def declare_queue(channel: aio_pika.abc.AbstractChannel) -> Any:
    return await channel.declare_queue("hub.mine", durable=True)


async def declare_exchange(channel: aio_pika.abc.AbstractChannel) -> Any:
    return await channel.declare_exchange("hub.mine", aio_pika.ExchangeType.FANOUT)


async def delete_queue(channel: aio_pika.abc.AbstractChannel) -> Any:
    return await channel.queue_delete(topo.INBOUND)


async def bind_to_notifications(channel: aio_pika.abc.AbstractChannel) -> Any:
    q = await channel.declare_queue(topo.council_queue("383"), passive=True)
    return await q.bind(topo.NOTIFICATIONS, "la.#")


async def inbound_depth(env: dict[str, str]) -> int:
    async def depth(channel: aio_pika.abc.AbstractChannel) -> int:
        q = await channel.declare_queue(topo.INBOUND, passive=True)
        return q.declaration_result.message_count or 0
    return int(await allowed(env["HUB_AMQP_URL"], depth))


def test_apply_is_idempotent_and_check_finds_drift(
    access: tuple[Access, dict[str, str]], hub_env: dict[str, str]
) -> None:
    acc, _ = access
    assert "users" in acc.cli(hub_env, "apply").stdout  # again: nothing changes
    assert "matches" in acc.cli(hub_env, "check").stdout
    dwp = acc.prefix + "dwp"
    # Someone widens a source's permissions by hand, and changes a password.
    rabbitmqctl("set_permissions", "-p", acc.vhost, dwp, ".*", ".*", ".*")
    rabbitmqctl("set_topic_permissions", "-p", acc.vhost, acc.prefix + "pds", topo.INGEST,
                ".*", ".*")
    rabbitmqctl("clear_password", acc.prefix + "la")
    drift = acc.cli(hub_env, "check", check=False)
    assert drift.returncode == 1
    assert f"permission of {dwp} in {acc.vhost} is" in drift.stdout
    assert f"topic permission of {acc.prefix}pds in {acc.vhost} on hub.ingest is" in drift.stdout
    assert f"user {acc.prefix}la has another password" in drift.stdout
    acc.cli(hub_env, "apply")
    assert "matches" in acc.cli(hub_env, "check").stdout


def test_a_missing_password_is_refused_without_applying(
    hub_env: dict[str, str], tmp_path: Path
) -> None:
    defs = renamed(json.loads(DEFINITIONS.read_text()), "unused", "never-")
    del defs["users"][0]["password_hash"]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(defs))
    res = hub(hub_env, "broker-users", "apply", str(path), check=False)
    assert res.returncode == 1
    assert "user never-hub has no password" in res.stderr
    assert subprocess.run(["rabbitmqctl", "-q", "list_users"], capture_output=True, text=True,
                          timeout=60).stdout.count("never-") == 0


async def test_a_source_publishes_only_its_own_updates(
    access: tuple[Access, dict[str, str]]
) -> None:
    acc, env = access
    dwp = acc.url("dwp")
    body = json.dumps(update("dwp", "CB-1")).encode()
    await allowed(dwp, publish(topo.INGEST, "source.dwp", body))
    await allowed(dwp, publish(topo.INGEST, "source.dwp", body, user_id=acc.prefix + "dwp"))
    assert await inbound_depth(env) == 2
    # Topic authorisation: not as another source, not outside source.<own name>.
    await refused(dwp, publish(topo.INGEST, "source.pds", body))
    await refused(dwp, publish(topo.INGEST, "source.dwp.extra", body))
    await refused(dwp, publish(topo.INGEST, "source.#", body))
    # No other exchange, not straight into a queue, no notifications.
    await refused(dwp, publish(topo.NOTIFICATIONS, "la.383.child.created"))
    await refused(dwp, publish(topo.DEAD, "source.dwp"))
    await refused(dwp, publish("", topo.INBOUND))
    # Reads nothing, declares and deletes nothing.
    for queue in (topo.INBOUND, topo.council_queue("383"), topo.PARKING_DEAD):
        await refused(dwp, get(queue))
        await refused(dwp, consume(queue))
    for action in (declare_queue, declare_exchange, delete_queue, bind_to_notifications):
        await refused(dwp, action)
    assert await inbound_depth(env) == 2
    # Posing as another broker user is refused too (RabbitMQ validates user_id).
    conn = await aio_pika.connect(dwp)
    try:
        channel = await conn.channel(publisher_confirms=True)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
            await publish(topo.INGEST, "source.dwp", body, user_id=acc.prefix + "hub")(channel)
    finally:
        await conn.close()


async def test_a_council_reads_only_its_own_queue(access: tuple[Access, dict[str, str]]) -> None:
    acc, env = access
    council = acc.url("council-383")
    assert await allowed(council, get(topo.council_queue("383"))) is None  # allowed, empty
    await refused(council, get(topo.council_queue("330")))
    await refused(council, consume(topo.council_queue("330")))
    for queue in (topo.INBOUND, topo.PARKING_DEAD):
        await refused(council, get(queue))
    await refused(council, publish(topo.INGEST, "source.la", b"{}"))
    await refused(council, publish(topo.NOTIFICATIONS, "la.330.child.created"))
    await refused(council, publish("", topo.council_queue("330")))
    for action in (declare_queue, declare_exchange, delete_queue, bind_to_notifications):
        await refused(council, action)
    # A source cannot read a council's queue either.
    await refused(acc.url("la"), get(topo.council_queue("383")))
    assert await inbound_depth(env) == 0


async def test_the_pipeline_runs_with_the_hubs_own_user(
    access: tuple[Access, dict[str, str]], tmp_path: Path
) -> None:
    acc, env = access
    proc = HubProcess(env, log=tmp_path / "hub.log")
    try:
        # A source publishes with its own user, as any AMQP client would.
        body = json.dumps(update("la", "LA-1")).encode()
        await allowed(acc.url("la"), publish(topo.INGEST, "source.la", body))
        # The hub's user may publish for any source (hub publish sets its user_id).
        path = tmp_path / "dwp.jsonl"
        path.write_text(json.dumps(update("dwp", "CB-1", family_name="Quenby-Hart")) + "\n")
        out = hub(env, "publish", "--source", "dwp", "--format", "jsonl", str(path))
        assert "published 1, rejected 0" in out.stdout
        hub(env, "wait", "--timeout", "60")
    finally:
        assert proc.stop() == 0, (tmp_path / "hub.log").read_text()
    assert "component_failed" not in (tmp_path / "hub.log").read_text()
    assert hub(env, "dlq", "list", "--json").stdout.strip() == ""
    [child] = jsonl(hub(env, "export").stdout)
    assert {s["source"] for s in child["sources"]} == {"la", "dwp"}
    # The council reads its notifications with its own user, and only its own.
    council_env = dict(env, HUB_AMQP_URL=acc.url("council-383"))
    notes = jsonl(hub(council_env, "notifications", "consume", "--council", "383").stdout)
    assert [n["event"] for n in notes] == ["child.created", "child.updated"]
    other = hub(council_env, "notifications", "consume", "--council", "330", check=False)
    assert other.returncode == 1 and "ACCESS_REFUSED" in other.stderr
