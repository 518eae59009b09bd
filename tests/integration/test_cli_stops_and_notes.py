"""Small things an operator meets at the command line, found by an independent
probe: `hub notifications consume` stopped with SIGTERM (a service manager's stop)
ends as with Ctrl-C, exit 0 with nothing unprinted acknowledged (it died of the
signal, exit 143); a review reason the hub never gives is noted."""

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


def test_a_review_reason_the_hub_never_gives_is_noted(hub_env: dict[str, str]) -> None:
    """A mistyped `--reason` lists nothing, as a real one with no items does, but
    says so (found by a probe: "0 awaiting review", nothing else)."""
    hub(hub_env, "setup")
    typo = hub(hub_env, "review", "list", "--reason", "shielded_candiate")
    assert typo.stdout.startswith("0 awaiting review")
    assert "shielded_candiate is not a review reason" in typo.stderr
    assert "shielded_candidate" in typo.stderr
    real = hub(hub_env, "review", "list", "--reason", "shielded_candidate")
    assert real.stdout.startswith("0 awaiting review") and real.stderr == ""
