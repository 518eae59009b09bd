"""The operator console: an aiohttp application of server-rendered pages.

    build_app(settings) -> aiohttp.web.Application
    serve(settings, host, port)                    # runs until cancelled

Environment: HUB_CONSOLE_SECRET signs session cookies (without it a secret is
generated per process, so sessions end when the console restarts).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from urllib.parse import quote

import aio_pika
import asyncpg
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from hub import operations as ops
from hub.config import Settings
from hub.console import actions
from hub.console.html import age, csrf_field, e, page, ts
from hub.console.review import ItemView, item_view
from hub.console.session import COOKIE, LIFETIME, LOGIN_COOKIE, Session, Signer, secret_from_env
from hub.console.svg import waterfall
from hub.console.users import User, authenticate, get_user
from hub.db.connect import pool as db_pool
from hub.operations import OperationError
from hub.shielding import Shield, candidates_for_audience, listed_update_hidden

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
SIGNER = web.AppKey("signer", Signer)
PUBLIC = {"/login", "/metrics", "/favicon.ico"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- plumbing ----------------------------------------------------------------------

# The logged-in user and session of the request being handled (set by _security;
# each request runs in its own task, so its own context).
_CURRENT: ContextVar[tuple[User, Session] | None] = ContextVar("hub_console_user", default=None)


def _user(request: web.Request) -> User:
    current = _CURRENT.get()
    if current is None:
        raise web.HTTPForbidden(text="log in first")
    return current[0]


def _csrf(request: web.Request) -> str:
    current = _CURRENT.get()
    return request.app[SIGNER].csrf(current[1]) if current else ""


def _html(request: web.Request, title: str, body: str, status: int = 200,
          error: str | None = None) -> web.Response:
    current = _CURRENT.get()
    user = current[0] if current else None
    text = page(title, body, user, _csrf(request) if user else "",
                flash=request.query.get("msg"), error=error)
    return web.Response(text=text, content_type="text/html", status=status)


def _back(path: str, msg: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path}?msg={quote(msg)}")


@asynccontextmanager
async def _broker(s: Settings) -> AsyncIterator[AbstractRobustConnection]:
    amqp = await aio_pika.connect_robust(s.amqp_url, timeout=10)
    try:
        yield amqp
    finally:
        await amqp.close()


@web.middleware
async def _security(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in PUBLIC:
        signer = request.app[SIGNER]
        session = signer.read(request.cookies.get(COOKIE))
        user = await get_user(request.app[POOL], session.name) if session else None
        if session is None or user is None:
            if request.method == "GET":
                raise web.HTTPSeeOther("/login")
            raise web.HTTPForbidden(text="log in first")
        _CURRENT.set((user, session))
        if request.method == "POST":
            form = await request.post()
            token = form.get("csrf")
            if not signer.check_csrf(session, token if isinstance(token, str) else None):
                raise web.HTTPForbidden(text="missing or stale form token: reload the page")
            if not user.can_act:
                raise web.HTTPForbidden(text="auditors have read-only access")
    try:
        response = await handler(request)
    except OperationError as exc:
        response = _html(request, "Could not do that", "", status=400, error=str(exc))
    return response


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:;"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"


# -- login -------------------------------------------------------------------------

def _login_page(token: str, error: str | None = None, status: int = 200) -> web.Response:
    body = (
        '<form method="post" action="/login">'
        f'<input type="hidden" name="login_csrf" value="{e(token)}">'
        '<label>Name <input name="name" autocomplete="username" required autofocus></label>'
        '<label>Password <input name="password" type="password"'
        ' autocomplete="current-password" required></label>'
        '<p><button>Log in</button></p></form>'
    )
    resp = web.Response(text=page("Log in", body, error=error), content_type="text/html",
                        status=status)
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", max_age=3600)
    return resp


async def login_form(request: web.Request) -> web.Response:
    # Reuse the pending token: another tab (or the favicon) must not expire this form.
    token = request.cookies.get(LOGIN_COOKIE)
    valid = token is not None and 20 <= len(token) <= 64 and token.replace("-", "").replace(
        "_", "").isalnum()
    return _login_page(token if valid and token else secrets.token_urlsafe(24))


async def favicon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    token = request.cookies.get(LOGIN_COOKIE)
    if not token or form.get("login_csrf") != token:
        return _login_page(secrets.token_urlsafe(24), "The form expired: try again.", 403)
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    pool = request.app[POOL]
    user = await authenticate(pool, name, password)
    async with pool.acquire() as conn:
        if user is None:
            await ops.audit(conn, name[:100] or "-", "console.login_failed", None, None, {})
            return _login_page(secrets.token_urlsafe(24), "Unknown name or wrong password.", 401)
        await ops.audit(conn, user.name, "console.login", None, None, {"role": user.role})
    resp = web.Response(status=303, headers={"Location": "/review"})
    resp.set_cookie(COOKIE, request.app[SIGNER].issue(user.name), httponly=True,
                    samesite="Strict", max_age=LIFETIME)
    resp.del_cookie(LOGIN_COOKIE)
    return resp


async def logout(request: web.Request) -> web.Response:
    await ops_audit(request, "console.logout")
    resp = web.Response(status=303, headers={"Location": "/login"})
    resp.del_cookie(COOKIE)
    return resp


async def ops_audit(request: web.Request, action: str) -> None:
    async with request.app[POOL].acquire() as conn:
        await ops.audit(conn, _user(request).name, action, None, None, {})


async def index(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/review")


# -- review ------------------------------------------------------------------------

def _top_score(r: asyncpg.Record, shields: dict[str, Shield], acting: str | None) -> str:
    shown = candidates_for_audience(
        r["candidates"] or [], shields, acting,
        listed_update_hidden(r["update"], shields, acting, r["reason"]), r["reason"])
    scores = [c["score"] for c in shown if c.get("score") is not None]
    return f"{max(scores):.4f}" if scores else "-"


async def review_queue(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await ops.list_parked(conn, "review", None)
        shields = await ops.candidate_shields(conn, rows)
    acting = _user(request).acting_for
    now = datetime.now(UTC)
    groups: dict[str, list[asyncpg.Record]] = {}
    for r in rows:  # oldest first
        groups.setdefault(r["reason"], []).append(r)
    order = sorted(groups, key=lambda k: groups[k][0]["received_at"])
    if not rows:
        return _html(request, "Review queue", "<p>Nothing awaits review.</p>")
    body = [f"<p>{len(rows)} awaiting review, oldest first.</p>",
            '<table class="summary"><tr><th>reason</th><th class=num>open</th>'
            "<th>oldest</th></tr>"]
    for reason in order:
        body.append(f'<tr><td><a href="#{e(reason)}">{e(reason)}</a></td>'
                    f'<td class=num>{len(groups[reason])}</td>'
                    f'<td>{age(groups[reason][0]["received_at"], now)}</td></tr>')
    body.append("</table>")
    for reason in order:
        body.append(f'<h2 id="{e(reason)}">{e(reason)} ({len(groups[reason])})</h2>'
                    "<table><tr><th>item</th><th>age</th><th>received</th><th>source record</th>"
                    "<th class=num>candidates</th><th class=num>top score</th></tr>")
        for r in groups[reason]:
            body.append(
                f'<tr><td><a href="/review/{e(r["id"])}">{e(str(r["id"])[:8])}</a></td>'
                f"<td>{age(r['received_at'], now)}</td><td>{ts(r['received_at'])}</td>"
                f"<td>{e(r['source'])}/{e(r['source_record_id'])}</td>"
                f"<td class=num>{len(r['candidates'] or [])}</td>"
                f"<td class=num>{_top_score(r, shields, acting)}</td></tr>")
        body.append("</table>")
    return _html(request, "Review queue", "".join(body))


async def _item(conn: asyncpg.Connection, item_id: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM parked WHERE id = $1 AND kind = 'review'",
                              ops._uuid(item_id, "item"))
    if row is None:
        raise web.HTTPNotFound(text=f"no review item {item_id}")
    return row


def _candidate_html(view: ItemView, s: Settings) -> str:
    out = []
    for i, c in enumerate(view.candidates, 1):
        flag = ""
        if c.shielded:
            flag = (f' <span class="shielded">SHIELDED — contact the shielding authority'
                    f' {e(c.authority)}</span>')
        score = "-" if c.score is None else f"{c.score:.4f}"
        ident = "" if c.identity_score is None else f", identity score {c.identity_score:.4f}"
        out.append(f'<section class="candidate"><h2>Candidate {i}: {e(c.child_id)}{flag}</h2>')
        if not c.present:
            out.append("<p>No longer in the index.</p></section>")
            continue
        if c.address_withheld:
            out.append(f'<p class="muted">identity score {score} (names, date of birth, sex;'
                       " how the address compares with the update's is withheld: shielded),"
                       f" model {e(c.model_version or '-')}</p>")
        else:
            out.append(f'<p class="muted">match probability {score}{ident},'
                       f" model {e(c.model_version or '-')}</p>")
        out.append("<table><tr><th>field</th><th>update</th><th>candidate</th><th>level</th>"
                   "<th class=num>weight</th></tr>")
        for row in c.rows:
            ucls = ' class="hidden"' if row.update_hidden else ""
            ccls = ' class="hidden"' if row.candidate_hidden else ""
            weight = "" if row.weight is None else f"{row.weight:+.2f}"
            out.append(f"<tr><th>{e(row.field)}</th><td{ucls}>{e(row.update)}</td>"
                       f"<td{ccls}>{e(row.candidate)}</td><td>{e(row.level or '')}</td>"
                       f"<td class=num>{weight}</td></tr>")
        out.append("</table>")
        if c.weights and c.prior is not None:
            out.append("<h3>How the score adds up (log2 odds)"
                       + (", address fields withheld" if c.address_withheld else "") + "</h3>")
            out.append(waterfall(c.prior, c.weights, s.thresholds.link, s.thresholds.review))
        out.append("</section>")
    if not view.candidates:
        out.append("<p>No candidates.</p>")
    return "".join(out)


def _resolve_form(view: ItemView, csrf: str) -> str:
    item = view.item
    opts = []
    for i, c in enumerate(view.candidates, 1):
        if c.present:
            opts.append(f'<label><input type="radio" name="decision" value="link:{e(c.child_id)}">'
                        f" Link to candidate {i} ({e(c.child_id)})</label>")
    warn = (" <strong>— a shielded child is a candidate: a new record may duplicate it"
            "</strong>" if view.any_shielded else "")
    opts.append(f'<label><input type="radio" name="decision" value="create">'
                f" Create a new child{warn}</label>")
    opts.append('<label><input type="radio" name="decision" value="reject" checked>'
                " Reject: not a match for any candidate</label>")
    return (f'<form method="post" action="/review/{e(item["id"])}/resolve"><fieldset>'
            f"<legend>Resolve</legend>{csrf_field(csrf)}{''.join(opts)}"
            '<label>Note <br><textarea name="note" required></textarea></label>'
            "<p><button>Resolve</button></p></fieldset></form>")


async def review_item(request: web.Request) -> web.Response:
    user = _user(request)
    pool = request.app[POOL]
    async with pool.acquire() as conn:
        row = await _item(conn, request.match_info["item_id"])
        view = await item_view(conn, row, user)
        if view.protected_shown:
            await ops.audit(conn, user.name, "console.review.view_protected", None,
                            str(row["id"]), {"authority": user.acting_for})
    head = (f"<p>reason <strong>{e(row['reason'])}</strong> · status {e(row['status'])}"
            f" · source record {e(row['source'])}/{e(row['source_record_id'])}"
            f" (version {e(row['source_version'])}) · received {ts(row['received_at'])}"
            f" ({age(row['received_at'])} ago)</p>")
    if row["status"] != "open":
        head += (f"<p>{e(row['status'])} by {e(row['resolved_by'])} at "
                 f"{ts(row['resolved_at'])}: {e(row['resolution'])} — {e(row['note'])}</p>")
    body = head + _candidate_html(view, request.app[SETTINGS])
    if view.may_resolve:
        body += _resolve_form(view, _csrf(request))
    elif row["status"] == "open":
        why = ("read-only: auditors cannot change anything" if user.role == "auditor"
               else "only an operator, or the shielding authority, resolves this item")
        body += f'<p class="readonly">{e(why)}</p>'
    return _html(request, f"Review item {str(row['id'])[:8]}", body)


async def review_resolve(request: web.Request) -> web.Response:
    user = _user(request)
    form = await request.post()
    decision = str(form.get("decision", ""))
    note = str(form.get("note", "")).strip() or None
    action, _, child_id = decision.partition(":")
    if action not in ("link", "create", "reject") or (action == "link") != bool(child_id):
        raise OperationError("choose link to a candidate, create or reject")
    pool = request.app[POOL]
    item_id = request.match_info["item_id"]
    async with pool.acquire() as conn:
        row = await _item(conn, item_id)
        view = await item_view(conn, row, user)
        if not view.may_resolve:
            raise web.HTTPForbidden(text="you may not resolve this item")
        if action == "link" and child_id not in {c.child_id for c in view.candidates}:
            raise OperationError("link only to one of the item's candidates")
        done = await ops.resolve(conn, item_id, action, child_id or None, user.name, note,
                                 request.app[SETTINGS].thresholds, user.acting_for)
    raise _back("/review", f"resolved {item_id[:8]}: {action}"
                + (f" -> {done.child_id}" if done.child_id else "")
                + (f" (now shielded: {done.why})" if done.shielded else "")
                + (f" ({ops.KEPT_NOTE})" if done.kept else ""))


# -- dead letters ------------------------------------------------------------------

async def dlq(request: web.Request) -> web.Response:
    user = _user(request)
    async with request.app[POOL].acquire() as conn:
        rows = await ops.list_parked(conn, "dead", None)
    csrf = _csrf(request)
    now = datetime.now(UTC)
    counts = Counter(r["reason"] for r in rows)
    act = user.is_operator

    def button(label: str, **fields: str) -> str:
        if not act:
            return ""
        hidden = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
                         for k, v in fields.items())
        return (f'<form class="inline" method="post" action="/dlq/retry">{csrf_field(csrf)}'
                f"{hidden}<button>{e(label)}</button></form>")

    if not rows:
        return _html(request, "Dead letters", "<p>No open dead letters.</p>")
    body = [f"<p>{len(rows)} dead letter{'s' if len(rows) != 1 else ''}.</p>" + (
        "" if act else '<p class="readonly">Retrying is for operators.</p>'),
        "<table><tr><th>reason</th><th class=num>open</th><th></th></tr>"]
    for reason, n in sorted(counts.items()):
        body.append(f"<tr><td>{e(reason)}</td><td class=num>{n}</td>"
                    f"<td>{button(f'Retry all {n}', reason=reason)}</td></tr>")
    body.append("</table><table><tr><th>item</th><th>age</th><th>reason</th>"
                "<th>source record</th><th>error</th><th class=num>attempts</th><th></th></tr>")
    for r in rows:
        body.append(f"<tr><td>{e(str(r['id'])[:8])}</td><td>{age(r['received_at'], now)}</td>"
                    f"<td>{e(r['reason'])}</td><td>{e(r['source'])}/{e(r['source_record_id'])}"
                    f"</td><td>{e(r['error'])}</td><td class=num>{r['attempts']}</td>"
                    f"<td>{button('Retry', item_id=str(r['id']))}</td></tr>")
    body.append("</table>")
    return _html(request, "Dead letters", "".join(body))


async def dlq_retry(request: web.Request) -> web.Response:
    user = _user(request)
    if not user.is_operator:
        raise web.HTTPForbidden(text="retrying dead letters is for operators")
    form = await request.post()
    item_id = str(form.get("item_id", "")) or None
    reason = str(form.get("reason", "")) or None
    s = request.app[SETTINGS]
    async with request.app[POOL].acquire() as conn:
        rows = await ops.select_dead(conn, item_id, reason, False)
        async with _broker(s) as amqp:
            retried, skipped = await actions.retry_dead(conn, amqp, rows, user.name)
    reasons = "; ".join(sorted({why for _, why in skipped}))
    msg = f"retried {retried}" + (f"; cannot retry {len(skipped)} ({reasons})"
                                  if skipped else "")
    raise _back("/dlq", msg)


# -- sources -----------------------------------------------------------------------

async def sources(request: web.Request, preview_html: str = "") -> web.Response:
    user = _user(request)
    s = request.app[SETTINGS]
    broker_note = ""
    async with request.app[POOL].acquire() as conn:
        try:
            async with _broker(s) as amqp:
                status = await actions.source_status(conn, amqp)
        except (OSError, aio_pika.exceptions.AMQPError):
            status = await actions.source_status(conn, None)
            broker_note = '<p class="error">The broker did not answer: held counts unknown.</p>'
    csrf = _csrf(request)

    def button(name: str, what: str) -> str:
        return (f'<form class="inline" method="post" action="/sources/{quote(name, safe="")}/'
                f'{what}">{csrf_field(csrf)}<button>{what.capitalize()}</button></form>')

    rows = []
    for st in status:
        btns = ""
        if user.is_operator:
            btns = (button(st["name"], "resume") + " " + button(st["name"], "preview")
                    if st["paused"] else button(st["name"], "pause"))
        held = "-" if st["held"] is None else str(st["held"])
        rows.append(f"<tr><td>{e(st['name'])}</td>"
                    f"<td>{'paused' if st['paused'] else 'running'}</td>"
                    f"<td class=num>{held}</td><td class=num>{st['linked']}</td>"
                    f"<td>{e(st['changed_by'] or '-')}</td><td>{ts(st['changed_at'])}</td>"
                    f"<td>{btns}</td></tr>")
    body = broker_note + preview_html
    body += ("<table><tr><th>source</th><th>state</th><th class=num>held</th>"
             "<th class=num>records linked</th><th>changed by</th><th>changed at</th><th></th>"
             "</tr>" + "".join(rows) + "</table>") if rows else "<p>No sources yet.</p>"
    if user.is_operator:
        body += ('<form method="post" action="/sources/pause">'
                 f"{csrf_field(csrf)}<label>Pause a source by name <input name=name required>"
                 " <button>Pause</button></label></form>")
    return _html(request, "Sources", body)


async def sources_page(request: web.Request) -> web.Response:
    return await sources(request)


def _operator(request: web.Request) -> User:
    user = _user(request)
    if not user.is_operator:
        raise web.HTTPForbidden(text="sources are paused and resumed by operators")
    return user


async def source_pause(request: web.Request) -> web.Response:
    user = _operator(request)
    form = await request.post()
    name = request.match_info.get("name") or str(form.get("name", "")).strip()
    if not name:
        raise OperationError("which source?")
    async with request.app[POOL].acquire() as conn, _broker(request.app[SETTINGS]) as amqp:
        await actions.pause(conn, amqp, name, user.name)
    raise _back("/sources", f"source {name} paused: its updates are held")


async def source_resume(request: web.Request) -> web.Response:
    user = _operator(request)
    name = request.match_info["name"]
    async with request.app[POOL].acquire() as conn:
        await actions.resume(conn, name, user.name)
    raise _back("/sources", f"source {name} resumed: held updates go back to the pipeline")


async def source_preview(request: web.Request) -> web.Response:
    from hub.preview import preview

    user = _operator(request)
    name = request.match_info["name"]
    result = await preview(request.app[SETTINGS], name)
    async with request.app[POOL].acquire() as conn:
        await ops.audit(conn, user.name, "source.preview", None, name,
                        {"held": result.held, "via": "console"})
    rows = "".join(f"<tr><td>{e(k)}</td><td class=num>{v}</td></tr>"
                   for k, v in sorted(result.reasons.items()))
    html = (f"<fieldset><legend>Preview of resuming {e(name)}</legend>"
            f"<p>{result.held} held; {result.touching_shielded} touch shielded records."
            " Nothing was written.</p>"
            f"<table><tr><th>outcome</th><th class=num>updates</th></tr>{rows}</table>"
            "</fieldset>")
    return await sources(request, html)


# -- metrics -----------------------------------------------------------------------

async def metrics(request: web.Request) -> web.Response:
    from hub import metrics as m

    snap = m.Snapshot()
    async with request.app[POOL].acquire() as conn:
        await m.gather_db(conn, snap)
    await m.gather_broker(request.app[SETTINGS].amqp_url, snap)
    return web.Response(text=m.render(snap), content_type="text/plain",
                        headers={"X-Content-Type-Options": "nosniff"}, charset="utf-8")


# -- the application ---------------------------------------------------------------

def build_app(settings: Settings, secret: bytes | None = None) -> web.Application:
    app = web.Application(middlewares=[_security], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[SIGNER] = Signer(secret or secret_from_env())

    async def db(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = await db_pool(settings.database_url, size=8)
        yield
        await app[POOL].close()

    app.cleanup_ctx.append(db)
    app.on_response_prepare.append(_headers)
    app.add_routes([
        web.get("/", index),
        web.get("/login", login_form),
        web.get("/favicon.ico", favicon),
        web.post("/login", login),
        web.post("/logout", logout),
        web.get("/review", review_queue),
        web.get("/review/{item_id}", review_item),
        web.post("/review/{item_id}/resolve", review_resolve),
        web.get("/dlq", dlq),
        web.post("/dlq/retry", dlq_retry),
        web.get("/sources", sources_page),
        web.post("/sources/pause", source_pause),
        web.post("/sources/{name}/pause", source_pause),
        web.post("/sources/{name}/resume", source_resume),
        web.post("/sources/{name}/preview", source_preview),
        web.get("/metrics", metrics),
    ])
    return app


async def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the console until cancelled (SIGTERM/SIGINT handling is the caller's)."""
    runner = web.AppRunner(build_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


__all__ = ["build_app", "serve"]


