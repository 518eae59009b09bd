"""The operator console over HTTP against the real stack, and once in headless Chromium.

Data is seeded with the real CLI and a running hub: a shielded child, a central-feed
update about it from a refuge (a `shielded_candidate` review item) and an invalid
record (a dead letter)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.config import Settings
from hub.console.app import build_app
from hub.console.users import add_user
from tests.factories import moved, update
from tests.helpers import HubProcess, hub, jsonl, write_jsonl

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("/tmp/console-shots")
# What the operator must never see: the shielded child's address and carer, and the
# refuge address the central feed sent.
PROTECTED = ["12 Orchard Row", "LS6 1AA", "Rowan Quenby", "07700 900111",
             "3 Harbour Lane", "B5 7QQ"]
HIDDEN = "[hidden: shielded — contact the shielding authority 383]"


@pytest.fixture
def seeded(hub_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    env = hub_env
    hub(env, "setup")
    proc = HubProcess(env, log=tmp_path / "hub.log")
    try:
        def publish(source: str, *updates: dict) -> None:
            path = write_jsonl(tmp_path / f"{source}-{len(list(tmp_path.iterdir()))}.jsonl",
                               list(updates))
            hub(env, "publish", "--source", source, "--format", "jsonl", str(path))
            hub(env, "wait", "--timeout", "60")

        publish("la", update("la", "LA-1"))
        cid = jsonl(hub(env, "export").stdout)[0]["child_id"]
        hub(env, "shield", cid, "--authority", "383", "--by", "la-officer", "--reason", "refuge")
        bad = update("dwp", "CB-9", nhs_number=None, given_name="Ada")
        bad["child"]["date_of_birth"] = "2015-02-30"
        publish("dwp", moved(update("dwp", "CB-1", nhs_number=None, given_name="Marigld")), bad)
        env["CHILD_ID"] = cid
        yield env
    finally:
        assert proc.stop() == 0, (tmp_path / "hub.log").read_text()


@pytest.fixture
async def users(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await add_user(conn, "olu", "operator", "operator-pass")
        await add_user(conn, "leeds-mgr", "authority", "authority-pass", authority="383")
        await add_user(conn, "brum-mgr", "authority", "authority-pass", authority="330")
        await add_user(conn, "aud", "auditor", "auditor-pass")
    finally:
        await conn.close()


@pytest.fixture
async def client(settings: Settings, users: None) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_app(settings, secret=b"t" * 32))) as c:
        yield c


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


async def login(client: TestClient, name: str, password: str) -> str:
    """Log in afresh as `name`; return a CSRF token for that session."""
    client.session.cookie_jar.clear()
    form = await (await client.get("/login")).text()
    token = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert token
    resp = await client.post("/login", data={"name": name, "password": password,
                                             "login_csrf": token.group(1)})
    assert resp.status == 200 and resp.url.path == "/review", await resp.text()
    return _csrf(await resp.text())


async def _audit(settings: Settings, action: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch("SELECT * FROM audit_log WHERE action = $1 ORDER BY id", action)
    finally:
        await conn.close()


async def _parked(settings: Settings, item_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetchrow("SELECT * FROM parked WHERE id = $1::uuid", item_id)
    finally:
        await conn.close()


async def test_console_over_http(seeded: dict[str, str], settings: Settings,
                                 client: TestClient) -> None:
    env = seeded
    item = jsonl(hub(env, "review", "list", "--json").stdout)
    assert [i["reason"] for i in item] == ["shielded_candidate"]
    item_id = item[0]["id"]

    # Nothing without logging in (but /metrics), and no wrong passwords.
    resp = await client.get("/review", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert (await client.post(f"/review/{item_id}/resolve", data={})).status == 403
    client.session.cookie_jar.clear()
    form = await (await client.get("/login")).text()
    token = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert token
    bad = await client.post("/login", data={"name": "olu", "password": "wrong-pass",
                                            "login_csrf": token.group(1)})
    assert bad.status == 401
    assert len(await _audit(settings, "console.login_failed")) == 1

    # An operator: the queue, and an item page without any protected data.
    await login(client, "olu", "operator-pass")
    queue = await (await client.get("/review")).text()
    assert "shielded_candidate" in queue and item_id[:8] in queue
    assert re.search(r"shielded_candidate</a></td><td class=num>1</td>", queue)
    page = await (await client.get(f"/review/{item_id}")).text()
    assert "SHIELDED" in page and HIDDEN in page and "<svg" in page
    assert "Quenby" in page  # the visible fields: names are not protected
    for value in PROTECTED:
        assert value not in page, value
    # Nor how her address compares with the update's: no address levels or weights,
    # and the identity score in place of the match probability, here and in the queue.
    assert "<th>postcode</th>" not in page and "postcode (" not in page
    assert "address fields withheld" in page and "match probability" not in page
    stored = json.loads((await _parked(settings, item_id))["candidates"])[0]
    assert f"identity score {stored['identity_score']:.4f}" in page
    assert f"<td class=num>{stored['identity_score']:.4f}</td>" in queue
    assert stored["identity_score"] != stored["score"]
    # Another authority is no one special.
    await login(client, "brum-mgr", "authority-pass")
    page = await (await client.get(f"/review/{item_id}")).text()
    assert HIDDEN in page and all(v not in page for v in PROTECTED)
    assert 'action="/review/' not in page  # not its child: no resolve form
    # The shielding authority sees it all, and that view is audited.
    await login(client, "leeds-mgr", "authority-pass")
    page = await (await client.get(f"/review/{item_id}")).text()
    assert HIDDEN not in page and all(v in page for v in PROTECTED)
    assert "<th>postcode</th>" in page and f"match probability {stored['score']:.4f}" in page
    viewed = await _audit(settings, "console.review.view_protected")
    assert [(r["actor"], r["subject"]) for r in viewed] == [("leeds-mgr", item_id)]

    # The auditor reads, and cannot POST anything.
    token = await login(client, "aud", "auditor-pass")
    page = await (await client.get(f"/review/{item_id}")).text()
    assert "read-only" in page and 'name="decision"' not in page
    assert all(v not in page for v in PROTECTED)
    for path, data in [(f"/review/{item_id}/resolve", {"decision": "reject", "note": "x"}),
                       ("/dlq/retry", {"reason": "invalid_date_of_birth"}),
                       ("/sources/dwp/pause", {})]:
        resp = await client.post(path, data={**data, "csrf": token})
        assert resp.status == 403, path
    dlq_page = await (await client.get("/dlq")).text()
    assert "invalid_date_of_birth" in dlq_page and "<button>Retry" not in dlq_page

    # The operator resolves: CSRF is checked, the decision is applied and audited.
    token = await login(client, "olu", "operator-pass")
    resp = await client.post(f"/review/{item_id}/resolve",
                             data={"decision": f"link:{env['CHILD_ID']}", "note": "same child"})
    assert resp.status == 403  # no token
    resp = await client.post(f"/review/{item_id}/resolve",
                             data={"decision": f"link:{env['CHILD_ID']}", "note": "same child",
                                   "csrf": token})
    assert resp.status == 200 and "resolved" in await resp.text()
    assert jsonl(hub(env, "review", "list", "--json").stdout) == []
    linked = await _audit(settings, "review.link")
    assert [(r["actor"], r["subject"], r["detail"]) for r in linked] == [
        ("olu", item_id, '{"note": "same child", "reason": "shielded_candidate"}')]
    again = await client.post(f"/review/{item_id}/resolve",
                              data={"decision": "reject", "note": "x", "csrf": token})
    assert again.status in (400, 403)
    exported = jsonl(hub(env, "export").stdout)
    assert len(exported) == 1 and exported[0]["shielded"] is True

    # Dead letters: counts, and a retry republishes (it fails again, a new dead letter).
    dead = jsonl(hub(env, "dlq", "list", "--json").stdout)
    assert [d["reason"] for d in dead] == ["invalid_date_of_birth"]
    dlq_page = await (await client.get("/dlq")).text()
    assert "invalid_date_of_birth" in dlq_page and "Retry all 1" in dlq_page
    resp = await client.post("/dlq/retry", data={"item_id": dead[0]["id"], "csrf": token})
    assert resp.status == 200 and "retried 1" in await resp.text()
    hub(env, "wait", "--timeout", "60")
    again_dead = jsonl(hub(env, "dlq", "list", "--json").stdout)
    assert len(again_dead) == 1 and again_dead[0]["id"] != dead[0]["id"]
    assert [r["actor"] for r in await _audit(settings, "dlq.retry")] == ["olu"]

    # Sources: pause, status, resume, all audited with the operator's name.
    resp = await client.post("/sources/dwp/pause", data={"csrf": token})
    assert resp.status == 200 and "paused" in await resp.text()
    assert "dwp: paused" in hub(env, "source", "status").stdout
    resp = await client.post("/sources/dwp/preview", data={"csrf": token})
    assert resp.status == 200 and "0 held" in await resp.text()
    resp = await client.post("/sources/dwp/resume", data={"csrf": token})
    assert resp.status == 200 and "resumed" in await resp.text()
    assert "dwp: running" in hub(env, "source", "status").stdout
    for action in ("source.pause", "source.preview", "source.resume"):
        assert [r["actor"] for r in await _audit(settings, action)] == ["olu"], action

    # Metrics, without logging in.
    client.session.cookie_jar.clear()
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    lines = set(text.splitlines())
    assert "# TYPE hub_updates_total counter" in lines
    assert 'hub_updates_total{source="la",decision="create"} 1' in lines
    assert 'hub_updates_total{source="dwp",decision="review"} 1' in lines
    # The record the adapter rejected at publish never reached the pipeline; its retry did.
    assert 'hub_updates_total{source="dwp",decision="dead"} 1' in lines
    assert 'hub_dead_letters{reason="invalid_date_of_birth"} 1' in lines
    assert not any(x.startswith("hub_review_backlog{") for x in lines)
    assert 'hub_queue_depth{queue="hub.inbound"} 0' in lines
    assert "hub_broker_up 1" in lines
    assert re.search(r"^hub_outbox_pending \d+$", text, re.M)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Chromium must be there: this test fails (never skips) without it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium"
                    " (and .venv/bin/pip install playwright; never `playwright install`)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "shots"
    out.mkdir()
    return out


async def test_console_in_headless_chromium(shots: Path, seeded: dict[str, str],
                                            settings: Settings, users: None) -> None:
    from playwright.async_api import async_playwright

    env = seeded
    item_id = jsonl(hub(env, "review", "list", "--json").stdout)[0]["id"]
    runner = web.AppRunner(build_app(settings, secret=b"c" * 32))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", "--no-first-run"])
            try:
                ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await ctx.new_page()

                async def shot(name: str) -> None:
                    path = shots / f"{name}.png"
                    await page.screenshot(path=str(path), full_page=True)
                    shutil.copy(path, SHOTS / path.name)

                await page.goto(f"{base}/review")
                assert page.url.endswith("/login")
                await page.fill("input[name=name]", "olu")
                await page.fill("input[name=password]", "operator-pass")
                await shot("01-login")
                await page.click("button:has-text('Log in')")
                await page.wait_for_url(f"{base}/review")
                assert "shielded_candidate" in await page.content()
                await shot("02-review-queue")

                await page.click(f"a[href='/review/{item_id}']")
                await page.wait_for_url(f"{base}/review/{item_id}")
                html = await page.content()
                assert "[hidden: shielded" in html and "12 Orchard Row" not in html
                assert await page.locator("svg.waterfall").count() == 1
                await shot("03-review-item")

                await page.check(f"input[value='link:{env['CHILD_ID']}']")
                await page.fill("textarea[name=note]", "same child, confirmed by phone")
                await page.click("button:has-text('Resolve')")
                await page.wait_for_url(re.compile(r".*/review\?msg=.*"))
                assert "Nothing awaits review" in await page.content()
                await shot("04-resolved")

                await page.goto(f"{base}/dlq")
                await shot("05-dead-letters")
                await page.goto(f"{base}/sources")
                await shot("06-sources")
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
    assert jsonl(hub(env, "review", "list", "--json").stdout) == []
    assert len(os.listdir(shots)) == 6
