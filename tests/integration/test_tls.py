"""Transport security: the hub configured by URL alone (amqps://...?cafile=...,
postgresql://...?sslmode=verify-full&sslrootcert=...) runs the whole pipeline over
TLS against a private PostgreSQL and a private RabbitMQ that accept TLS only, with
client certificates; plain connections and a wrong CA are refused."""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import aiormq
import asyncpg
import pytest

from tests.factories import moved, update
from tests.helpers import HubProcess, hub, jsonl, write_jsonl
from tests.tls import Pki, PrivatePostgres, PrivateRabbit, make_pki

pytestmark = pytest.mark.integration


class Services:
    def __init__(self, base: Path) -> None:
        self.pki = make_pki(base / "pki")
        self.pg: PrivatePostgres | None = None
        self.rabbit: PrivateRabbit | None = None
        (base / "pg").mkdir()
        (base / "rabbit").mkdir()
        self.pg = PrivatePostgres(base / "pg", self.pki)
        self.rabbit = PrivateRabbit(base / "rabbit", self.pki)

    def stop(self) -> None:
        if self.rabbit:
            self.rabbit.stop()
        if self.pg:
            self.pg.stop()


@pytest.fixture(scope="module")
def tls() -> Iterator[Services]:
    import shutil

    base = Path(tempfile.mkdtemp(prefix="hub-tls-"))
    base.chmod(0o755)  # the postgres OS user reaches its data directory through it
    services: Services | None = None
    try:
        services = Services(base)
        yield services
    finally:
        if services is not None:
            services.stop()
        shutil.rmtree(base, ignore_errors=True)


def _env(tls: Services, db_url: str, amqp_url: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return dict(env, HUB_DATABASE_URL=db_url, HUB_AMQP_URL=amqp_url)


async def test_the_pipeline_runs_end_to_end_over_tls(tls: Services, tmp_path: Path) -> None:
    assert tls.pg and tls.rabbit
    pki: Pki = tls.pki
    owner = tls.pg.url("postgres", tls.pg.password, "hub_tls", pki)
    amqp = tls.rabbit.url(pki)
    owner_env = _env(tls, owner, amqp)
    assert "database created" in hub(owner_env, "setup").stdout
    # The workers log in as a hub_worker login with a SCRAM password, over TLS.
    (tmp_path / "pw").write_text("a worker's long passphrase\n")
    hub(owner_env, "db-user", "add", "hub_tls_worker", "--role", "worker",
        "--password-file", str(tmp_path / "pw"))
    worker_env = _env(tls, tls.pg.url("hub_tls_worker", "a%20worker%27s%20long%20passphrase",
                                      "hub_tls", pki), amqp)
    hub(owner_env, "council", "add", "383")
    hub(owner_env, "council", "add", "330")
    proc = HubProcess(worker_env, "--workers", "2", log=tmp_path / "hub.log")
    try:
        write_jsonl(tmp_path / "la.jsonl", [update("la", "LA-1")])
        write_jsonl(tmp_path / "dwp.jsonl", [moved(update("dwp", "CB-1"))])
        for source in ("la", "dwp"):
            out = hub(owner_env, "publish", "--source", source, "--format", "jsonl",
                      str(tmp_path / f"{source}.jsonl"))
            assert "published 1, rejected 0" in out.stdout
            hub(owner_env, "wait", "--timeout", "60")
    finally:
        assert proc.stop() == 0, (tmp_path / "hub.log").read_text()
    log = (tmp_path / "hub.log").read_text()
    assert "component_failed" not in log and "db_login_too_powerful" not in log, log
    [child] = jsonl(hub(owner_env, "export").stdout)
    assert child["version"] == 2 and child["child"]["address"]["la"] == "330"
    leeds = jsonl(hub(owner_env, "notifications", "consume", "--council", "383").stdout)
    brum = jsonl(hub(owner_env, "notifications", "consume", "--council", "330").stdout)
    assert [n["event"] for n in leeds] == ["child.created", "child.moved_out"]
    assert [n["event"] for n in brum] == ["child.moved_in"]
    # Every connection the hub made to PostgreSQL was encrypted (pg_stat_ssl).
    conn = await asyncpg.connect(owner)
    try:
        assert await conn.fetchval(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
        assert await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE actor = 'parking' OR action LIKE 'decision%'"
        ) >= 2
    finally:
        await conn.close()


async def test_plain_connections_and_a_wrong_ca_are_refused(tls: Services) -> None:
    assert tls.pg and tls.rabbit
    pki = tls.pki
    good = tls.pg.url("postgres", tls.pg.password, "postgres", pki)
    conn = await asyncpg.connect(good)  # the control: this one works
    await conn.close()
    # PostgreSQL: without TLS, pg_hba rejects; trusting another CA, verification fails.
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(tls.pg.url("postgres", tls.pg.password, "postgres", pki,
                                         sslmode="disable"))
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncpg.connect(tls.pg.url("postgres", tls.pg.password, "postgres", pki,
                                         ca=pki.other_ca))
    # RabbitMQ: its only listener speaks TLS; a wrong CA, or no client certificate, fails.
    conn2 = await aio_pika.connect(tls.rabbit.url(pki), timeout=10)
    await conn2.close()
    with pytest.raises((aiormq.exceptions.AMQPConnectionError, ConnectionError, TimeoutError)):
        await aio_pika.connect(tls.rabbit.url(pki, scheme="amqp").split("?")[0], timeout=10)
    with pytest.raises(aiormq.exceptions.AMQPConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await aio_pika.connect(tls.rabbit.url(pki, ca=pki.other_ca), timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionError, aiormq.exceptions.AMQPConnectionError)):
        await aio_pika.connect(tls.rabbit.url(pki, client_cert=False), timeout=10)
    # And the hub says so in one line, without a traceback.
    env = _env(tls, tls.pg.url("postgres", tls.pg.password, "hub_tls", pki, ca=pki.other_ca),
               tls.rabbit.url(pki))
    res = hub(env, "setup", check=False)
    assert res.returncode == 1
    assert res.stderr.startswith("hub: cannot reach a service: SSLCertVerificationError")
    assert "Traceback" not in res.stderr
