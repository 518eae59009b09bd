"""`hub eval` end to end, with shielded children: their records are counted apart,
and none of them is linked wrongly or duplicated."""

from __future__ import annotations

import re

import asyncpg
import pytest

from tests.conftest import PG_ADMIN
from tests.helpers import hub

pytestmark = pytest.mark.integration


@pytest.fixture
async def eval_env(hub_env: dict[str, str]):  # type: ignore[no-untyped-def]
    yield hub_env
    eval_db = hub_env["HUB_DATABASE_URL"].rsplit("/", 1)[1] + "_eval"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{eval_db}" WITH (FORCE)')
    await admin.close()


def test_eval_counts_shielded_children_apart(eval_env: dict[str, str]) -> None:
    res = hub(eval_env, "eval", "--children", "600", "--seed", "3", "--corruption", "0.6",
              "--shielded", "0.1", timeout=600)
    out = res.stdout + res.stderr
    shield = re.search(r"councils shield (\d+) children", out)
    assert shield and int(shield.group(1)) >= 50, out
    about = re.search(r"about shielded children: (\d+) records, (\d+) wrong links,"
                      r" (\d+) duplicates created .*?, (\d+) to review", out)
    assert about, out
    records, wrong, duplicates, review = map(int, about.groups())
    assert records > 0 and review > 0
    assert (wrong, duplicates) == (0, 0)
    assert re.search(r"auto-link precision \d+\.\d+%", out)
