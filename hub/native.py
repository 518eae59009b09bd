"""The matching path compiled with mypyc, beside its Python source, never instead of it.

Every update goes through these modules (prepare, blocking keys, scoring, the
decision rules, the batch's candidates, validation), and compiled they cost about a
quarter less CPU (README, "Performance": matching alone, and the hub end to end). The
Python source stays the truth: `hub native build` (deploy/install.sh runs it)
compiles these modules into `hub/_native/` with a stamp of the source they were made
from, and on import `hub` and `hub.match` look there first only while the stamp
still matches. A module edited since is therefore never shadowed by a stale binary:
the whole set falls back to Python (compiled modules call each other directly, so
they go together) until it is built again. Without a C compiler or mypy the hub runs
as Python. `hub native status` says which runs, `hub native check` whether this
machine can compile, `hub native clean` removes the build; HUB_NATIVE=0 runs Python.

Compiled, the modules decide exactly as Python does on anything validation lets
through (a differential review: about 1.6 million outputs of their functions, the
same); they differ on what it does not (a name that is a number raises TypeError),
and their frozen dataclasses (Matcher, Decision, SourceLink, Rejection) cannot be
copied or pickled, which the hub never does. And `hub.batch.StoredRecord`, a
Mapping, shares `collections.abc.Mapping`'s ABC cache once compiled: after any dict
has been checked against Mapping, `isinstance(a_dict, StoredRecord)` is True. Check
it by `type(...) is StoredRecord`, as the hub does.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import MutableSequence
from functools import cache
from pathlib import Path

#: The compiled modules, relative to the directory that holds the `hub` package.
MODULES = (
    "hub/match/blocking.py",
    "hub/match/compact.py",
    "hub/match/compare.py",
    "hub/match/normalise.py",
    "hub/match/score.py",
    "hub/batch.py",
    "hub/decide.py",
    "hub/places.py",
    "hub/records.py",
    "hub/text_rules.py",
    "hub/validate.py",
)
#: The packages whose search path the compiled modules join.
PACKAGES = ("hub", "hub.match")
#: The shared library of the group (mypyc's runtime and the modules' code).
GROUP = "hub._native"

_ROOT = Path(__file__).resolve().parent.parent  # holds hub/
NATIVE_DIR = _ROOT / "hub" / "_native"
_STAMP = "stamp.json"


#: The packages whose source a build depends on: the compiled modules, and every
#: module they import from (mypyc may build in what it knows of them, a constant, a
#: class's shape), so any change in them makes the build stale.
SOURCE_PACKAGES = ("hub", "schemas")


def source_digest(root: Path = _ROOT) -> str:
    """What a build is made from: the source of every module of SOURCE_PACKAGES (about
    90 files, read in a few milliseconds), and the Python it runs on (an extension
    module is built for one)."""
    h = hashlib.sha256(f"{sys.implementation.cache_tag}\n".encode())
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()


def status(native_dir: Path = NATIVE_DIR, root: Path = _ROOT) -> str:
    """"fresh" (built from these sources), "stale" (a source changed since: Python
    runs) or "absent"."""
    try:
        stamp = json.loads((native_dir / _STAMP).read_text())
    except (OSError, ValueError):
        return "absent"
    return "fresh" if stamp.get("digest") == source_digest(root) else "stale"


def extend_path(package: str, path: MutableSequence[str],
                native_dir: Path = NATIVE_DIR, root: Path = _ROOT) -> None:
    """Put the package's compiled modules first on its search path (`__path__`) when
    the build is fresh and HUB_NATIVE is not 0; else leave the path as it is."""
    if os.environ.get("HUB_NATIVE") == "0":  # Python, to compare or to debug
        return
    where = native_dir.joinpath(*package.split("."))
    if where.is_dir() and str(where) not in path and _fresh(native_dir, root):
        path.insert(0, str(where))


@cache
def _fresh(native_dir: Path, root: Path) -> bool:
    # Once a process: hub and hub.match ask in turn as they are imported.
    return status(native_dir, root) == "fresh"


def loaded() -> dict[str, bool]:
    """Each compiled module's name and whether it was imported from its extension."""
    import importlib

    out = {}
    for rel in MODULES:
        name = rel.removesuffix(".py").replace("/", ".")
        file = getattr(importlib.import_module(name), "__file__", "") or ""
        out[name] = not file.endswith(".py")
    return out


