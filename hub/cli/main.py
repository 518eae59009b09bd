"""`hub`: exit 0 on success, 1 on failure, 2 on bad usage; one clear line on stderr."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

import aiormq
import asyncpg

from hub import loop as hub_loop
from hub.cli import UsageError
from hub.config import ConfigError, Settings
from hub.log import configure
from hub.operations import OperationError


class _Parser(argparse.ArgumentParser):
    """Bad usage as one line on stderr, exit 2 (argparse prints the usage too: two
    lines or more); `--help` still shows the usage. Subcommands' parsers are made of
    the same class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


FORMATS_HELP = """\
formats (--format; adapters/README.md has each in full):
  jsonl  one canonical update per line, as the contract shows it
  csv    a header row (columns in any order), then one child a row. Required
         columns: source_record_id, source_version, date_of_birth, and one of
         given_name and family_name. Also: nhs_number, upn, middle_names,
         former_family_names (separated by ";"), sex, address_line1..3, town,
         postcode, la, carerN_name / carerN_relationship / carerN_phone,
         serviceN_name / serviceN_contact, school_urn, school_name,
         gp_ods_code, gp_name, restricted (y/n). Under a header with any other
         column, the header and every row are dead letters (unknown_column).
  fhir   FHIR R4 Patient resources as NHS PDS serves them: one resource, a
         Bundle, or NDJSON; Patient.id is the record id, meta.versionId its
         version, meta.security R or V marks it restricted at origin
  ctf    a DfE Common Transfer File (XML): each Pupil's UPN is its record id,
         the header's DateTime (ISO, 2024-03-14T10:20:30) every pupil's version
         (as the number 20240314102030)
Every bad record is dead-lettered with its line or element and reason."""


