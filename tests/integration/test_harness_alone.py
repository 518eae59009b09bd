"""hub.harness.alone: one demo or eval a vhost at a time, over a real broker."""

from __future__ import annotations

import pytest

from hub.config import Settings
from hub.harness import alone
from hub.operations import OperationError

pytestmark = pytest.mark.integration


async def test_a_second_harness_on_the_vhost_is_refused_until_the_first_ends(
        settings: Settings) -> None:
    async with alone(settings):
        with pytest.raises(OperationError, match="another hub demo or eval is running"):
            async with alone(settings):
                pass  # pragma: no cover - refused before this
    async with alone(settings):  # the first has ended: its queue went with it
        pass
