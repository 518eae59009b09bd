"""Database access: the hub runs as least-privilege logins (migration 0007), never
as a superuser or the owner of its tables, and each role is refused what it must
not do. The refusals are checked by error class: a privilege error comes from the
missing GRANT, before any trigger, so removing a REVOKE makes these tests fail."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from hub.db.queries import q
from hub.db.roles import login_url, too_powerful
from tests.conftest import RUN_ID
from tests.factories import moved, nhs, update
from tests.helpers import HubProcess, count, hub, jsonl, write_jsonl

pytestmark = pytest.mark.integration

Denied = asyncpg.InsufficientPrivilegeError


@pytest.fixture
def logins(hub_env: dict[str, str]) -> Iterator[dict[str, dict[str, str]]]:
    """A set-up hub and one login per role (unique names: roles are cluster-wide),
    each as the environment a process of that role would run with."""
    hub(hub_env, "setup")
    tag = uuid.uuid4().hex[:6]
    envs: dict[str, dict[str, str]] = {}
    for role in ("worker", "operator", "reader", "auditor"):
        name = f"hub_t_{RUN_ID}_{tag}_{role}"
        hub(hub_env, "db-user", "add", name, "--role", role)
        envs[role] = dict(hub_env, HUB_DATABASE_URL=login_url(hub_env["HUB_DATABASE_URL"], name))
    envs["owner"] = hub_env
    yield envs
    for role in ("worker", "operator", "reader", "auditor"):
        hub(hub_env, "db-user", "remove", f"hub_t_{RUN_ID}_{tag}_{role}")


@pytest.fixture
async def as_role(
    logins: dict[str, dict[str, str]]
) -> AsyncIterator[dict[str, asyncpg.Connection]]:
    conns = {role: await asyncpg.connect(env["HUB_DATABASE_URL"]) for role, env in logins.items()}
    yield conns
    for conn in conns.values():
        await conn.close()


async def test_the_pipeline_runs_as_a_worker_login_and_operators_as_operators(
    logins: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    worker, operator, owner = logins["worker"], logins["operator"], logins["owner"]
    conn = await asyncpg.connect(worker["HUB_DATABASE_URL"])
    try:
        assert await too_powerful(conn) is None  # neither superuser nor owner
    finally:
        await conn.close()
    hub(operator, "council", "add", "383")
    proc = HubProcess(worker, "--workers", "2", log=tmp_path / "hub.log")
    try:
        write_jsonl(tmp_path / "la.jsonl", [update("la", "LA-1"),
                                            update("la", "LA-2", nhs_number=nhs(2),
                                                   given_name="Ottoline", family_name="Brack",
                                                   address={"lines": ["1 Quarry Hill"],
                                                            "postcode": "LS2 7UE", "la": "383"})])
        hub(operator, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
        hub(operator, "wait", "--timeout", "60")
        children = {c["child"]["given_name"]: c for c in jsonl(hub(operator, "export").stdout)}
        hub(operator, "shield", children["Ottoline"]["child_id"], "--authority", "383",
            "--by", "op", "--reason", "refuge")
        # A central-feed update about the shielded child without its NHS number goes
        # to review; a bad one is dead-lettered; a paused source's update waits.
        near = update("dwp", "CB-1", nhs_number=None, given_name="Ottoline", family_name="Brack")
        bad = update("dwp", "CB-2")
        bad["child"]["nhs_number"] = "9990000019"
        write_jsonl(tmp_path / "dwp.jsonl", [near, bad])
        with (tmp_path / "dwp.jsonl").open("a") as f:
            f.write("{not json\n")
        hub(operator, "source", "pause", "pds", "--by", "op")
        write_jsonl(tmp_path / "pds.jsonl", [moved(update("pds", "P-1", 2))])
        hub(operator, "publish", "--source", "dwp", "--format", "jsonl",
            str(tmp_path / "dwp.jsonl"))
        hub(operator, "publish", "--source", "pds", "--format", "jsonl",
            str(tmp_path / "pds.jsonl"))
        hub(operator, "wait", "--timeout", "60")
        assert await count(owner["HUB_DATABASE_URL"], "SELECT count(*) FROM source_links"
                           " WHERE source = 'pds'") == 0
        hub(operator, "source", "resume", "pds", "--by", "op")
        hub(operator, "wait", "--timeout", "60")
    finally:
        assert proc.stop() == 0, (tmp_path / "hub.log").read_text()
    log = (tmp_path / "hub.log").read_text()
    assert "component_failed" not in log and "batch_aborted" not in log, log
    assert "db_login_too_powerful" not in log
    reviews = jsonl(hub(operator, "review", "list", "--json").stdout)
    assert [r["reason"] for r in reviews] == ["shielded_candidate"]
    dead = {d["reason"] for d in jsonl(hub(operator, "dlq", "list", "--json").stdout)}
    assert dead == {"invalid_nhs_number", "invalid_json"}
    assert await count(owner["HUB_DATABASE_URL"], "SELECT count(*) FROM source_links"
                       " WHERE source = 'pds'") == 1
    notes = jsonl(hub(operator, "notifications", "consume", "--council", "383").stdout)
    assert {"child.created", "child.shielded", "child.moved_out"} <= {n["event"] for n in notes}
    hub(operator, "review", "resolve", reviews[0]["id"], "--link",
        children["Ottoline"]["child_id"], "--by", "op")
    audit = await count(owner["HUB_DATABASE_URL"], "SELECT count(*) FROM audit_log")
    assert audit > 5


async def test_the_superuser_is_reported_as_too_powerful(
    logins: dict[str, dict[str, str]]
) -> None:
    conn = await asyncpg.connect(logins["owner"]["HUB_DATABASE_URL"])
    try:
        assert await too_powerful(conn) == "superuser"
    finally:
        await conn.close()


async def test_no_role_may_change_or_delete_the_audit_log(
    as_role: dict[str, asyncpg.Connection]
) -> None:
    await as_role["worker"].execute("INSERT INTO audit_log (actor, action) VALUES ('w', 'test')")
    await as_role["operator"].execute(
        "INSERT INTO audit_log (actor, action) VALUES ('o', 'test')")
    for role in ("worker", "operator", "reader", "auditor"):
        for sql in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log",
                    "TRUNCATE audit_log"):
            with pytest.raises(Denied):
                await as_role[role].execute(sql)
    assert await as_role["auditor"].fetchval("SELECT count(*) FROM audit_log") == 2


async def test_no_role_may_change_the_schema(as_role: dict[str, asyncpg.Connection]) -> None:
    for role in ("worker", "operator", "reader", "auditor"):
        conn = as_role[role]
        for sql in ("DROP TABLE children", "ALTER TABLE children ADD COLUMN x int",
                    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
                    "DROP TRIGGER audit_log_no_change ON audit_log",
                    "CREATE TABLE public.mine (x int)"):
            with pytest.raises(Denied):
                await conn.execute(sql)
        # Without the grant option a GRANT is refused or only warns: nothing given away.
        with contextlib.suppress(Denied):
            await conn.execute("GRANT SELECT ON children TO PUBLIC")
        assert await conn.fetchval(
            "SELECT has_table_privilege('public', 'children', 'SELECT')") is False


async def test_the_worker_reads_no_secrets_nor_parked_payloads(
    as_role: dict[str, asyncpg.Connection]
) -> None:
    worker = as_role["worker"]
    for sql in ("SELECT password_hash FROM console_users", "SELECT raw FROM parked",
                "SELECT detail FROM audit_log", "SELECT record FROM child_versions",
                "UPDATE parked SET status = 'purged'", "DELETE FROM children",
                "INSERT INTO console_users (name, role, password_hash)"
                " VALUES ('x', 'operator', 'y')",
                "UPDATE match_models SET active = false"):
        with pytest.raises(Denied):
            await worker.execute(sql)


async def _children(owner_url: str) -> tuple[str, str]:
    """One open and one shielded child, written by the owner."""
    conn = await asyncpg.connect(owner_url)
    ids = (str(uuid.uuid4()), str(uuid.uuid4()))
    record = ('{"given_name": "Peregrine", "family_name": "Lusk", "date_of_birth": "2013-05-02",'
              ' "address": {"postcode": "LS6 9ZZ", "la": "383"},'
              ' "carers": [{"name": "Ada Lusk"}], "gp_practice": {"ods_code": "B86001"},'
              ' "education_setting": {"urn": "107942"}, "services": [{"name": "CAMHS"}]}')
    try:
        for cid, shielded in zip(ids, (False, True), strict=True):
            await conn.execute(
                "INSERT INTO children (child_id, version, record, shielded, shielding_authority)"
                " VALUES ($1, 1, $2::jsonb, $3, CASE WHEN $3 THEN '383' END)",
                uuid.UUID(cid), record, shielded)
    finally:
        await conn.close()
    return ids


async def test_readers_see_no_protected_fields_of_shielded_children(
    logins: dict[str, dict[str, str]], as_role: dict[str, asyncpg.Connection]
) -> None:
    open_id, shielded_id = await _children(logins["owner"]["HUB_DATABASE_URL"])
    reader = as_role["reader"]
    rows = {str(r["child_id"]): r["record"] for r in
            await reader.fetch("SELECT child_id, record::text AS record FROM children_readable")}
    assert "LS6 9ZZ" in rows[open_id] and "Ada Lusk" in rows[open_id]
    hidden = rows[shielded_id]
    assert "Peregrine" in hidden
    for value in ("LS6 9ZZ", "Ada Lusk", "B86001", "107942", "CAMHS"):
        assert value not in hidden
    for sql in ("SELECT record FROM children", "SELECT record FROM child_versions",
                "SELECT update FROM parked", "SELECT body FROM outbox",
                "SELECT detail FROM audit_log", "SELECT address_key FROM protected_addresses"):
        with pytest.raises(Denied):
            await reader.execute(sql)


async def test_auditors_read_the_audit_log_and_no_child(
    logins: dict[str, dict[str, str]], as_role: dict[str, asyncpg.Connection]
) -> None:
    await _children(logins["owner"]["HUB_DATABASE_URL"])
    auditor = as_role["auditor"]
    await as_role["operator"].execute(
        "INSERT INTO audit_log (actor, action, subject) VALUES ('op', 'export', 'x')")
    assert await auditor.fetchval("SELECT action FROM audit_log") == "export"
    for sql in ("SELECT record FROM children", "SELECT record FROM children_readable",
                "SELECT record FROM child_versions", "SELECT raw FROM parked",
                "SELECT body FROM outbox", "SELECT password_hash FROM console_users",
                "INSERT INTO audit_log (actor, action) VALUES ('a', 'forged')"):
        with pytest.raises(Denied):
            await auditor.execute(sql)


async def test_the_roles_migration_is_idempotent(
    logins: dict[str, dict[str, str]]
) -> None:
    from hub.db.migrate import migrations

    sql = dict(migrations())["0007_roles"]
    conn = await asyncpg.connect(logins["owner"]["HUB_DATABASE_URL"])
    try:
        await conn.execute(sql)  # the roles exist: nothing is created, grants restated
        assert await conn.fetchval(
            "SELECT has_table_privilege('hub_worker', 'children', 'SELECT')") is True
    finally:
        await conn.close()


def test_every_operators_command_runs_as_an_operator_login(
    logins: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """What operators and the console do, as a hub_operator login (the pipeline as a
    hub_worker login): a grant missing from 0007 fails here."""
    op = logins["operator"]
    proc = HubProcess(logins["worker"], log=tmp_path / "hub.log")

    def publish(source: str, *updates: dict) -> None:
        path = write_jsonl(tmp_path / f"{source}-{len(list(tmp_path.iterdir()))}.jsonl",
                           list(updates))
        hub(op, "publish", "--source", source, "--format", "jsonl", str(path))
        hub(op, "wait", "--timeout", "60")

    try:
        hub(op, "council", "add", "383")
        publish("la", update("la", "LA-1"),
                update("la", "LA-2", nhs_number=nhs(3), given_name="Ottoline",
                       family_name="Brack", address={"lines": ["1 Quarry Hill"],
                                                     "postcode": "LS2 7UE", "la": "383"}))
        ids = {c["child"]["given_name"]: c["child_id"] for c in jsonl(hub(op, "export").stdout)}
        hub(op, "shield", ids["Marigold"], "--authority", "383", "--by", "op")
        bad = update("dwp", "CB-9", nhs_number=None)
        bad["child"]["date_of_birth"] = "2015-02-30"
        publish("dwp", update("dwp", "CB-1", nhs_number=None),
                update("dwp", "CB-2", nhs_number=None, given_name="Marygold"), bad)
        items = jsonl(hub(op, "review", "list", "--json").stdout)
        assert len(items) == 2
        hub(op, "review", "show", items[0]["id"], "--authority", "383", "--by", "op")
        hub(op, "review", "assign", items[0]["id"], "--to", "op-2", "--by", "lead")
        hub(op, "review", "note", items[0]["id"], "--text", "called", "--by", "op-2")
        hub(op, "review", "investigate", items[0]["id"], "--by", "op-2")
        hub(op, "review", "resolve", items[0]["id"], "--link", ids["Marigold"], "--by", "op")
        hub(op, "review", "resolve", items[1]["id"], "--create", "--by", "op")
        [dead] = jsonl(hub(op, "dlq", "list", "--json").stdout)
        hub(op, "dlq", "show", dead["id"], "--by", "op", "--reason", "which date")
        hub(op, "dlq", "retry", dead["id"])
        hub(op, "wait", "--timeout", "60")
        assert "purged 1" in hub(op, "dlq", "purge", "--older-than-days", "0").stdout
        hub(op, "source", "pause", "pds")
        publish("pds", update("pds", "P-1", nhs_number=nhs(3), given_name="Ottoline",
                              family_name="Brack"))
        assert "1 held" in hub(op, "source", "status").stdout
        assert jsonl(hub(op, "source", "preview", "pds", "--json").stdout)[0]["held"] == 1
        hub(op, "source", "resume", "pds")
        hub(op, "wait", "--timeout", "60")
        hub(op, "sever", ids["Ottoline"], "--authority", "383", "--by", "op", "--reason", "adopt")
        hub(op, "unshield", ids["Marigold"], "--authority", "383", "--by", "op",
            "--household")  # with the record created beside her, at her house
        hub(op, "search", "--family-name", "Quenby", "--date-of-birth", "2014-03-09",
            "--by", "hv-1")
        hub(op, "show", ids["Marigold"], "--by", "hv-1", "--break-glass", "--reason", "duty")
        hub(op, "export", "--include-protected", "--by", "op", "--reason", "court order")
        hub(op, "match", "train", "--sample", "50", "--pairs", "200")
        hub(op, "match", "models")
        (tmp_path / "pw").write_text("a long console passphrase")
        hub(op, "console-user", "add", "olu", "--role", "auditor", "--password-file",
            str(tmp_path / "pw"))
        counted = _updates_total(hub(op, "status", "--prometheus").stdout)
        assert counted[("la", "create")] == 2 and counted[("dwp", "dead")] == 1, counted
        asyncio.run(_fold_update_counts(op["HUB_DATABASE_URL"]))  # a scrape's fold, as operator
        assert _updates_total(hub(op, "status", "--prometheus").stdout) == counted
        hub(op, "council", "list")
        hub(op, "wait", "--timeout", "60")
        assert "purged" in hub(op, "outbox", "purge", "--older-than-days", "0").stdout
        assert "purged" in hub(op, "review", "purge", "--older-than-days", "0").stdout
        assert "purged" in hub(op, "processed", "purge", "--older-than-days", "1").stdout
    finally:
        assert proc.stop() == 0, (tmp_path / "hub.log").read_text()
    log = (tmp_path / "hub.log").read_text()
    assert "component_failed" not in log and "batch_aborted" not in log, log


def _updates_total(prometheus: str) -> dict[tuple[str, str], int]:
    return {(m[1], m[2]): int(m[3]) for m in re.finditer(
        r'^hub_updates_total\{source="([^"]*)",decision="([^"]*)"\} (\d+)$', prometheus, re.M)}


async def _fold_update_counts(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(q("fold_update_counts"))
    finally:
        await conn.close()