def _parser() -> argparse.ArgumentParser:
    from hub.cli import commands as c

    p = _Parser(prog="hub", description="The national child index hub.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("setup", help="create the database, apply migrations, declare the broker")
    s.set_defaults(func=c.setup)

    s = sub.add_parser("run", help="run the pipeline, outbox relay and parking")
    s.add_argument("--workers", type=_count, default=1, help="pipeline workers per process")
    s.add_argument("--processes", type=_count, default=1,
                   help="pipeline processes (with more than 1, this one keeps the relay"
                        " and parking)")
    s.add_argument("--only", metavar="COMPONENTS", type=_components,
                   help="comma-separated: pipeline, relay, parking (default: all)")
    s.set_defaults(func=c.run)

    s = sub.add_parser("publish", help="publish a source file with confirms",
                       epilog=FORMATS_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--source", required=True, type=_source)
    s.add_argument("--format", required=True, dest="fmt", type=_format)
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--quiet", action="store_true", help="no progress lines")
    s.set_defaults(func=c.publish)

    s = sub.add_parser("load", help="a source's initial extract matched and written in bulk",
                       epilog=FORMATS_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--source", required=True, type=_source)
    s.add_argument("--format", required=True, dest="fmt", type=_format)
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--chunk", type=_count, default=50_000, help="records per chunk (transaction)")
    s.add_argument("--workers", type=_count, default=2, help="worker processes")
    s.add_argument("--hold", type=_amount, default=1_500_000, metavar="RECORDS",
                   help="records kept in memory before the load reads earlier chunks back"
                        " from the index instead (about 4.4 GB a million)")
    s.add_argument("--quiet", action="store_true", help="no progress lines")
    s.set_defaults(func=c.load)

    s = sub.add_parser("wait", help="wait until every hub queue and the outbox are drained")
    s.add_argument("--timeout", type=_seconds, default=60.0)
    s.set_defaults(func=c.wait)

    s = sub.add_parser("export", help="the child index as JSON lines")
    s.add_argument("--include-protected", action="store_true")
    s.add_argument("--by")
    s.add_argument("--reason")
    s.set_defaults(func=c.export)

    for name in ("shield", "unshield", "sever"):
        s = sub.add_parser(name, help=f"{name} a record for a local authority")
        s.add_argument("child_id", metavar="CHILD_ID")
        s.add_argument("--authority", required=True, metavar="LA")
        s.add_argument("--by", required=True, metavar="OPERATOR")
        s.add_argument("--reason")
        if name == "shield":
            s.add_argument("--household", action="store_true",
                           help="also shield every open record at the same house (a sibling,"
                                " another family of the refuge); without it they are listed")
        if name == "unshield":
            s.add_argument("--household", action="store_true",
                           help="also lift every record this authority shields at the same"
                                " house; without it a record where one lives stays shielded")
        s.set_defaults(func=getattr(c, name))

    s = sub.add_parser("search", help="find children by names and date of birth (audited)")
    s.add_argument("--given-name")
    s.add_argument("--family-name")
    s.add_argument("--date-of-birth", required=True, metavar="YYYY-MM-DD")
    s.add_argument("--sex", choices=["female", "male", "unknown"])
    s.add_argument("--postcode", help="a hidden field: never returns a shielded record")
    s.add_argument("--by", required=True, metavar="PRACTITIONER")
    s.set_defaults(func=c.search)

    s = sub.add_parser("show", help="one child record, as you may see it (audited)")
    s.add_argument("child_id", metavar="CHILD_ID")
    s.add_argument("--by", required=True, metavar="OPERATOR")
    s.add_argument("--authority", metavar="LA", help="act for this local authority")
    s.add_argument("--break-glass", action="store_true",
                   help="see a shielded record's hidden data: needs --reason, alerts its authority")
    s.add_argument("--reason")
    s.set_defaults(func=c.show)

    review = sub.add_parser("review", help="records awaiting an operator's decision")
    rs = review.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = rs.add_parser("list", help="the records awaiting a decision")
    s.add_argument("--json", action="store_true")
    s.add_argument("--reason")
    s.add_argument("--source")
    s.add_argument("--older-than", type=float, metavar="HOURS")
    s.add_argument("--assigned-to", metavar="OPERATOR")
    s.set_defaults(func=c.review_list)
    for name, helptext in (("assign", "give an item to an operator"),
                           ("note", "add a note to an item"),
                           ("investigate", "mark an item under investigation (or --done)")):
        s = rs.add_parser(name, help=helptext + " (review items and dead letters alike)")
        s.add_argument("item_id", metavar="ID")
        s.add_argument("--by", required=True, metavar="OPERATOR")
        if name == "assign":
            s.add_argument("--to", required=True, metavar="OPERATOR")
        if name == "note":
            s.add_argument("--text", required=True)
        if name == "investigate":
            s.add_argument("--done", action="store_true")
        s.set_defaults(func=c.review_handle, handle=name)
    s = rs.add_parser("show", help="one item: the update beside its candidates, field by field")
    s.add_argument("item_id", metavar="ID")
    s.add_argument("--authority", metavar="LA",
                   help="act for this local authority: its shielded children shown; needs --by")
    s.add_argument("--by", metavar="OPERATOR", help="who looks (audited with --authority)")
    s.set_defaults(func=c.review_show)
    _retention(rs, "empty items decided long ago", "the update and raw content of items"
               " resolved or rejected more than DAYS ago", c.review_purge)
    s = rs.add_parser("resolve", help="an operator's decision: --link, --create or --reject")
    s.add_argument("item_id", metavar="ID")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--link", metavar="CHILD_ID")
    g.add_argument("--create", action="store_true")
    g.add_argument("--reject", action="store_true")
    s.add_argument("--by", required=True, metavar="OPERATOR")
    s.add_argument("--note")
    s.add_argument("--authority", metavar="LA",
                   help="acting for local authority LA: a shielded candidate's own authority"
                        " may --create an open record beside it (anyone else's is shielded"
                        " by that authority, which decides) or --link to an open record"
                        " (refused to anyone else)")
    s.set_defaults(func=c.review_resolve)

    dlq = sub.add_parser("dlq", help="invalid and poison messages")
    ds = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = ds.add_parser("list", help="the dead letters")
    s.add_argument("--json", action="store_true")
    s.add_argument("--reason")
    s.add_argument("--source")
    s.add_argument("--older-than", type=float, metavar="HOURS")
    s.add_argument("--assigned-to", metavar="OPERATOR")
    s.set_defaults(func=c.dlq_list)
    s = ds.add_parser("show", help="one dead letter with its raw content (audited: it may"
                      " hold anything, a shielded child's address included)")
    s.add_argument("item_id", metavar="ID")
    s.add_argument("--by", required=True, metavar="OPERATOR")
    s.add_argument("--reason", required=True, metavar="TEXT", help="why you look (audited)")
    s.set_defaults(func=c.dlq_show)
    for name, helptext in (("retry", "send dead letters through the pipeline again"),
                           ("purge", "delete dead letters (by id, --reason, --all, or age)")):
        s = ds.add_parser(name, help=helptext)
        s.add_argument("item_id", nargs="*", metavar="ID", help="one or more dead letters")
        s.add_argument("--reason")
        s.add_argument("--all", action="store_true", dest="every")
        s.add_argument("--by", default="operator", metavar="OPERATOR")
        if name == "purge":
            s.add_argument("--older-than-days", type=_days, metavar="DAYS",
                           help="retention: purge every dead letter older than this")
        s.set_defaults(func=getattr(c, f"dlq_{name}"))

    outbox = sub.add_parser("outbox", help="notifications written for the relay")
    _retention(outbox.add_subparsers(dest="action", required=True, metavar="ACTION"),
               "delete notifications sent long ago",
               "delete those the broker confirmed more than DAYS ago", c.outbox_purge)
    processed = sub.add_parser("processed", help="the ids of messages processed")
    _retention(processed.add_subparsers(dest="action", required=True, metavar="ACTION"),
               "forget message ids processed long ago",
               "forget those processed more than DAYS ago (1 or more)", c.processed_purge)

    council = sub.add_parser("council", help="councils' notification queues")
    cs = council.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name in ("add", "remove"):
        s = cs.add_parser(name)
        s.add_argument("la", metavar="LA")
        if name == "add":
            s.add_argument("--backfill", action="store_true",
                           help="also send it child.snapshot for every child it would be"
                           " told of now (those in its area, open; those it shields)")
            s.add_argument("--by", default="operator", metavar="OPERATOR")
        s.set_defaults(func=getattr(c, f"council_{name}"))
    s = cs.add_parser("list")
    s.set_defaults(func=c.council_list)

    notes = sub.add_parser("notifications", help="a council's notifications")
    ns = notes.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = ns.add_parser("consume")
    s.add_argument("--council", required=True, metavar="LA")
    s.add_argument("--max", type=_count, default=None, dest="max_count")
    s.add_argument("--idle", type=_seconds, default=2.0,
                   help="stop after this many seconds without a notification")
    s.set_defaults(func=c.notifications_consume)

    source = sub.add_parser("source", help="pause and resume a source")
    ss = source.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, helptext in (("pause", "hold a source's updates, durable, none lost"),
                           ("resume", "process what it holds, then its new updates")):
        s = ss.add_parser(name, help=helptext)
        s.add_argument("name", metavar="NAME", type=_source)
        s.add_argument("--by", default="operator", metavar="OPERATOR")
        s.set_defaults(func=getattr(c, f"source_{name}"))
    s = ss.add_parser("status", help="each source: paused or not, updates held")
    s.set_defaults(func=c.source_status)
    s = ss.add_parser("preview", help="what resuming would do, written nowhere")
    s.add_argument("name", metavar="NAME", type=_source)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=c.source_preview)

    match = sub.add_parser("match", help="the matching model")
    ms = match.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = ms.add_parser("train", help="estimate m and u from the index; store and activate")
    s.add_argument("--sample", type=_count, default=20000)
    s.add_argument("--pairs", type=_count, default=50000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-activate", action="store_true")
    s.set_defaults(func=c.match_train)
    s = ms.add_parser("models", help="stored models")
    s.set_defaults(func=c.match_models)
    s = ms.add_parser("activate", help="make a stored model the one in force")
    s.add_argument("version", metavar="VERSION")
    s.set_defaults(func=c.match_activate)

    s = sub.add_parser("native", help="the matching path compiled with mypyc (hub.native)")
    s.add_argument("action", choices=("build", "check", "clean", "status"), nargs="?",
                   default="status")
    s.set_defaults(func=c.native)

    s = sub.add_parser("console", help="the operators' web console (and /metrics)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0 in a container)")
    s.add_argument("--port", type=int, default=8080)
    s.set_defaults(func=c.console)

    users = sub.add_parser("console-user", help="console logins")
    us = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = us.add_parser("add")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--role", required=True, choices=["operator", "authority", "auditor"])
    s.add_argument("--authority", metavar="LA", help="for an authority operator")
    s.add_argument("--password-file", required=True,
                   help="file holding the password (never on the command line)")
    s.set_defaults(func=c.console_user_add)

    from hub.cli import security as sec

    bu = sub.add_parser("broker-users",
                        help="the broker's vhost, users and permissions (with rabbitmqctl)")
    bs = bu.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, helptext in (("apply", "import a definitions file's access control, then check"),
                           ("check", "compare the broker with a definitions file")):
        s = bs.add_parser(name, help=helptext)
        s.add_argument("file", metavar="FILE", help="RabbitMQ definitions (JSON)")
        s.add_argument("--passwords-dir", metavar="DIR",
                       help="one file per user holding its password (else"
                            " HUB_BROKER_PASSWORD_<USER>, else the file's password_hash)")
        s.add_argument("--node", help="the RabbitMQ node (rabbitmqctl -n)")
        s.set_defaults(func=getattr(sec, f"broker_users_{name}"))

    du = sub.add_parser("db-user", help="database logins in the hub's roles")
    dus = du.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = dus.add_parser("add", help="create or update a login in a role (needs CREATEROLE)")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--role", required=True, choices=["worker", "operator", "reader", "auditor"])
    s.add_argument("--password-file", help="file holding the password (never on the command"
                                           " line); none: for peer, cert or trust auth")
    s.set_defaults(func=sec.db_user_add)
    s = dus.add_parser("remove", help="drop a login made by `db-user add`")
    s.add_argument("name", metavar="NAME")
    s.set_defaults(func=sec.db_user_remove)

    s = sub.add_parser("status", help="the hub at a glance: backlogs, queues, decisions")
    s.add_argument("--prometheus", action="store_true", help="print the metrics text")
    s.set_defaults(func=c.status)

    s = sub.add_parser("eval", help="score the pipeline against a generated population")
    s.add_argument("--children", type=int, default=5000)
    s.add_argument("--seed", type=int, default=11)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--corruption", type=float, default=0.3)
    s.add_argument("--shielded", type=float, default=0.0, metavar="FRACTION",
                   help="share of children shielded (whole families; default none: their"
                   " updates go to a person by design, which would hide the others' figures)")
    s.set_defaults(func=c.evaluate)

    s = sub.add_parser("chaos", help="fault injection: private services, a stream, faults,"
                                      " the exactly-once check (README, Reliability)")
    s.add_argument("--updates", type=int, default=None,
                   help="about how many updates to stream (default 26000; 3500 with --quick)")
    s.add_argument("--quick", action="store_true",
                   help="one RabbitMQ node, a few thousand updates, seven faults")
    s.add_argument("--nodes", type=int, choices=[1, 3], default=None,
                   help="RabbitMQ nodes (default 3; 1 with --quick)")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--rate", type=float, default=None,
                   help="updates/s while faults are injected (default: spread over them)")
    s.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (service data and hub logs)")
    s.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    s.set_defaults(func=c.chaos)

    s = sub.add_parser("bench", help="the hub end to end beside the broker ceiling, in one"
                                      " run: rates, latency, peak memory (bench/README.md)")
    c.bench_arguments(s)
    s.set_defaults(func=c.bench)

    s = sub.add_parser("demo", help="run the hub on a generated national feed and report")
    s.add_argument("--children", type=int, default=3000)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--workers", type=int, default=2)
    s.set_defaults(func=c.demo)
    return p


def _source(value: str) -> str:
    """A source name as an update's `source` must be (schemas.canonical): it names
    the routing key source.NAME and the held queue hub.held.NAME."""
    from schemas.canonical import SOURCE_NAME

    if not SOURCE_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: a letter or digit, then up to 63 letters, digits, '_' or '-'")
    return value


def _format(value: str) -> str:
    from adapters.registry import reader

    try:
        reader(value)
    except KeyError as exc:
        raise argparse.ArgumentTypeError(str(exc.args[0])) from None
    return value


def _components(value: str) -> tuple[str, ...]:
    from workers.runner import COMPONENTS

    parts = tuple(p.strip() for p in value.split(",") if p.strip())
    if not parts or set(parts) - set(COMPONENTS):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(COMPONENTS)}")
    return parts


def _retention(actions: Any, what: str, days_help: str, func: Any) -> None:
    """A `purge --older-than-days DAYS [--by OPERATOR]` action."""
    s = actions.add_parser("purge", help=f"retention: {what}")
    s.add_argument("--older-than-days", type=_days, required=True, metavar="DAYS",
                   help=days_help)
    s.add_argument("--by", default="operator", metavar="OPERATOR")
    s.set_defaults(func=func)


def _whole(least: int) -> Callable[[str], int]:
    """A whole number, `least` or more (`--workers 0` would run nothing and say nothing)."""
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = least - 1
        if n < least:
            raise argparse.ArgumentTypeError(f"{value!r}: a whole number, {least} or more")
        return n
    return parse


def _quantity(unit: str) -> Callable[[str], float]:
    """A number of `unit`, 0 or more (not NaN, not infinite)."""
    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            x = -1.0
        if not 0 <= x < float("inf"):
            raise argparse.ArgumentTypeError(f"{value!r}: a number of {unit}, 0 or more")
        return x
    return parse


_count, _amount = _whole(1), _whole(0)
_seconds, _days = _quantity("seconds"), _quantity("days")


def _la(value: str) -> str:
    if not (value.isascii() and value.isdigit() and len(value) == 3):
        raise UsageError(f"local authority {value!r} must be a three-digit DfE LA number")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    for attr in ("by", "reason", "note", "text"):
        # An audit naming no one, a break-glass for no reason (an independent probe).
        value = getattr(args, attr, None)
        if isinstance(value, str) and not value.strip():
            parser.error(f"--{attr} must not be blank")
    configure("WARNING" if args.command not in ("run", "demo") else "INFO")
    if args.command not in ("run", "console"):
        # A command that ends says what went wrong in its own one line; the broker
        # client's records of the same failure (aiormq logs a refused connection
        # as an error) would be more lines, in JSON. Services log them.
        for name in ("aiormq", "aio_pika"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    func: Callable[[Any, Settings], Coroutine[Any, Any, int | None]] = args.func
    try:
        for attr in ("authority", "la", "council"):
            if isinstance(getattr(args, attr, None), str):
                setattr(args, attr, _la(getattr(args, attr)))
        settings = Settings.from_env()
        code = hub_loop.run(func(args, settings)) or 0
        sys.stdout.flush()  # here, where a closed pipe is answered (below)
        return code
    except UsageError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2
    except (OperationError, ConfigError) as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Its reader went away (`hub export | head`): not a service. Whatever was not
        # printed was not taken (a council's notification is acknowledged only once
        # printed). Python's own flush of stdout at exit would fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("hub: stopped: its output was closed before it had written everything",
              file=sys.stderr)
        return 1
    except (OSError, socket.gaierror, aiormq.exceptions.AMQPConnectionError) as exc:
        print(f"hub: cannot reach a service: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:
        print(f"hub: database error: {type(exc).__name__}: {exc.args[0] if exc.args else ''}",
              file=sys.stderr)
        return 1
    except (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError) as exc:
        # The connection went in the middle of a command (the server restarted, an
        # administrator ended the session): the driver says so in its own terms. What
        # the command had not committed was not done (an independent probe had
        # tracebacks from export, shield, unshield and dlq retry).
        print(f"hub: the database connection was lost during the command"
              f" ({type(exc).__name__}); what it had not committed was not done",
              file=sys.stderr)
        return 1
    except aiormq.exceptions.InvalidFrameError as exc:
        if "Connection.Close" not in str(exc):
            print(f"hub: broker error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        # The broker closed the connection as it opened (its frame is not kept).
        print("hub: cannot reach a service: the broker closed the connection as it opened"
              " (is the vhost in HUB_AMQP_URL there, and may this login use it?)",
              file=sys.stderr)
        return 1
    except aiormq.exceptions.AMQPError as exc:
        print(f"hub: broker error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
