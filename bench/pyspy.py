"""Sampling the hub's processes with py-spy while a benchmark phase runs, and a
plain-text summary of where the time went.

    python -m bench.pyspy summary PROFILE.txt [--top 30]

`hub bench --profile DIR` records the full-speed phase of every hub process into
DIR/<pid>.txt (py-spy's "raw" format: one collapsed stack and its sample count a
line) and prints the summary of each. py-spy must be installed (`pip install
py-spy`) and allowed to read other processes (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path


class Recorder:
    """py-spy record on one process (and its subprocesses) until stopped."""

    def __init__(self, pid: int, out: Path, rate: int = 50) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        beside = Path(sys.executable).parent / "py-spy"  # in the venv, maybe not on PATH
        exe = str(beside) if beside.exists() else shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        self.proc = await asyncio.create_subprocess_exec(
            exe, "record", "--pid", str(self.pid), "--subprocesses", "--idle",
            "--format", "raw", "--rate", str(self.rate), "--nonblocking",
            "--output", str(self.out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)

    async def stop(self) -> Path:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        return self.out


_IDLE = ("EpollSelector.select (selectors.py)", "select (selectors.py)",
         "ThreadedChildWatcher._do_waitpid (asyncio/unix_events.py)",
         "Condition.wait (threading.py)", "SimpleQueue.get")
_TASK_ROOT = "Handle._run (asyncio/events.py)"
_PROCESS = re.compile(r"process \d+:")


def _frame_name(frame: str) -> str:
    """"func (path/file.py:123)" -> "func (path/file.py)": functions, not lines."""
    frame = frame.strip()
    head, sep, tail = frame.rpartition(":")
    if sep and tail.endswith(")") and tail[:-1].isdigit():
        return head + ")"
    return frame


class _Process:
    def __init__(self) -> None:
        self.total = self.idle = 0
        self.self_counts: Counter[str] = Counter()
        self.inclusive: Counter[str] = Counter()
        self.per_task: Counter[str] = Counter()

    def add(self, frames: list[str], count: int) -> None:
        self.total += count
        leaf = frames[-1]
        if any(leaf.startswith(i) for i in _IDLE):
            self.idle += count
            return
        self.self_counts[leaf] += count
        for f in set(frames):
            self.inclusive[f] += count
        # What the event loop was running: the frame under its Handle._run.
        task = "(the event loop itself, or another thread)"
        if _TASK_ROOT in frames:
            at = frames.index(_TASK_ROOT)
            task = frames[at + 1] if at + 1 < len(frames) else task
        self.per_task[task] += count


def summary(path: Path, top: int = 25) -> str:
    """Per process: how busy it was, what its event loop ran, and the functions
    with the most samples (self and inclusive), as shares of its busy samples."""
    processes: dict[str, _Process] = {}
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame_name(f) for f in stack.split(";") if f.strip()]
        # --subprocesses nests a child's stack under its parent's "process ..." frame.
        at = max((i for i, f in enumerate(frames) if _PROCESS.match(f)), default=-1)
        if at < 0 or at + 1 >= len(frames):
            continue
        processes.setdefault(frames[at], _Process()).add(frames[at + 1:], int(count_text))
    if not processes:
        return f"{path}: no samples"
    lines = [f"{path.name}:"]
    for name, p in sorted(processes.items(), key=lambda kv: -kv[1].total):
        busy = p.total - p.idle
        lines.append(f"{name}: {p.total} samples, busy {100 * busy / max(1, p.total):.0f}%")
        for title, counter in (("event loop ran", p.per_task), ("self", p.self_counts),
                               ("inclusive", p.inclusive)):
            lines.append(f"  {title}:")
            for fn, n in counter.most_common(top):
                lines.append(f"    {100 * n / max(1, busy):5.1f}%  {fn}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary")
    s.add_argument("paths", nargs="+", type=Path)
    s.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    for path in args.paths:
        print(summary(path, args.top))


if __name__ == "__main__":
    main()
