"""The audit log is append-only: the database itself refuses changes."""

from __future__ import annotations

import asyncpg
import pytest

pytestmark = pytest.mark.integration


async def test_audit_log_refuses_update_delete_truncate(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("INSERT INTO audit_log (actor, action) VALUES ('op', 'test')")
        for sql in ("UPDATE audit_log SET actor = 'someone else'",
                    "DELETE FROM audit_log",
                    "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(sql)
        assert await conn.fetchval("SELECT actor FROM audit_log") == "op"
    finally:
        await conn.close()
