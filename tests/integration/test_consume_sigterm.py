"""`hub notifications consume` stopped with SIGTERM (a service manager's stop) ends
as with Ctrl-C: exit 0, nothing unprinted acknowledged (found by an independent
probe: it died of the signal, exit 143)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.helpers import HUB, hub

pytestmark = pytest.mark.integration


def test_sigterm_stops_a_waiting_consumer_cleanly(hub_env: dict[str, str]) -> None:
    hub(hub_env, "setup")
    hub(hub_env, "council", "add", "383")
    proc = subprocess.Popen([*HUB, "notifications", "consume", "--council", "383",
                             "--idle", "120"], env=hub_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)  # connected, waiting for notifications
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == ""
