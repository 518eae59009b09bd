"""A batch leaves each child it writes indexed under exactly the keys of its new
record, touching only the keys that changed."""

from __future__ import annotations

import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db import prepared
from hub.db.connect import connect
from hub.match import compact
from hub.match.blocking import PROTECTED, index_keys, shielded_keys, stored_keys
from tests.factories import incoming, moved, nhs, update

pytestmark = pytest.mark.integration
T = Thresholds()



async def _keys(conn, child_id: str) -> dict[str, str]:
    rows = await conn.fetch("SELECT key, ctid::text AS at FROM block_keys WHERE child_id = $1",
                            child_id)
    return {r["key"]: r["at"] for r in rows}


async def test_a_move_rewrites_only_the_keys_it_changes(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        first = update("la", "LA-1", nhs_number=nhs(5))
        [out] = await ingest.process(conn, [incoming(first)], T)
        child = out.child_id
        assert child
        before = await _keys(conn, child)
        assert set(before) == index_keys(first["child"])

        later = moved(update("la", "LA-1", version=2, nhs_number=nhs(5)))
        [out] = await ingest.process(conn, [incoming(later)], T)
        assert (out.action, out.child_id) == ("link", child)
        after = await _keys(conn, child)
        record = await conn.fetchval("SELECT record FROM children WHERE child_id = $1", child)

        assert set(after) == index_keys(record)  # exactly the new record's keys
        kept = set(before) & set(after)
        assert kept and set(after) - kept and set(before) - kept  # a postcode key moved
        # The keys that did not change are the very rows written the first time.
        assert all(after[k] == before[k] for k in kept)
    finally:
        await conn.close()


async def test_a_shielded_child_keeps_its_shielded_keys_through_an_update(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        first = update("la", "LA-2", nhs_number=nhs(6), given_name="Perpetua")
        [out] = await ingest.process(conn, [incoming(first)], T)
        child = out.child_id
        assert child
        await operations.shield(conn, child, "383", "test", None)
        shielded = await _keys(conn, child)
        assert shielded_keys(first["child"]) <= set(shielded)

        later = update("la", "LA-2", version=2, nhs_number=nhs(6), given_name="Perpetua",
                       middle_names="Iris")
        [out] = await ingest.process(conn, [incoming(later)], T)
        assert (out.action, out.child_id) == ("link", child)
        record = await conn.fetchval("SELECT record FROM children WHERE child_id = $1", child)
        after = await _keys(conn, child)
        assert set(after) == stored_keys(record, True, False)
        plain = index_keys(record) | shielded_keys(record)
        assert set(after) == plain | {PROTECTED + k for k in plain}
        assert all(after[k] == shielded[k] for k in set(after) & set(shielded))
    finally:
        await conn.close()


async def test_shield_unshield_and_sever_leave_exactly_the_records_stored_keys(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        first = update("la", "LA-4", nhs_number=nhs(8), given_name="Ludovica",
                       former_family_names=["Arbuthnot"])
        [out] = await ingest.process(conn, [incoming(first)], T)
        child = out.child_id
        assert child

        async def state() -> tuple[set[str], set[str]]:
            row = await conn.fetchrow(
                "SELECT record, shielded, severed FROM children WHERE child_id = $1", child)
            expected = stored_keys(row["record"], row["shielded"], row["severed"])
            return set(await _keys(conn, child)), expected

        got, expected = await state()
        assert got == expected and not any(k.startswith(PROTECTED) for k in got)
        await operations.shield(conn, child, "383", "test", None)
        got, expected = await state()
        assert got == expected and any(k.startswith(PROTECTED + "Y:") for k in got)
        await operations.unshield(conn, child, "383", "test", None)
        got, expected = await state()
        assert got == expected and not any(k.startswith(("Y:", PROTECTED)) for k in got)
        # Severed while shielded: it keeps a shielded record's keys (it lost them before),
        # its NHS number and former name are gone, and it is still found beside a tie.
        await operations.shield(conn, child, "383", "test", None)
        await operations.sever(conn, child, "383", "test", "adoption")
        got, expected = await state()
        assert got == expected and any(k.startswith("Y:") for k in got)
        assert not any(k.endswith(nhs(8)) for k in got)
        await operations.unshield(conn, child, "383", "test", None)
        got, expected = await state()
        assert got == expected  # severed: its protected copies stay
        assert any(k.startswith(PROTECTED) for k in got) and not any(
            k.startswith(("Y:", PROTECTED + "Y:")) for k in got)
    finally:
        await conn.close()


async def test_setup_renews_a_stale_form_and_leaves_exactly_the_records_keys(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        first = update("la", "LA-3", nhs_number=nhs(7), given_name="Clemency")
        [out] = await ingest.process(conn, [incoming(first)], T)
        child = out.child_id
        assert child
        good = await _keys(conn, child)
        dropped = sorted(good)[0]
        # As an older form version would have left it: another form, a key this code
        # no longer makes, one it makes missing.
        await conn.execute("UPDATE children SET prepared = 'p0.old' WHERE child_id = $1", child)
        await conn.execute("INSERT INTO block_keys (key, child_id) VALUES ('d:old-scheme', $1)",
                           child)
        await conn.execute("DELETE FROM block_keys WHERE child_id = $1 AND key = $2",
                           child, dropped)

        assert await prepared.refresh(conn) == 1
        after = await _keys(conn, child)
        assert set(after) == set(good)
        assert all(after[k] == good[k] for k in set(good) - {dropped})
        form = await conn.fetchval("SELECT prepared FROM children WHERE child_id = $1", child)
        assert form.startswith(compact.TAG) and await prepared.refresh(conn) == 0
    finally:
        await conn.close()


async def test_migration_0009_gives_protected_children_their_protected_copies(
    database_url: str,
) -> None:
    from hub.db.migrate import migrations

    conn = await connect(database_url)
    try:
        first = update("la", "LA-5", nhs_number=nhs(9), given_name="Araminta")
        other = update("la", "LA-6", nhs_number=nhs(10), given_name="Barnaby", sex="male",
                       date_of_birth="2012-05-17")
        out = await ingest.process(conn, [incoming(first), incoming(other)], T)
        shielded, open_ = out[0].child_id, out[1].child_id
        assert shielded and open_
        await operations.shield(conn, shielded, "383", "test", None)
        expected = set(await _keys(conn, shielded))
        # As a database made before the protected copies existed.
        await conn.execute("DELETE FROM block_keys WHERE starts_with(key, '!')")
        sql = dict(migrations())["0009_protected_keys"]
        await conn.execute(sql.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS"))
        assert set(await _keys(conn, shielded)) == expected
        assert not any(k.startswith(PROTECTED) for k in await _keys(conn, open_))
    finally:
        await conn.close()


async def test_hub_run_refuses_while_shielded_records_carry_old_keys(
    hub_env: dict[str, str],
) -> None:
    """New matching code looks up keys that records indexed by older code lack until
    `hub setup` renews them: for a shielded child that is a missed match, a duplicate.
    `hub run` refuses to start until then, and starts after it."""
    from tests.helpers import hub

    hub(hub_env, "setup")
    conn = await connect(hub_env["HUB_DATABASE_URL"])
    try:
        out = await ingest.process(conn, [incoming(update("la", "LA-9", nhs_number=nhs(9)))], T)
        await operations.shield(conn, out[0].child_id, "383", "test", None)
        await conn.execute("UPDATE children SET prepared = 'p0.old' || substr(prepared, "
                           "strpos(prepared, E'\\x1f')) WHERE child_id = $1", out[0].child_id)
    finally:
        await conn.close()
    refused = hub(hub_env, "run", check=False, timeout=60)
    assert refused.returncode == 1 and "run `hub setup` first" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    hub(hub_env, "setup")
    conn = await connect(hub_env["HUB_DATABASE_URL"])
    try:
        from hub.db.prepared import stale_shielded

        assert await stale_shielded(conn) == 0
    finally:
        await conn.close()
