"""A chaos run killed outright (a test's timeout sends SIGKILL) leaves its private
PostgreSQL and RabbitMQ running in sessions of their own; the next run stops them
and removes their directory, and leaves alone what a live or kept run owns."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hub.chaos.services import OWNER, PREFIX, reap_orphans

pytestmark = pytest.mark.integration


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _service(root: Path) -> subprocess.Popen[bytes]:
    """A process that names its directory on its command line, as postgres -D and
    the RabbitMQ VM do."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)",
                             str(root / "data")], start_new_session=True)


def test_the_services_of_a_killed_run_are_stopped_and_removed() -> None:
    orphan = Path(tempfile.mkdtemp(prefix=PREFIX))
    live = Path(tempfile.mkdtemp(prefix=PREFIX))
    kept = Path(tempfile.mkdtemp(prefix=PREFIX))
    (orphan / OWNER).write_text(str(_dead_pid()))
    (live / OWNER).write_text(str(os.getpid()))
    procs = {d: _service(d) for d in (orphan, live, kept)}
    try:
        time.sleep(0.3)
        reaped = reap_orphans()
        assert orphan in reaped and live not in reaped and kept not in reaped
        assert procs[orphan].wait(timeout=10) == -9
        assert not orphan.exists()
        assert procs[live].poll() is None and live.exists()
        assert procs[kept].poll() is None and kept.exists()
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
        for d in (live, kept):
            shutil.rmtree(d, ignore_errors=True)
