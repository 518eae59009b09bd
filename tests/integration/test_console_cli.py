"""`hub console-user add`, `hub status` and `hub console` through the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import hub

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_console_user_status_and_console(hub_env: dict[str, str], tmp_path: Path) -> None:
    hub(hub_env, "setup")
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    hub(hub_env, "console-user", "add", "ada", "--role", "authority", "--authority", "383",
        "--password-file", str(pw))
    again = hub(hub_env, "console-user", "add", "ada", "--role", "operator",
                "--password-file", str(pw), check=False)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    status = hub(hub_env, "status").stdout
    assert "hub_outbox_pending 0" in status and "hub_broker_up 1" in status
    assert "hub_processing_latency_seconds_count 0" in status
    assert "# TYPE" in hub(hub_env, "status", "--prometheus").stdout
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli.main", "console", "--port",
                             str(port)], env=hub_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        body = ""
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert "hub_review_backlog" in body or "hub_outbox_pending" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/review", timeout=2) as r:
            assert "login" in r.url  # not logged in: sent to the login page
    finally:
        proc.terminate()
        code = proc.wait(timeout=20)
        assert proc.stdout is not None
        proc.stdout.close()
        assert code == 0
