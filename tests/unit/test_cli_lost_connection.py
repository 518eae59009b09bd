"""A database connection lost in the middle of a command is one clear line and exit
1, never a traceback (an independent probe ended the hub's sessions while export,
shield, unshield and dlq retry ran: the driver raised InterfaceError or
InternalClientError, which no handler named)."""

from __future__ import annotations

import argparse

import asyncpg
import pytest

from hub.cli import commands, main
from hub.config import Settings


@pytest.mark.parametrize("error", [
    asyncpg.InterfaceError(
        "cannot call Transaction.__aexit__(): the underlying connection is closed"),
    asyncpg.exceptions.InternalClientError(
        "cannot switch to state 11; another operation (2) is in progress"),
], ids=["interface", "internal-client"])
def test_a_connection_lost_mid_command_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception,
) -> None:
    async def lost(args: argparse.Namespace, s: Settings) -> int:
        raise error

    monkeypatch.setattr(commands, "export", lost)
    # (logging left as it is: configured here, it would write to this test's captured
    # stderr, closed for the tests after it)
    monkeypatch.setattr(main, "configure", lambda *args, **kwargs: None)
    assert main.main(["export"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "database connection was lost" in err
