"""Commands for access control: broker users (`hub broker-users`) and database
logins (`hub db-user`). Passwords come from files or the environment, never from
the command line, and are never printed."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from hub.config import Settings
from hub.db.connect import connect as db_connect
from hub.operations import OperationError


def _passwords_dir(args: argparse.Namespace) -> Path | None:
    if not args.passwords_dir:
        return None
    path = Path(args.passwords_dir)
    if not path.is_dir():
        raise OperationError(f"{path} is not a directory")
    return path


async def broker_users_apply(args: argparse.Namespace, s: Settings) -> int:
    from hub.broker import users

    defs = users.load(args.file)
    print(await asyncio.to_thread(users.apply, defs, _passwords_dir(args), args.node))
    return 0


async def broker_users_check(args: argparse.Namespace, s: Settings) -> int:
    from hub.broker import users

    defs = users.load(args.file)
    state = await asyncio.to_thread(users.applied, args.node)
    problems = users.drift(defs, state, _passwords_dir(args))
    for line in problems:
        print(line)
    if problems:
        raise OperationError(f"the broker differs from {args.file} in {len(problems)} ways")
    print(f"the broker matches {args.file}")
    return 0


async def db_user_add(args: argparse.Namespace, s: Settings) -> int:
    from hub.db.roles import add_login

    password = None
    if args.password_file:
        try:
            password = Path(args.password_file).read_text().rstrip("\n")  # noqa: ASYNC240
        except OSError as exc:
            raise OperationError(f"cannot read {args.password_file}: {exc.strerror}") from None
        if not password:
            raise OperationError(f"{args.password_file} is empty")
    conn = await db_connect(s.database_url)
    try:
        done = await add_login(conn, args.name, args.role, password)
    finally:
        await conn.close()
    print(f"database login {args.name} ({args.role}) {done}")
    return 0


async def db_user_remove(args: argparse.Namespace, s: Settings) -> int:
    from hub.db.roles import remove_login

    conn = await db_connect(s.database_url)
    try:
        removed = await remove_login(conn, args.name)
    finally:
        await conn.close()
    print(f"database login {args.name} {'removed' if removed else 'was not there'}")
    return 0