def describe() -> str:
    """How this process runs the matching path, for benchmarks' figures."""
    if all(loaded().values()):
        return "compiled (hub native)"
    if os.environ.get("HUB_NATIVE") == "0":
        return "Python (HUB_NATIVE=0)"
    if status() == "stale":
        return "Python (the build is stale: hub native build)"
    return "Python (not compiled)"


def toolchain() -> str | None:
    """Why this machine cannot compile the modules (no C compiler, no Python headers,
    no mypyc), or None when it can."""
    import importlib.util
    import shutil
    import sysconfig

    if not any(shutil.which(cc) for cc in (os.environ.get("CC", "cc"), "gcc")):
        return "no C compiler"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python headers (python3-dev)"
    if importlib.util.find_spec("mypyc") is None:
        return "no mypyc (pip install '.[native]')"
    return None


def build(root: Path = _ROOT) -> None:
    """Compile MODULES into `hub/_native` (replacing an earlier build once the new one
    is made). Needs mypy (mypyc), setuptools and a C compiler."""
    import shutil
    import subprocess
    import tempfile

    digest = source_digest(root)
    with tempfile.TemporaryDirectory(prefix="hub-native-") as tmp:
        work = Path(tmp)
        # A copy of the source, compiled from an empty directory: mypy then reads the
        # packages from the copy, never as files among an installed hub's neighbours
        # in site-packages (which it would take for the project's own modules), and
        # setuptools reads no project file of ours.
        src = work / "src"
        for package in SOURCE_PACKAGES:
            for path in (root / package).rglob("*.py"):
                copy = src / path.relative_to(root)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, copy)
        script = (
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            f"paths = {[str(src / m) for m in MODULES]!r}\n"
            "setup(name='hub-native', script_name='hub-native',\n"
            f"      ext_modules=mypycify(paths, separate=[(paths, {GROUP!r})],\n"
            f"                           target_dir={str(work / 'c')!r}),\n"
            f"      script_args=['-q', 'build_ext', '--build-lib', {str(work / 'lib')!r},\n"
            f"                   '--build-temp', {str(work / 'temp')!r}])\n"
        )
        env = dict(os.environ, MYPY_CACHE_DIR=str(work / "mypy_cache"))
        (work / "run").mkdir()
        log = work / "build.log"
        with log.open("w") as out:
            done = subprocess.run([sys.executable, "-c", script], cwd=work / "run", env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
        if done.returncode:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError("mypyc failed: " + " / ".join(tail))
        made = work / "lib"
        (made / _STAMP).write_text(json.dumps({"digest": digest, "modules": list(MODULES)}))
        if source_digest(root) != digest:
            raise RuntimeError("the sources changed while they were being compiled")
        # Copied beside it, then put in place by renames: a build cut short (or two
        # at once) never leaves a stamp beside some of the modules only (the rest
        # would import as Python, beside compiled ones holding their own classes).
        new = Path(tempfile.mkdtemp(prefix="_native.new.", dir=NATIVE_DIR.parent))
        old = Path(tempfile.mkdtemp(prefix="_native.old.", dir=NATIVE_DIR.parent))
        try:
            shutil.copytree(made, new, dirs_exist_ok=True)
            if NATIVE_DIR.exists():
                NATIVE_DIR.rename(old / "build")
            new.rename(NATIVE_DIR)
        finally:
            shutil.rmtree(new, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)


def clean() -> None:
    import shutil

    shutil.rmtree(NATIVE_DIR, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "status"
    if command == "build":
        if status() == "fresh":
            print(f"hub.native: already built from these sources: {NATIVE_DIR}",
                  file=sys.stderr)
            return 0
        try:
            build()
        except (OSError, RuntimeError) as e:
            print(f"hub.native: not compiled ({e}); the hub runs as Python", file=sys.stderr)
            return 1
        print(f"hub.native: {len(MODULES)} modules compiled into {NATIVE_DIR}", file=sys.stderr)
        return 0
    if command == "check":
        missing = toolchain()
        print(f"hub.native: cannot compile here: {missing}" if missing
              else "hub.native: can compile here", file=sys.stderr)
        return 1 if missing else 0
    if command == "clean":
        clean()
        return 0
    if command == "status":
        state = status()
        print(f"{state}: {NATIVE_DIR}" if state != "absent" else "absent: the hub runs as Python")
        return 0
    print("usage: hub native [build|check|clean|status]", file=sys.stderr)
    return 2
