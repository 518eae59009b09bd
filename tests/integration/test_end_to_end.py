"""The whole path through the real CLI, RabbitMQ and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import moved, nhs, update
from tests.helpers import hub, jsonl, write_jsonl

pytestmark = pytest.mark.integration


def test_setup_is_idempotent(hub_env: dict[str, str]) -> None:
    first = hub(hub_env, "setup")
    second = hub(hub_env, "setup")
    assert "broker topology declared" in first.stdout
    assert "none needed" in second.stdout


def test_create_link_notify_export(running: dict[str, str], tmp_path: Path) -> None:
    env = running
    hub(env, "council", "add", "383")
    hub(env, "council", "add", "330")
    first = update("la", "LA-1")
    write_jsonl(tmp_path / "la.jsonl", [first])
    hub(env, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
    hub(env, "wait", "--timeout", "60")
    # The same child from DWP, now living in Birmingham: linked by NHS number + DOB.
    write_jsonl(tmp_path / "dwp.jsonl", [moved(update("dwp", "CB-1"))])
    out = hub(env, "publish", "--source", "dwp", "--format", "jsonl", str(tmp_path / "dwp.jsonl"))
    assert "published 1, rejected 0" in out.stdout
    hub(env, "wait", "--timeout", "60")

    lines = jsonl(hub(env, "export").stdout)
    assert len(lines) == 1
    rec = lines[0]
    assert rec["version"] == 2 and rec["shielded"] is False
    assert {s["source"] for s in rec["sources"]} == {"la", "dwp"}
    assert rec["child"]["address"]["la"] == "330"

    leeds = jsonl(hub(env, "notifications", "consume", "--council", "383").stdout)
    brum = jsonl(hub(env, "notifications", "consume", "--council", "330").stdout)
    assert [n["event"] for n in leeds] == ["child.created", "child.moved_out"]
    assert [n["event"] for n in brum] == ["child.moved_in"]
    assert "address" not in leeds[1]["child"]  # the old council is not told where the child went
    assert brum[0]["version"] == 2 and brum[0]["child_id"] == rec["child_id"]
    assert len({n["event_id"] for n in leeds + brum}) == 3

    # Replaying the same file and an older version changes nothing.
    hub(env, "publish", "--source", "dwp", "--format", "jsonl", str(tmp_path / "dwp.jsonl"))
    write_jsonl(tmp_path / "old.jsonl", [update("la", "LA-1", 0)])
    hub(env, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "old.jsonl"))
    hub(env, "wait", "--timeout", "60")
    again = jsonl(hub(env, "export").stdout)
    assert again[0]["version"] == 2


def test_invalid_input_is_dead_lettered_and_the_worker_goes_on(
    running: dict[str, str], tmp_path: Path
) -> None:
    env = running
    bad_nhs = update("dwp", "CB-2", nhs_number="9990000000")
    bad_nhs["child"]["nhs_number"] = "9990000019"  # wrong check digit
    bad_date = update("dwp", "CB-3", date_of_birth="2015-02-30")
    unknown = update("dwp", "CB-4")
    unknown["colour"] = "blue"
    no_names = update("dwp", "CB-5", given_name=None, family_name=None)
    wrong_source = update("pds", "P-1")
    good = update("dwp", "CB-6", nhs_number=nhs(2), given_name="Tamsin")
    path = tmp_path / "mixed.jsonl"
    write_jsonl(path, [bad_nhs, bad_date, unknown, no_names, wrong_source, good])
    with path.open("a") as f:
        f.write("{not json\n")
    out = hub(env, "publish", "--source", "dwp", "--format", "jsonl", str(path))
    assert "published 1, rejected 6" in out.stdout
    assert "line 7: rejected: invalid_json" in out.stdout
    hub(env, "wait", "--timeout", "60")
    dead = jsonl(hub(env, "dlq", "list", "--json").stdout)
    reasons = sorted(d["reason"] for d in dead)
    assert reasons == sorted(["invalid_nhs_number", "invalid_date_of_birth", "unknown_field",
                              "missing_name", "source_mismatch", "invalid_json"])
    by_reason = {d["reason"]: d for d in dead}
    assert by_reason["invalid_nhs_number"]["source_record_id"] == "CB-2"
    assert by_reason["invalid_json"]["source_record_id"] is None
    assert "9990000019" not in by_reason["invalid_nhs_number"]["error"]
    assert len(jsonl(hub(env, "export").stdout)) == 1  # the good one went through


def test_cli_errors_are_one_line(hub_env: dict[str, str], tmp_path: Path) -> None:
    hub(hub_env, "setup")
    bad = hub(hub_env, "shield", "not-an-id", "--authority", "383", "--by", "op", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    missing = hub(hub_env, "shield", "00000000-0000-0000-0000-000000000000",
                  "--authority", "383", "--by", "op", check=False)
    assert missing.returncode == 1 and "no child" in missing.stderr
    usage = hub(hub_env, "review", "resolve", "x", check=False)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1, usage.stderr
    assert usage.stderr.startswith("hub review resolve: error: "), usage.stderr
    for args in (("wait", "--timeout", "soon"), ("no-such-command",), ("publish",),
                 ("publish", "--source", "dwp", "--format", "xml", "feed.xml"),
                 ("export", "--include-protected"), ("dlq", "retry", "--by", "op"),
                 ("dlq", "purge", "--by", "op"), ("source", "pause", "#"),
                 ("publish", "--source", "a.b", "--format", "jsonl", "feed.jsonl"),
                 ("wait", "--timeout", "-1"), ("run", "--workers", "0"),
                 ("run", "--processes", "-2"), ("load", "--source", "dwp", "--format",
                                                "jsonl", "--chunk", "0", "feed.jsonl"),
                 ("notifications", "consume", "--council", "383", "--max", "0")):
        usage = hub(hub_env, *args, check=False)
        assert usage.returncode == 2 and usage.stderr.count("\n") == 1, (args, usage.stderr)
    down = dict(hub_env, HUB_AMQP_URL="amqp://guest:guest@127.0.0.1:1/")
    for args in (("council", "add", "383"), ("wait", "--timeout", "2"),
                 ("notifications", "consume", "--council", "383", "--max", "1"),
                 ("run",), ("run", "--processes", "2")):
        unreachable = hub(down, *args, check=False)
        # One line: the broker client's own error records (JSON) are not printed too.
        assert unreachable.returncode == 1, args
        assert unreachable.stderr.startswith("hub: cannot reach a service"), unreachable.stderr
        assert unreachable.stderr.count("\n") == 1, unreachable.stderr
    novhost = hub(dict(hub_env, HUB_AMQP_URL=hub_env["HUB_AMQP_URL"].rsplit("/", 1)[0]
                       + "/no-such-vhost-here"), "council", "add", "383", check=False)
    assert novhost.returncode == 1 and novhost.stderr.count("\n") == 1, novhost.stderr
    assert "is the vhost in HUB_AMQP_URL there" in novhost.stderr, novhost.stderr
    # A garbled service URL: refused at once in one line (it was a driver's traceback,
    # or a broker client retrying localhost), without echoing it (it may hold a password).
    for var, args in (("HUB_DATABASE_URL", ("export",)), ("HUB_AMQP_URL", ("wait",))):
        garbled = hub(dict(hub_env, **{var: "not a url:s3cret"}), *args, check=False)
        assert garbled.returncode == 1 and garbled.stderr.count("\n") == 1, garbled.stderr
        assert garbled.stderr.startswith(f"hub: {var} must be a URL"), garbled.stderr
        assert "s3cret" not in garbled.stderr
    nofile = hub(hub_env, "publish", "--source", "dwp", "--format", "jsonl", "/nonexistent",
                 check=False)
    assert nofile.returncode == 1 and "cannot read" in nofile.stderr
    # A file that cannot be read among several: said before any is published.
    good = write_jsonl(tmp_path / "good.jsonl", [update("dwp", "CB-1")])
    several = hub(hub_env, "publish", "--source", "dwp", "--format", "jsonl", str(good),
                  "/nonexistent", str(good), check=False)
    assert several.returncode == 1 and "nothing was published" in several.stderr
    assert "published" not in several.stdout
    fmt = hub(hub_env, "publish", "--source", "dwp", "--format", "xls", "/nonexistent",
              check=False)
    assert fmt.returncode == 2 and "known formats: csv, ctf, fhir, jsonl" in fmt.stderr


def test_wait_times_out_when_work_is_left(hub_env: dict[str, str], tmp_path: Path) -> None:
    hub(hub_env, "setup")
    write_jsonl(tmp_path / "la.jsonl", [update("la", "LA-9")])
    hub(hub_env, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
    res = hub(hub_env, "wait", "--timeout", "1", check=False)
    assert res.returncode == 1 and "hub.inbound" in res.stderr


def test_councils_and_consume_max(running: dict[str, str], tmp_path: Path) -> None:
    env = running
    assert "no councils" in hub(env, "council", "list").stdout
    hub(env, "council", "add", "383")
    hub(env, "council", "add", "383")  # idempotent
    kids = [update("la", f"LA-{i}", nhs_number=nhs(100 + i), given_name=name)
            for i, name in enumerate(["Alys", "Bramwell", "Cerys"])]
    write_jsonl(tmp_path / "la.jsonl", kids)
    hub(env, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
    hub(env, "wait", "--timeout", "60")
    assert "383  council.383  3 waiting" in hub(env, "council", "list").stdout
    two = jsonl(hub(env, "notifications", "consume", "--council", "383", "--max", "2").stdout)
    assert len(two) == 2
    rest = jsonl(hub(env, "notifications", "consume", "--council", "383").stdout)
    assert len(rest) == 1 and rest[0]["event_id"] not in {n["event_id"] for n in two}
    assert hub(env, "council", "remove", "383").stderr == ""  # nothing was waiting
    hub(env, "council", "add", "383")
    hub(env, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
    write_jsonl(tmp_path / "la2.jsonl", [update("la", "LA-9", nhs_number=nhs(109),
                                                given_name="Dilys")])
    hub(env, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "la2.jsonl"))
    hub(env, "wait", "--timeout", "60")
    removed = hub(env, "council", "remove", "383")  # what it had not read is said, not silent
    assert "note: 1 notification(s) it had not consumed were deleted" in removed.stderr
    assert "no councils" in hub(env, "council", "list").stdout
    gone = hub(env, "notifications", "consume", "--council", "383", check=False)
    assert gone.returncode == 1 and "hub council add 383" in gone.stderr
    assert hub(env, "council", "remove", "383", check=False).returncode == 1
    assert hub(env, "council", "add", "38", check=False).returncode == 2


async def test_source_publisher_client(running: dict[str, str], settings) -> None:
    from hub.client import InvalidUpdate, SourcePublisher

    async with SourcePublisher(settings.amqp_url, "dwp") as pub:
        first = await pub.publish(update("dwp", "CB-7"))
        again = await pub.publish(update("dwp", "CB-7"))
        assert first == again  # stable ids: a re-publish is the same message
        with pytest.raises(InvalidUpdate, match="source_mismatch"):
            await pub.publish(update("pds", "P-7"))
    hub(running, "wait", "--timeout", "60")
    assert len(jsonl(hub(running, "export").stdout)) == 1


def test_processing_latency_is_measured(running: dict[str, str], tmp_path: Path) -> None:
    write_jsonl(tmp_path / "la.jsonl", [update("la", "LA-1")])
    hub(running, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
    hub(running, "wait", "--timeout", "60")
    status = hub(running, "status").stdout
    assert "hub_processing_latency_seconds_count 1" in status
    assert 'hub_processing_latency_seconds_bucket{le="60"} 1' in status


def test_a_publish_the_broker_refuses_part_way_says_how_far_it_got(
    hub_env: dict[str, str], tmp_path: Path
) -> None:
    """An independent probe: with the broker refusing part-way (a full queue), `hub
    publish` said only why it stopped, not how many records had gone."""
    from urllib.parse import unquote, urlsplit

    from tests.conftest import rabbitmqctl

    hub(hub_env, "setup")
    vhost = unquote(urlsplit(hub_env["HUB_AMQP_URL"]).path.lstrip("/"))
    rabbitmqctl("set_policy", "-p", vhost, "full", "^hub\\.inbound$",
                '{"max-length": 50, "overflow": "reject-publish"}', "--apply-to", "queues")
    feed = write_jsonl(tmp_path / "feed.jsonl", [
        update("dwp", f"CB-{i}", nhs_number=nhs(i), given_name=f"Child{i:03d}")
        for i in range(1, 400)])
    out = hub(hub_env, "publish", "--source", "dwp", "--format", "jsonl", str(feed),
              check=False)
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    stopped = [line for line in out.stdout.splitlines() if ": stopped: " in line]
    assert len(stopped) == 1, out.stdout
    confirmed = int(stopped[0].split(": stopped: ")[1].split()[0])
    assert 0 < confirmed < 399, stopped
