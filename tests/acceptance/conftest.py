"""What the acceptance tests share."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import PG_ADMIN


@pytest.fixture
async def harness_env(hub_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """The test's environment; afterwards, the databases `hub demo` and `hub eval`
    made beside the test's own (hub.harness.running_hub) are dropped."""
    yield hub_env
    own = hub_env["HUB_DATABASE_URL"].rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        for suffix in ("demo", "eval"):
            await admin.execute(f'DROP DATABASE IF EXISTS "{own}_{suffix}" WITH (FORCE)')
    finally:
        await admin.close()
