"""Which failures the one retry policy waits out, and which mark a poison message."""

from __future__ import annotations

import asyncpg
import pytest

from hub.db.store import IndexMoved
from workers.retry import is_transient


@pytest.mark.parametrize("exc", [
    asyncpg.exceptions.OutOfMemoryError("out of shared memory"),  # a full lock table
    asyncpg.exceptions.DiskFullError("could not extend file"),
    asyncpg.DeadlockDetectedError("deadlock detected"),
    IndexMoved(),  # a child committed beside one a batch creates: do it again
    ConnectionResetError(),
])
def test_the_servers_state_is_waited_out(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    asyncpg.exceptions.CheckViolationError("new row violates check constraint"),
    asyncpg.exceptions.RaiseError("this write is refused"),
    ValueError("bad data"),
])
def test_what_the_message_causes_is_not(exc: BaseException) -> None:
    assert not is_transient(exc)
