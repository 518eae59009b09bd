"""The compiled matching path (hub.native): used only while built from the sources."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hub import native


def _tree(root: Path) -> None:
    for rel in (*native.MODULES, "hub/config.py", "schemas/canonical.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n")


@pytest.fixture(autouse=True)
def _asked_afresh() -> None:
    native._fresh.cache_clear()  # each case's tree is new


def _built(root: Path, native_dir: Path) -> None:
    for package in native.PACKAGES:
        native_dir.joinpath(*package.split(".")).mkdir(parents=True, exist_ok=True)
    (native_dir / "stamp.json").write_text(json.dumps({"digest": native.source_digest(root)}))


def test_a_build_is_searched_first_only_while_every_source_is_as_it_was_built(
        tmp_path: Path) -> None:
    root, native_dir = tmp_path / "src", tmp_path / "src" / "hub" / "_native"
    _tree(root)
    _built(root, native_dir)
    assert native.status(native_dir, root) == "fresh"
    path = [str(root / "hub" / "match")]
    native.extend_path("hub.match", path, native_dir, root)
    assert path == [str(native_dir / "hub" / "match"), str(root / "hub" / "match")]

    # A module edited after the build: every compiled module stays off the path
    # (they call each other directly), so the edited source is what runs.
    (root / "hub" / "decide.py").write_text("# edited\n")
    assert native.status(native_dir, root) == "stale"
    native._fresh.cache_clear()  # a process started since (each asks once)
    for package in native.PACKAGES:
        path = [str(root.joinpath(*package.split(".")))]
        native.extend_path(package, path, native_dir, root)
        assert path == [str(root.joinpath(*package.split(".")))]


@pytest.mark.parametrize("edited", ["hub/config.py", "schemas/canonical.py", "hub/new.py"])
def test_a_module_the_compiled_ones_import_from_is_part_of_the_build(
        tmp_path: Path, edited: str) -> None:
    # What mypyc knew of it (a constant, a class's shape) may be built in.
    root, native_dir = tmp_path / "src", tmp_path / "src" / "hub" / "_native"
    _tree(root)
    _built(root, native_dir)
    (root / edited).write_text("LIMIT = 2\n")
    assert native.status(native_dir, root) == "stale"


def test_hub_native_0_runs_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, native_dir = tmp_path / "src", tmp_path / "src" / "hub" / "_native"
    _tree(root)
    _built(root, native_dir)
    monkeypatch.setenv("HUB_NATIVE", "0")
    path: list[str] = []
    native.extend_path("hub", path, native_dir, root)
    assert path == []


def test_no_build_or_an_unreadable_stamp_is_python(tmp_path: Path) -> None:
    root, native_dir = tmp_path / "src", tmp_path / "src" / "hub" / "_native"
    _tree(root)
    assert native.status(native_dir, root) == "absent"
    native_dir.mkdir(parents=True)
    (native_dir / "stamp.json").write_text("{not json")
    assert native.status(native_dir, root) == "absent"
    path: list[str] = []
    native.extend_path("hub", path, native_dir, root)
    assert path == []


def test_every_compiled_module_lives_in_a_package_that_looks_for_it() -> None:
    for rel in native.MODULES:
        package = rel.removesuffix(".py").replace("/", ".").rpartition(".")[0]
        assert package in native.PACKAGES, rel


def test_the_matching_path_runs_compiled_exactly_when_the_build_is_fresh() -> None:
    """All or nothing: a module missing from the build, or a package that does not
    look for it, fails here. deploy/test.sh requires the build (HUB_NATIVE_REQUIRED),
    so CI runs the code a deployed hub runs."""
    state = native.status() if os.environ.get("HUB_NATIVE") != "0" else "off"
    if os.environ.get("HUB_NATIVE_REQUIRED") == "1":
        assert state == "fresh", "deploy/install.sh did not compile hub.native (hub native build)"
    compiled = native.loaded()
    assert all(compiled.values()) if state == "fresh" else not any(compiled.values()), compiled


@pytest.mark.parametrize("command", ["status", "check", "nonsense"])
def test_the_command_answers(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = native.main([command])
    if command == "status":
        assert code == 0 and capsys.readouterr().out.split(":")[0] in (
            "fresh", "stale", "absent")
    elif command == "check":
        assert code == (1 if native.toolchain() else 0)
        assert ("cannot compile" in capsys.readouterr().err) == bool(code)
    else:
        assert code == 2


def test_without_a_compiler_it_says_so(monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    monkeypatch.setenv("CC", "no-such-cc")
    assert native.toolchain() == "no C compiler"
