"""Console users: a name, a role and an scrypt password hash (console_users)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import asyncpg

from hub.operations import OperationError

ROLES = ("operator", "authority", "auditor")
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class User:
    name: str
    role: str
    authority: str | None

    @property
    def can_act(self) -> bool:
        """Auditors read; everyone else may POST (within their role)."""
        return self.role in ("operator", "authority")

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def acting_for(self) -> str | None:
        """The LA whose shielded children this user may see in full, if any."""
        return self.authority if self.role == "authority" else None


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(bytes.fromhex(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


# Compared against when the name is unknown, so a login takes as long either way.
_DUMMY = hash_password("not a password", b"\0" * 16)


async def add_user(conn: asyncpg.Connection, name: str, role: str, password: str,
                   authority: str | None = None) -> None:
    """Create a console user (OperationError on bad input or an existing name)."""
    if not name or len(name) > 100 or not name.isprintable():
        raise OperationError("a user name is 1 to 100 printable characters")
    if role not in ROLES:
        raise OperationError(f"role must be one of {', '.join(ROLES)}")
    if role == "authority":
        if not authority or not re.fullmatch(r"[0-9]{3}", authority):
            raise OperationError("an authority user needs its 3-digit LA code")
    elif authority is not None:
        raise OperationError("only an authority user has an LA code")
    if len(password) < 8:
        raise OperationError("a password is at least 8 characters")
    hashed = await asyncio.to_thread(hash_password, password)
    try:
        await conn.execute(
            "INSERT INTO console_users (name, role, authority, password_hash)"
            " VALUES ($1, $2, $3, $4)", name, role, authority, hashed)
    except asyncpg.UniqueViolationError:
        raise OperationError(f"console user {name} already exists") from None


async def get_user(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> User | None:
    row = await conn.fetchrow(
        "SELECT name, role, authority FROM console_users WHERE name = $1", name)
    return User(row["name"], row["role"], row["authority"]) if row else None


async def authenticate(conn: asyncpg.Connection | asyncpg.Pool, name: str,
                       password: str) -> User | None:
    row = await conn.fetchrow(
        "SELECT name, role, authority, password_hash FROM console_users WHERE name = $1", name)
    ok = await asyncio.to_thread(verify_password, password,
                                 row["password_hash"] if row else _DUMMY)
    if row is None or not ok:
        return None
    return User(row["name"], row["role"], row["authority"])
