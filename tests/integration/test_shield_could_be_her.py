"""A duplicate of her made before she was shielded (registered at the refuge under a new
surname, with an NHS number not hers) holds what it was given open, the refuge
included. Shielding her asks her authority about it once: `hub shield` names the open
records that could be her (rule 1's test, mirrored) in its child.shielded notification,
in the audit and on the command line; where a batch shields a record (restricted at
origin, an operator's placing) an alert.shield_check names them and the open records
at her house. None of them is changed (hub.shield_check)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db.connect import connect
from schemas.canonical import PROTECTED_FIELDS
from schemas.notification import Notification
from tests.factories import incoming, nhs, update
from tests.helpers import hub

pytestmark = pytest.mark.integration
T = Thresholds()
REFUGE = {"lines": ["3 Harbour Lane"], "town": "Birmingham", "postcode": "B5 7QQ", "la": "330"}
# Her street in Leeds, another house: found by her postcode's key, nothing like her.
HER_STREET = {"lines": ["40 Orchard Row"], "town": "Leeds", "postcode": "LS6 1AA", "la": "383"}


async def _index(conn: asyncpg.Connection) -> dict[str, str]:
    out = await ingest.process(conn, [
        incoming(update("la", "LA-1")),  # her: Marigold Quenby, 2014-03-09, her NHS number
        # Her, at the refuge under her mother's new partner's surname, a sibling's NHS
        # number copied by a clerk: nothing ties it to her, so it was created open.
        incoming(update("dwp", "CB-1", nhs_number=nhs(7), family_name="Stanway",
                        address=REFUGE)),
        incoming(update("la", "LA-2", nhs_number=nhs(8), given_name="Ptolemy",
                        family_name="Abara", sex="male", address=HER_STREET)),
        # Her name, born years apart: not her by rule 1.
        incoming(update("la", "LA-3", nhs_number=nhs(9), date_of_birth="2009-11-20",
                        address=HER_STREET)),
    ], T)
    assert [o.action for o in out] == ["create"] * 4, out
    return dict(zip(["her", "duplicate", "neighbour", "namesake"],
                    [str(o.child_id) for o in out], strict=True))


async def _versions(conn: asyncpg.Connection) -> dict[str, tuple[int, bool]]:
    return {r["child_id"]: (r["version"], r["shielded"]) for r in await conn.fetch(
        "SELECT child_id::text, version, shielded FROM children")}


def _only_she_changed(before: dict[str, tuple[int, bool]], after: dict[str, tuple[int, bool]],
                      her: str) -> None:
    """Her record has a new, shielded version; no other record changed."""
    assert after[her] == (before[her][0] + 1, True)
    assert {k: v for k, v in after.items() if k != her} == {
        k: v for k, v in before.items() if k != her}


async def _told_since(conn: asyncpg.Connection, last: int) -> list[tuple[str, Any]]:
    return [(r["routing_key"], r["body"]) for r in await conn.fetch(
        "SELECT routing_key, body FROM outbox WHERE id > $1 ORDER BY id", last)]


async def test_shielding_her_names_the_open_records_that_could_be_her(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
        found = await conn.fetchval(
            "SELECT count(DISTINCT child_id) FROM block_keys WHERE child_id <> $1::uuid AND key"
            " = ANY(SELECT key FROM block_keys WHERE child_id = $1::uuid)", ids["her"])
        assert found >= 2  # the neighbour shares a key with her, and is still not named
        before = await _versions(conn)
        last = await conn.fetchval("SELECT max(id) FROM outbox")
        done = await operations.shield_record(conn, ids["her"], "330", "officer", "refuge",
                                              thresholds=T)
        assert done.could_be_her == (ids["duplicate"],) and done.could_be_her_count == 1
        # Nothing in them is changed: her authority decides (shield it, or not her).
        after = await _versions(conn)
        _only_she_changed(before, after, ids["her"])
        # Her authority alone is told, by ids only.
        told = await _told_since(conn, last)
        assert [k for k, _ in told] == ["la.330.child.shielded"]
        body = told[0][1]
        assert body["open_could_be_her"] == [ids["duplicate"]]
        assert body["open_could_be_her_count"] == 1
        audit: Any = await conn.fetchval(
            "SELECT detail FROM audit_log WHERE action = 'shield' AND child_id = $1::uuid",
            ids["her"])
        assert audit["open_could_be_her"] == [ids["duplicate"]]
    finally:
        await conn.close()


async def test_the_duplicate_shielded_with_her_is_no_longer_named(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
        await operations.shield_record(conn, ids["duplicate"], "330", "officer", "refuge",
                                       thresholds=T)
        done = await operations.shield_record(conn, ids["her"], "330", "officer", "refuge",
                                              thresholds=T)
        assert done.could_be_her == () and done.could_be_her_count == 0
        body = await conn.fetchval("SELECT body FROM outbox WHERE routing_key ="
                                   " 'la.330.child.shielded' ORDER BY id DESC LIMIT 1")
        assert body["child_id"] == ids["her"] and "open_could_be_her" not in body
    finally:
        await conn.close()


async def test_hub_shield_prints_them(database_url: str, hub_env: dict[str, str]) -> None:
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
    finally:
        await conn.close()
    proc = hub(hub_env, "shield", ids["her"], "--authority", "330", "--by", "officer")
    assert ids["duplicate"] in proc.stderr and "could be this child" in proc.stderr
    assert ids["neighbour"] not in proc.stderr + proc.stdout
    assert ids["namesake"] not in proc.stderr + proc.stdout
    # Ids only: none of her details, nor the duplicate's, on the command line.
    for detail in ("Marigold", "Quenby", "Stanway", "2014-03-09", "B5 7QQ", nhs(1), nhs(7)):
        assert detail not in proc.stderr + proc.stdout


async def test_shielded_on_arrival_her_authority_is_asked_once(database_url: str) -> None:
    """Where a batch shields her (an update restricted at origin: shielded by the council
    it arrives in), her authority gets `alert.shield_check` naming, by id, the open
    records at her house and those that could be her; nothing else is told, nothing
    is changed in them, and it is not asked again by her later updates."""
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
        brother = await ingest.process(conn, [incoming(update(
            "la", "LA-5", nhs_number=nhs(11), given_name="Oswin", family_name="Stanway",
            date_of_birth="2017-08-01", sex="male", address=REFUGE))], T)
        assert brother[0].action == "create"
        last = await conn.fetchval("SELECT max(id) FROM outbox")
        before = await _versions(conn)
        pds = update("pds", "P-1", address=REFUGE)  # her NHS number, at the refuge
        pds["restricted"] = True
        out = await ingest.process(conn, [incoming(pds)], T)
        assert (out[0].action, out[0].child_id) == ("link", ids["her"])
        after = await _versions(conn)
        _only_she_changed(before, after, ids["her"])
        told = await _told_since(conn, last)
        # Shielded by 330 on arrival: only 330 hears anything, the alert included.
        assert told and all(k.startswith("la.330.") for k, _ in told), told
        alerts = [b for k, b in told if k == "la.330.alert.shield_check"]
        assert len(alerts) == 1
        alert = alerts[0]
        assert alert["child_id"] == ids["her"] and alert["version"] == after[ids["her"]][0]
        assert sorted(alert["open_at_same_house"]) == sorted(
            [ids["duplicate"], str(brother[0].child_id)])
        assert alert["open_could_be_her"] == [ids["duplicate"]]
        assert alert["open_could_be_her_count"] == 1
        Notification.model_validate(alert)  # the published shape
        # The open records by id; the child as any notification carries it, but her
        # visible fields only (an alert says what to look at, not where she is).
        assert set(alert) == {"event_id", "event", "child_id", "version", "occurred_at",
                              "shielded", "child", "open_at_same_house", "open_could_be_her",
                              "open_could_be_her_count"}
        assert alert["shielded"] is True and alert["child"]["date_of_birth"]
        assert not set(alert["child"]) & set(PROTECTED_FIELDS), alert["child"]
        # Her next update changes her record but not her shield: no second alert.
        later = update("pds", "P-1", 2, address=REFUGE, middle_names="Rose")
        later["restricted"] = True
        await ingest.process(conn, [incoming(later)], T)
        assert await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE routing_key LIKE '%.alert.shield_check'") == 1
    finally:
        await conn.close()


async def test_shielded_on_arrival_with_no_one_to_name_no_alert(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        pds = update("pds", "P-1", address=REFUGE)
        pds["restricted"] = True
        out = await ingest.process(conn, [incoming(pds)], T)
        assert out[0].action == "create"
        assert await conn.fetchval("SELECT shielded FROM children") is True
        assert await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE routing_key LIKE '%.alert.shield_check'") == 0
    finally:
        await conn.close()


async def test_an_operators_placing_that_shields_a_record_asks_too(database_url: str) -> None:
    """A record an operator creates beside a shielded candidate is shielded by her
    authority (hub.operations.resolve); the open records that could be it are named to
    that authority in an alert.shield_check as well."""
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
        await operations.shield_record(conn, ids["her"], "330", "officer", "refuge",
                                       thresholds=T)
        out = await ingest.process(conn, [incoming(update(
            "dwp", "CB-9", nhs_number=None, address={"lines": ["7 Heron Way"],
                                                     "postcode": "B6 4AA", "la": "330"}))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_candidate")
        last = await conn.fetchval("SELECT max(id) FROM outbox")
        done = await operations.resolve(conn, str(out[0].parked_id), "create", None, "op-1",
                                        None, T)
        new = done.child_id
        assert await conn.fetchval("SELECT shielding_authority FROM children WHERE child_id ="
                                   " $1::uuid", new) == "330"
        alerts = [(r["routing_key"], r["body"]) for r in await conn.fetch(
            "SELECT routing_key, body FROM outbox WHERE id > $1 AND body->>'event' ="
            " 'alert.shield_check'", last)]
        assert [k for k, _ in alerts] == ["la.330.alert.shield_check"]
        assert alerts[0][1]["child_id"] == new
        assert alerts[0][1]["open_could_be_her"] == [ids["duplicate"]]
    finally:
        await conn.close()


async def test_a_shielded_child_moving_in_beside_an_open_record_her_authority_is_told(
        database_url: str) -> None:
    """Another family's open record already at the house a shielded child moves into
    (a refuge's flat) shows where she is as plainly as hers would: her authority gets
    one alert.shield_check naming it (by id; those that could be her were asked once,
    as she was shielded), no one else hears anything, and nothing is changed in it."""
    flat = {"lines": ["Flat 34", "23 Dittany Lane"], "town": "Liverpool", "postcode": "L19 4UP",
            "la": "341"}
    conn = await connect(database_url)
    try:
        first = await ingest.process(conn, [
            incoming(update("la", "LA-1")),  # her
            incoming(update("dwp", "CB-1", nhs_number=nhs(21), given_name="Tegan",
                            family_name="Polglase", date_of_birth="2017-07-07",
                            address=flat)),
        ], T)
        her, tegan = (str(o.child_id) for o in first)
        await operations.shield_record(conn, her, "383", "officer", "refuge", thresholds=T)
        before = await _versions(conn)
        last = await conn.fetchval("SELECT max(id) FROM outbox")
        out = await ingest.process(conn, [incoming(update("la", "LA-1", 2, address=flat))], T)
        assert (out[0].action, out[0].child_id) == ("link", her)
        assert (await _versions(conn))[tegan] == before[tegan]
        told = await _told_since(conn, last)
        assert told and all(k.startswith("la.383.") for k, _ in told), told
        alerts = [b for k, b in told if k == "la.383.alert.shield_check"]
        assert len(alerts) == 1 and alerts[0]["child_id"] == her
        assert alerts[0]["open_at_same_house"] == [tegan]
        assert "open_could_be_her" not in alerts[0]
        # Her next update at the same house is not a move: not told again.
        await ingest.process(conn, [incoming(update("la", "LA-1", 3, address=flat,
                                                    middle_names="Rose"))], T)
        assert await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE routing_key LIKE '%.alert.shield_check'") == 1
    finally:
        await conn.close()
