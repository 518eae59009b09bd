"""Plain server-rendered HTML: escaping, the page frame, small helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from hub.console.users import User

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1d;background:#fafafa}
header{background:#263238;color:#fff;padding:.6em 1.2em;display:flex;gap:1.4em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header .who{margin-left:auto;font-weight:400;display:flex;gap:.8em;align-items:center}
header form{margin:0}
main{padding:1em 1.4em;max-width:1200px}
h1{font-size:1.35em;margin:.3em 0 .6em}
h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.4em 0 1em;background:#fff}
th,td{border:1px solid #ccd;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#eceff1}
td.num,th.num{text-align:right}
.hidden{color:#8d6e63;font-style:italic}
.shielded{background:#fff3e0;border:1px solid #ef6c00;color:#e65100;padding:.1em .45em;
  border-radius:3px;font-weight:600}
.flash{background:#e8f5e9;border:1px solid #81c784;padding:.5em .8em;margin-bottom:1em}
.error{background:#ffebee;border:1px solid #e57373;padding:.5em .8em;margin-bottom:1em}
.readonly{color:#555;font-style:italic}
.candidate{border:1px solid #cfd8dc;background:#fff;padding:.4em 1em .8em;margin:1em 0}
.muted{color:#666}
button{font:inherit;padding:.2em .8em;cursor:pointer}
textarea{font:inherit;width:32em;height:3.5em}
fieldset{border:1px solid #cfd8dc;background:#fff;margin:1em 0}
label{display:block;margin:.2em 0}
.inline{display:inline;margin:0}
"""


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def age(since: datetime, now: datetime | None = None) -> str:
    seconds = int(((now or datetime.now(UTC)) - since).total_seconds())
    seconds = max(seconds, 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def ts(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{e(token)}">'


def page(title: str, body: str, user: User | None = None, csrf: str = "",
         flash: str | None = None, error: str | None = None) -> str:
    nav = ""
    if user is not None:
        role = user.role + (f" {user.authority}" if user.authority else "")
        nav = (
            '<a href="/review">Review queue</a><a href="/dlq">Dead letters</a>'
            '<a href="/sources">Sources</a><a href="/metrics">Metrics</a>'
            f'<span class="who">{e(user.name)} ({e(role)})'
            f'<form class="inline" method="post" action="/logout">{csrf_field(csrf)}'
            '<button>Log out</button></form></span>'
        )
    notes = ""
    if flash:
        notes += f'<div class="flash">{e(flash)}</div>'
    if error:
        notes += f'<div class="error">{e(error)}</div>'
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{e(title)} · hub console</title><style>{STYLE}</style></head><body>"
        f"<header><span>hub console</span>{nav}</header>"
        f"<main><h1>{e(title)}</h1>{notes}{body}</main></body></html>"
    )
