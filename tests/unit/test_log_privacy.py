"""No personal data in logs or error messages: the log processors (hub/log.py)
withhold personal fields at any depth and values shaped like personal data; an
exception is logged as its type and frames, never its message or its frames'
local variables; validation errors name fields, never values."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from hub.validate import Rejection, check, parse
from tests.factories import update

NAME, FAMILY, DOB, POSTCODE, NHS = "Marigold", "Quenby", "2014-03-09", "LS6 1AA", "9990000018"
PERSONAL = (NAME, FAMILY, DOB, POSTCODE, NHS, "Orchard Row", "07700 900111")


def run_logging(body: str) -> list[dict[str, object]]:
    """Run `body` in a fresh interpreter with the hub's logging; its JSON log lines."""
    script = "from hub.log import configure, get\nconfigure('INFO')\nlog = get('t')\n"
    script += textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    for line in proc.stderr.splitlines():
        for value in PERSONAL:
            assert value not in line, line
    return lines


def test_personal_keys_are_withheld_at_any_depth() -> None:
    [line] = run_logging(f"""
        log.info("careless", given_name={NAME!r}, worker="w1",
                 detail={{"address": {{"postcode": {POSTCODE!r}}}, "carers": ["x"],
                          "items": [{{"family_name": {FAMILY!r}}}], "count": 3}})
    """)
    assert line["given_name"] == "[withheld]" and line["worker"] == "w1"
    assert line["detail"] == {"address": "[withheld]", "carers": "[withheld]",
                              "items": [{"family_name": "[withheld]"}], "count": 3}


def test_values_shaped_like_personal_data_are_withheld_whatever_their_key() -> None:
    [line] = run_logging(f"""
        log.info("careless", subject={NHS!r}, note={POSTCODE!r}, when={DOB!r},
                 spaced="999 000 0018", message_id="sha256:0123456789abcdef",
                 child_id="6f1c2a4e-8a51-4b8e-9d7e-0c2f4a1b3c5d", reason="invalid_nhs_number")
    """)
    assert line["subject"] == line["note"] == line["when"] == line["spaced"] == "[withheld]"
    assert line["message_id"] == "sha256:0123456789abcdef"
    assert line["child_id"] == "6f1c2a4e-8a51-4b8e-9d7e-0c2f4a1b3c5d"
    assert line["reason"] == "invalid_nhs_number"
    assert "timestamp" in line and line["level"] == "info"


def test_an_exception_is_logged_without_its_message_or_local_variables() -> None:
    [line] = run_logging(f"""
        def process(record):
            family = record["family_name"]
            raise ValueError("no match for " + family + " born " + record["date_of_birth"])

        try:
            try:
                process({{"given_name": {NAME!r}, "family_name": {FAMILY!r},
                         "date_of_birth": {DOB!r}, "nhs_number": {NHS!r}}})
            except ValueError as exc:
                raise RuntimeError("while handling " + str(exc)) from exc
        except RuntimeError:
            log.exception("batch_failed", worker="w1")
    """)
    assert line["event"] == "batch_failed"
    chain = line["exception"]
    assert [e["type"] for e in chain] == ["RuntimeError", "ValueError"]  # type: ignore[index]
    assert chain[1]["frames"][-1]["function"] == "process"  # type: ignore[index]
    assert "exc_info" not in line


def test_library_log_records_go_through_the_same_processors() -> None:
    lines = run_logging(f"""
        import logging
        lib = logging.getLogger("aiormq.connection")
        lib.info("connected")
        try:
            {{"nhs_number": {NHS!r}}}[{FAMILY!r}]
        except KeyError:
            lib.error("callback failed", exc_info=True)
        logging.getLogger("quiet").debug("below the level")
    """)
    assert [(x["logger"], x["event"]) for x in lines] == [
        ("aiormq.connection", "connected"), ("aiormq.connection", "callback failed")]
    assert lines[1]["exception"][0]["type"] == "KeyError"  # type: ignore[index]


def test_validation_errors_name_fields_never_values() -> None:
    bad = update("dwp", "CB-1")
    bad["child"].update(sex=NAME, date_of_birth=f"{DOB}T{FAMILY}", middle_names=[NHS],
                        upn={"x": POSTCODE}, nhs_number=NHS[:-1] + "9")
    bad["child"]["address"]["lines"] = POSTCODE
    bad["child"]["carers"] = [{"name": FAMILY, "relationship": NAME, "phone": 7700900111,
                               "extra": NAME}]
    bad["child"]["education_setting"] = FAMILY
    cases = [bad, {**bad, "colour": NAME}, {**bad, "source_version": FAMILY},
             {**update("dwp", "CB-2"), "child": {"given_name": NAME, "family_name": FAMILY,
                                                 "date_of_birth": "2099-01-01"}}]
    for case in cases:
        result = check(case, expected_source="dwp")
        assert isinstance(result, Rejection)
        for value in PERSONAL:
            assert value not in result.error, (result.reason, result.error)
    raw = parse(json.dumps(bad).encode()[:-3], expected_source="dwp")
    assert isinstance(raw, Rejection) and raw.reason == "invalid_json"
    assert all(value not in raw.error for value in PERSONAL)
