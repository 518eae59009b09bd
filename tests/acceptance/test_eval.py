"""`hub eval` end to end, with shielded children: their records are counted apart,
and none of them is linked wrongly or duplicated."""

from __future__ import annotations

import re

import pytest

from tests.helpers import hub

pytestmark = pytest.mark.integration


def test_eval_counts_shielded_children_apart(harness_env: dict[str, str]) -> None:
    res = hub(harness_env, "eval", "--children", "600", "--seed", "3", "--corruption", "0.6",
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
