"""The broker's access control from a RabbitMQ definitions file: vhosts, users,
permissions and topic permissions, applied with `rabbitmqctl` and checked against
what the broker holds (`hub broker-users apply|check FILE`).

Passwords come from a secrets directory (one file per user, named after it), from
the environment (HUB_BROKER_PASSWORD_<USER>, upper case, other characters as _),
or as a `password_hash` in the file, in that order. They are hashed here and
handed to rabbitmqctl on standard input: never on a command line, never printed.
Only the access-control sections of the file are applied (exchanges and queues
are `hub setup`'s business), and nothing outside the file is removed; `check`
reports anything extra in the file's vhosts as drift.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hub.operations import OperationError

SHA256 = "rabbit_password_hashing_sha256"
PERMS = ("configure", "write", "read")
TOPIC_PERMS = ("write", "read")


def rabbit_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = salt or secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def hash_matches(password: str, stored: str) -> bool:
    try:
        raw = base64.b64decode(stored, validate=True)
    except ValueError:
        return False
    return len(raw) == 36 and rabbit_hash(password, raw[:4]) == stored


def env_name(user: str) -> str:
    return "HUB_BROKER_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", user.upper())


def load(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise OperationError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise OperationError(f"{path} is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        raise OperationError(f"{path} is not a RabbitMQ definitions file (no users list)")
    for section in ("vhosts", "permissions", "topic_permissions"):
        if not isinstance(data.get(section, []), list):
            raise OperationError(f"{path}: {section} must be a list")
    for user in data["users"]:
        if not isinstance(user, dict) or not isinstance(user.get("name"), str):
            raise OperationError(f"{path}: every user needs a name")
    return data


def _password(user: Mapping[str, Any], passwords_dir: Path | None,
              env: Mapping[str, str]) -> str | None:
    name = user["name"]
    if passwords_dir is not None:
        path = passwords_dir / name
        if path.is_file():
            try:
                return path.read_text().rstrip("\n")
            except OSError as exc:
                raise OperationError(f"cannot read the password of {name}: {exc.strerror}"
                                     ) from None
    return env.get(env_name(name)) or None


def access(defs: Mapping[str, Any], passwords_dir: Path | None = None,
           env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The access-control part of a definitions file, every user with a hash."""
    env = os.environ if env is None else env
    users = []
    for user in defs["users"]:
        password = _password(user, passwords_dir, env)
        if password is not None:
            pw_hash, algorithm = rabbit_hash(password), SHA256
        elif user.get("password_hash"):
            pw_hash, algorithm = user["password_hash"], user.get("hashing_algorithm", SHA256)
        else:
            raise OperationError(
                f"user {user['name']} has no password: put it in the passwords directory,"
                f" in {env_name(user['name'])}, or a password_hash in the file")
        users.append({"name": user["name"], "password_hash": pw_hash,
                      "hashing_algorithm": algorithm, "tags": list(user.get("tags", []))})
    return {
        "users": users,
        "vhosts": [{"name": v["name"]} for v in defs.get("vhosts", [])],
        "permissions": list(defs.get("permissions", [])),
        "topic_permissions": list(defs.get("topic_permissions", [])),
    }


def rabbitmqctl(*args: str, stdin: str | None = None, node: str | None = None,
                timeout: float = 60) -> str:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    cmd = [exe, *(["-n", node] if node else []), "-q", *args]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError:
        raise OperationError("rabbitmqctl is not installed here") from None
    except subprocess.TimeoutExpired:
        raise OperationError(f"rabbitmqctl {args[0]} timed out") from None
    if proc.returncode != 0:
        # Its own error text only: the input (which holds hashes) is never echoed.
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise OperationError(f"rabbitmqctl {args[0]} failed: {lines[0] if lines else '?'}")
    return proc.stdout


def applied(node: str | None = None) -> dict[str, Any]:
    """What the broker holds now (its exported definitions)."""
    out = rabbitmqctl("export_definitions", "-", "--format", "json", node=node)
    start = out.find("{")
    try:
        return dict(json.loads(out[start:]))
    except ValueError:
        raise OperationError("rabbitmqctl export_definitions printed no JSON") from None


def drift(defs: Mapping[str, Any], state: Mapping[str, Any], passwords_dir: Path | None = None,
          env: Mapping[str, str] | None = None) -> list[str]:
    """Differences between a definitions file and the broker's state, one line each
    (names and patterns only, never a password or hash)."""
    env = os.environ if env is None else env
    problems: list[str] = []
    have_vhosts = {v["name"] for v in state.get("vhosts", [])}
    vhosts = [v["name"] for v in defs.get("vhosts", [])]
    problems += [f"vhost {v} is missing" for v in vhosts if v not in have_vhosts]

    have_users = {u["name"]: u for u in state.get("users", [])}
    for user in defs["users"]:
        name = user["name"]
        got = have_users.get(name)
        if got is None:
            problems.append(f"user {name} is missing")
            continue
        if sorted(got.get("tags") or []) != sorted(user.get("tags", [])):
            problems.append(f"user {name} has tags {sorted(got.get('tags') or [])},"
                            f" expected {sorted(user.get('tags', []))}")
        password = _password(user, passwords_dir, env)
        if password is not None:
            if got.get("hashing_algorithm") != SHA256 or not hash_matches(
                    password, got.get("password_hash", "")):
                problems.append(f"user {name} has another password")
        elif user.get("password_hash") and got.get("password_hash") != user["password_hash"]:
            problems.append(f"user {name} has another password")

    def table(items: Any, keys: tuple[str, ...]) -> dict[tuple[str, ...], tuple[str, ...]]:
        return {
            (p["user"], p["vhost"], *((p["exchange"],) if "exchange" in p else ())):
                tuple(p[k] for k in keys)
            for p in items if p.get("vhost") in vhosts
        }

    for section, keys in (("permissions", PERMS), ("topic_permissions", TOPIC_PERMS)):
        want = table(defs.get(section, []), keys)
        have = table(state.get(section, []), keys)
        what = section.replace("_", " ").removesuffix("s")
        for key, value in sorted(want.items()):
            where = f"{what} of {key[0]} in {key[1]}" + (f" on {key[2]}" if len(key) > 2 else "")
            if key not in have:
                problems.append(f"{where} is missing")
            elif have[key] != value:
                problems.append(f"{where} is {dict(zip(keys, have[key], strict=True))},"
                                f" expected {dict(zip(keys, value, strict=True))}")
        for key in sorted(set(have) - set(want)):
            where = f"{what} of {key[0]} in {key[1]}" + (f" on {key[2]}" if len(key) > 2 else "")
            problems.append(f"{where} is not in the file")
    return problems


def apply(defs: Mapping[str, Any], passwords_dir: Path | None = None,
          node: str | None = None, settle: float = 30) -> str:
    """Import the file's access control (idempotent), then check that the broker holds
    it; returns a one-line summary."""
    part = access(defs, passwords_dir)
    rabbitmqctl("import_definitions", "--format", "json", stdin=json.dumps(part), node=node)
    # The import is asynchronous on some versions: wait until the broker shows it.
    deadline = time.monotonic() + settle
    while True:
        problems = drift(defs, applied(node), passwords_dir)
        if not problems:
            break
        if time.monotonic() > deadline:
            raise OperationError(f"the broker does not match the file after import: {problems[0]}")
        time.sleep(0.5)
    return (f"broker access applied: {len(part['vhosts'])} vhost(s), {len(part['users'])} users,"
            f" {len(part['permissions'])} permissions,"
            f" {len(part['topic_permissions'])} topic permissions")
