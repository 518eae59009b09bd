"""The shielding guarantees at search, show and the database reader role."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from schemas.canonical import VISIBLE_FIELDS
from tests.factories import nhs, update
from tests.helpers import HubProcess, hub, jsonl, write_jsonl

pytestmark = pytest.mark.integration


@pytest.fixture
def indexed(hub_env: dict[str, str], tmp_path: Path):
    """Two children indexed, the first one shielded by Leeds (383)."""
    hub(hub_env, "setup")
    proc = HubProcess(hub_env, log=tmp_path / "hub.log")
    write_jsonl(tmp_path / "la.jsonl", [
        update("la", "LA-1"),
        update("la", "LA-2", nhs_number=nhs(50), given_name="Perpetua", family_name="Lindqvist"),
    ])
    hub(hub_env, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
    hub(hub_env, "wait", "--timeout", "60")
    ids = {e["sources"][0]["source_record_id"]: e["child_id"]
           for e in jsonl(hub(hub_env, "export").stdout)}
    shielded = hub(hub_env, "shield", ids["LA-1"], "--authority", "383", "--by", "la-officer")
    assert shielded.stdout.startswith(f"shielded {ids['LA-1']} for 383")
    # LA-2's record is at the same address (the factory's): listed, left open.
    assert f"note: {ids['LA-2']}, an open record at the same house" in shielded.stderr
    yield hub_env, ids
    assert proc.stop() == 0


def test_search_never_finds_a_shielded_child_by_a_hidden_field(indexed) -> None:
    env, ids = indexed
    found = jsonl(hub(env, "search", "--given-name", "Marigold", "--family-name", "Quenby",
                      "--date-of-birth", "2014-03-09", "--by", "hv-1").stdout)
    assert [f["child_id"] for f in found] == [ids["LA-1"]]
    assert found[0]["shielded"] and "contact the shielding authority" in found[0]["note"]
    assert set(found[0]["child"]) <= {"given_name", "family_name", "date_of_birth", "sex"}
    by_postcode = jsonl(hub(env, "search", "--given-name", "Marigold", "--family-name", "Quenby",
                            "--date-of-birth", "2014-03-09", "--postcode", "LS6 1AA",
                            "--by", "hv-1").stdout)
    assert by_postcode == []
    open_child = jsonl(hub(env, "search", "--family-name", "Lindqvist", "--date-of-birth",
                           "2014-03-09", "--postcode", "LS6 1AA", "--by", "hv-1").stdout)
    assert [f["child_id"] for f in open_child] == [ids["LA-2"]]
    assert open_child[0]["child"]["address"]["postcode"] == "LS6 1AA"


def test_show_and_break_the_glass(indexed) -> None:
    env, ids = indexed
    cid = ids["LA-1"]
    plain = jsonl(hub(env, "show", cid, "--by", "hv-1").stdout)[0]
    assert "address" not in plain["child"] and plain["note"] == "contact the shielding authority"
    own = jsonl(hub(env, "show", cid, "--by", "la-mgr", "--authority", "383").stdout)[0]
    assert own["child"]["address"]["postcode"] == "LS6 1AA"
    refused = hub(env, "show", cid, "--by", "hv-1", "--break-glass", check=False)
    assert refused.returncode == 1 and "--reason" in refused.stderr
    hub(env, "council", "add", "383")
    glass = jsonl(hub(env, "show", cid, "--by", "hv-1", "--break-glass",
                      "--reason", "child at risk, duty social worker").stdout)[0]
    assert glass["child"]["address"]["postcode"] == "LS6 1AA"
    hub(env, "wait", "--timeout", "30")
    alerts = [n for n in jsonl(hub(env, "notifications", "consume", "--council", "383").stdout)
              if n["event"] == "alert.break_glass"]
    assert len(alerts) == 1 and alerts[0]["by"] == "hv-1" and alerts[0]["child_id"] == cid
    assert alerts[0]["shielded"] is True and set(alerts[0]["child"]) == set(VISIBLE_FIELDS)
    # An export that breaks the glass: her authority is told of each of its children
    # whose hidden fields went out, in the shape of every notification.
    hub(env, "export", "--include-protected", "--by", "auditor-1", "--reason", "inquiry")
    hub(env, "wait", "--timeout", "30")
    alerts = [n for n in jsonl(hub(env, "notifications", "consume", "--council", "383").stdout)
              if n["event"] == "alert.break_glass"]
    assert [(a["child_id"], a["access"], a["by"]) for a in alerts] == [
        (cid, "export --include-protected", "auditor-1")]
    assert alerts[0]["version"] >= 1 and set(alerts[0]["child"]) == set(VISIBLE_FIELDS)


async def test_reader_role_cannot_select_protected_fields(indexed, settings) -> None:
    _, ids = indexed
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE hub_reader")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT record->'address' FROM children")
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE hub_reader")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT record FROM child_versions")
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE hub_reader")
            rows = {r["child_id"]: r for r in await conn.fetch(
                "SELECT child_id::text, record->'address' AS address, record->>'given_name' AS g"
                " FROM children_readable")}
        assert rows[ids["LA-1"]]["address"] is None and rows[ids["LA-1"]]["g"] == "Marigold"
        assert rows[ids["LA-2"]]["address"] is not None
        audit = await conn.fetch("SELECT action FROM audit_log WHERE action LIKE 'search%'")
        assert audit == [] or all(a["action"] == "search" for a in audit)
    finally:
        await conn.close()
