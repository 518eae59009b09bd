"""Database logins in the hub's least-privilege roles (migration 0007).

`hub setup` runs as the owner of the tables; everything else logs in as a member of
one group role. A login's password is sent to PostgreSQL as a SCRAM-SHA-256
verifier computed here, so the password itself never reaches the server's
statement log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

import asyncpg

from hub.operations import OperationError

ROLES = {
    "worker": "hub_worker",
    "operator": "hub_operator",
    "reader": "hub_reader",
    "auditor": "hub_auditor",
}
_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, salt: bytes | None = None,
                   iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5803 layout).
    The password is used as UTF-8 bytes (SASLprep leaves ASCII unchanged)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
            f"${b64(stored_key).decode()}:{b64(server_key).decode()}")


def _ident(name: str) -> str:
    if not _NAME.match(name):
        raise OperationError(f"login name {name!r} must be lower case letters, digits, _ or -")
    return '"' + name + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def add_login(conn: asyncpg.Connection, name: str, role: str,
                    password: str | None = None) -> str:
    """Create (or bring into line) a LOGIN role that is a member of the hub role
    `role` and nothing more powerful. Idempotent; returns 'created' or 'updated'."""
    if role not in ROLES:
        raise OperationError(f"role must be one of {', '.join(ROLES)}")
    group = ROLES[role]
    ident = _ident(name)
    if not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", group):
        raise OperationError(f"role {group} is missing: run `hub setup` first")
    row = await conn.fetchrow("SELECT rolsuper FROM pg_roles WHERE rolname = $1", name)
    if row is not None and row["rolsuper"]:
        raise OperationError(f"{name} is a superuser: choose another login name")
    attrs = "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    pw = f" PASSWORD {_literal(scram_verifier(password))}" if password else ""
    created = row is None
    try:
        if created:
            try:
                await conn.execute(f"CREATE ROLE {ident} {attrs}{pw}")
            except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
                created = False  # made by someone else at the same moment
        if not created:
            await conn.execute(f"ALTER ROLE {ident} {attrs}{pw}")
        await conn.execute(f"GRANT {group} TO {ident}")
    except asyncpg.InsufficientPrivilegeError:
        raise OperationError("this database user may not create or change roles"
                             " (it needs CREATEROLE)") from None
    return "created" if created else "updated"


async def remove_login(conn: asyncpg.Connection, name: str) -> bool:
    """Drop a login made by add_login (only a member of a hub role, never anyone else)."""
    ident = _ident(name)
    member = await conn.fetchval(
        "SELECT true FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
        " JOIN pg_roles u ON u.oid = m.member"
        " WHERE u.rolname = $1 AND g.rolname = ANY($2::text[]) AND NOT u.rolsuper",
        name, list(ROLES.values()))
    if not member:
        if await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", name):
            raise OperationError(f"{name} is not a hub login: not removed")
        return False
    await conn.execute(f"DROP ROLE {ident}")
    return True


async def too_powerful(conn: asyncpg.Connection) -> str | None:
    """Why the current login is more than the runtime needs (superuser, or owner of
    the hub's tables), or None."""
    row = await conn.fetchrow(
        "SELECT r.rolsuper,"
        " pg_has_role(current_user, c.relowner, 'USAGE') AS owner"
        " FROM pg_roles r, pg_class c"
        " WHERE r.rolname = current_user AND c.oid = to_regclass('children')")
    if row is None:
        return None
    if row["rolsuper"]:
        return "superuser"
    if row["owner"]:
        return "table_owner"
    return None


def login_url(url: str, name: str, password: str | None = None) -> str:
    """The same database URL (host, database, TLS parameters) for another login."""
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    cred = quote(name, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{cred}@{host}"))


async def scratch_worker(url: str) -> tuple[str, str] | None:
    """A hub_worker login for a scratch database (the demo, eval), named after it,
    with a random password: (its URL, its name); None when this login may not
    create roles (then the caller runs as itself)."""
    from hub.db.connect import connect, database_name

    name = re.sub(r"[^a-z0-9_]", "_", database_name(url).lower())[:56] + "_worker"
    password = secrets.token_urlsafe(18)
    conn = await connect(url)
    try:
        await add_login(conn, name, "worker", password)
    except OperationError:
        return None
    finally:
        await conn.close()
    return login_url(url, name, password), name


async def drop_scratch_worker(url: str, name: str) -> None:
    from hub.db.connect import connect

    conn = await connect(url)
    try:
        await remove_login(conn, name)
    finally:
        await conn.close()
