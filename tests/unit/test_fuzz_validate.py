"""Property tests of the ingest path's pure layer against hostile input.

`hub.ingest.check` is what the pipeline worker runs on every message (routing
key, then hub.validate.parse: size, UTF-8, JSON, schema, text rules, source).
Whatever the body, it returns a CanonicalUpdate or a Rejection with a reason
from the documented set, and never raises; a rejection's error names fields,
never values, and everything it holds can be stored; an accepted update holds
only storable, visible text and is accepted again when re-sent. Valid updates
stay valid. Then what an accepted update meets next (blocking keys, scoring,
decide) and what the worker reads from AMQP properties (publish time, dead
letter ids, pamqp's decoders) must not raise either.
"""

from __future__ import annotations

import copy
import json
import string
import struct
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hub.broker import tolerant
from hub.config import Thresholds
from hub.decide import DEFAULT_MATCHER, Facts, decide
from hub.ingest import Incoming, check, raw_text
from hub.match.blocking import index_keys, query_keys
from hub.text_rules import MAX_ITEMS, MAX_TEXT, storable, text_problem
from hub.validate import MAX_BODY, Rejection, parse
from schemas.canonical import CanonicalUpdate
from tests.factories import nhs, update
from tests.hostile import DEAD_REASONS, hostile_bodies
from workers.pipeline import _published, parked_id

# What the pure layer may answer (the broker and parking add unroutable and
# poison_message, which no body can cause here).
PURE_REASONS = DEAD_REASONS - {"unroutable"}
CANARY = "Kqzcanaryxv"

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def storable_text(text: str | None) -> bool:
    if text is None:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def judge(body: bytes, routing_key: str = "source.dwp",
          user_id: str | None = None) -> CanonicalUpdate | Rejection:
    """Run the worker's check and assert the properties every answer must have."""
    result = check(Incoming("m-1", routing_key, body, user_id=user_id))
    assert isinstance(result, CanonicalUpdate | Rejection)
    assert storable_text(raw_text(body))
    if isinstance(result, Rejection):
        assert result.reason in PURE_REASONS, result
        assert result.error and "\n" not in result.error and len(result.error) < 300
        assert storable_text(result.error)
        assert storable_text(result.source) and storable_text(result.source_record_id)
        assert result.source_record_id is None or len(result.source_record_id) <= 200
    else:
        dumped = result.model_dump(mode="json")
        assert_clean(dumped)
        # Accepted once, accepted again: what the hub stores is itself valid.
        again = parse(json.dumps(dumped).encode(), result.source)
        assert isinstance(again, CanonicalUpdate), again
        assert again == result
        assert_matching_copes(result)
    return result


def assert_clean(value: Any) -> None:
    if isinstance(value, str):
        assert text_problem(value) is None, (value, text_problem(value))
    elif isinstance(value, dict):
        for item in value.values():
            assert_clean(item)
    elif isinstance(value, list):
        assert len(value) <= MAX_ITEMS
        for item in value:
            assert_clean(item)


def assert_matching_copes(result: CanonicalUpdate) -> None:
    """What an accepted update meets next in the worker, in memory."""
    child = result.child.model_dump(mode="json", exclude_none=True)
    assert isinstance(index_keys(child), set) and isinstance(query_keys(child), set)
    s = DEFAULT_MATCHER.score(child, child)
    assert 0.0 <= s.probability <= 1.0
    d = decide(child, result.source_version, Facts(), Thresholds())
    assert d.action == "create"


# -- strategies ---------------------------------------------------------------------

# Any code point, lone surrogates included (json.dumps escapes them as \ud800).
any_text = st.text(st.characters(codec=None), max_size=40)
hostile_text = st.one_of(
    any_text,
    st.sampled_from([
        "'); DROP TABLE children;--", "1 OR 1=1", "${jndi:ldap://x/a}", "{{7*7}}",
        "%s%n%x", "<script>alert(1)</script>", "\x00", "\ud800", "\udfff", "\u202e",
        "\u200b", "\ufeff", "\x1b[31m", "\r\n", "\u2028", "ＬＳ６", "𝐏𝐞𝐫𝐫𝐢𝐧", "Оrchard",
        "Pеrrin", "\uffff", "\ue000", "a" * (MAX_TEXT + 1), "٣", "ß", "İ", "ǅ", "\u0301",
    ]),
    st.builds(lambda a, b: a + CANARY + b, any_text, any_text),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False), hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(hostile_text, inner, max_size=5)),
    max_leaves=30,
)

PATHS = [
    "source", "source_record_id", "source_version", "kind", "restricted", "child",
    "child.nhs_number", "child.upn", "child.given_name", "child.middle_names",
    "child.family_name", "child.former_family_names", "child.date_of_birth", "child.sex",
    "child.address", "child.address.lines", "child.address.town", "child.address.postcode",
    "child.address.la", "child.carers", "child.education_setting", "child.gp_practice",
    "child.services",
]


def _node(doc: dict[str, Any], path: str) -> tuple[Any, str]:
    *parents, last = path.split(".")
    node: Any = doc
    for p in parents:
        node = node.get(p) if isinstance(node, dict) else None
    return node, last


@st.composite
def mutated(draw: Any) -> dict[str, Any]:
    """A valid update with one to three things broken."""
    doc = update("dwp", "CB-1", 3, nhs_number=nhs(draw(st.integers(1, 9999))),
                 middle_names=CANARY)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        node, last = _node(doc, path)
        if not isinstance(node, dict):
            continue
        how = draw(st.sampled_from(["replace", "delete", "extra", "deep", "huge", "list"]))
        if how == "replace":
            node[last] = draw(json_values)
        elif how == "delete":
            node.pop(last, None)
        elif how == "extra":
            node[draw(hostile_text)] = draw(json_values)
        elif how == "deep":
            depth = draw(st.integers(1, 2000))
            value: Any = CANARY
            for _ in range(depth):
                value = [value]
            node[last] = value
        elif how == "huge":
            node[last] = CANARY + "x" * draw(st.integers(MAX_TEXT - 20, 3 * MAX_TEXT))
        else:
            node[last] = [draw(json_values)] * draw(st.integers(0, 3 * MAX_ITEMS))
    return doc


names = st.text(st.sampled_from(string.ascii_letters + "éèëïöüçñåøæœßÉÖÅ' -"),
                min_size=1, max_size=30).filter(lambda s: any(c.isalpha() for c in s))


@st.composite
def valid_updates(draw: Any) -> dict[str, Any]:
    dob = draw(st.dates(min_value=date(1990, 1, 1), max_value=date.today()))
    given_name = draw(st.one_of(st.none(), names))
    family = draw(names) if given_name is None else draw(st.one_of(st.none(), names))
    child: dict[str, Any] = {
        "nhs_number": draw(st.one_of(st.none(), st.integers(1, 99_999).map(nhs))),
        "given_name": given_name, "family_name": family,
        "middle_names": draw(st.one_of(st.none(), names)),
        "former_family_names": draw(st.lists(names, max_size=3)),
        "date_of_birth": dob.isoformat(),
        "sex": draw(st.sampled_from(["female", "male", "unknown", None])),
    }
    if draw(st.booleans()):
        child["address"] = {"lines": draw(st.lists(names, max_size=3)),
                            "town": draw(st.one_of(st.none(), names)),
                            "postcode": draw(st.sampled_from(["LS6 1AA", "b5 7qq", None])),
                            "la": draw(st.sampled_from(["383", "330", None]))}
    if draw(st.booleans()):
        child["carers"] = [{"name": draw(names), "relationship": "mother",
                            "phone": "0113 496 0000"}]
    return {"source": "dwp", "source_record_id": draw(st.from_regex(r"[A-Z]{2}-[0-9]{1,9}",
                                                                      fullmatch=True)),
            "source_version": draw(st.integers(0, 2**63 - 1)), "kind": "upsert",
            "restricted": draw(st.booleans()), "child": child}


# -- properties ---------------------------------------------------------------------

@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(
    ["source.dwp", "source.", "source.dwp.x", "", "sauce.dwp", "source.d\x00wp", "source.Ｄwp"]))
def test_arbitrary_bytes_are_judged_never_raised(body: bytes, routing_key: str) -> None:
    result = judge(body, routing_key)
    if routing_key != "source.dwp":
        assert isinstance(result, Rejection)


@FUZZ
@given(json_values)
def test_arbitrary_json_documents_are_judged(doc: Any) -> None:
    judge(json.dumps(doc).encode())


@FUZZ
@given(mutated())
def test_mutations_of_a_valid_update_are_judged_and_values_stay_out_of_errors(
        doc: dict[str, Any]) -> None:
    try:
        body = json.dumps(doc).encode()
    except RecursionError:
        assume(False)  # too deep for the test's own encoder; the next test sends such bodies
        raise
    result = judge(body)
    # (source_mismatch names the source the body claims, as a routing key would: a
    # source's name is no child's data, and the operator must see which it was)
    if isinstance(result, Rejection) and not (
            result.reason == "source_mismatch" and CANARY in str(doc.get("source"))):
        assert CANARY not in result.error


@FUZZ
@given(st.integers(1, 200_000), st.sampled_from(["[", '{"a":']))
def test_nesting_of_any_depth_is_rejected_without_a_recursion_error(depth: int,
                                                                    opener: str) -> None:
    close = "]" if opener == "[" else "}"
    body = (opener * depth + "1" + close * depth).encode()
    result = judge(body)
    assert isinstance(result, Rejection)
    assert result.reason in {"invalid_json", "schema_violation", "unknown_field", "too_large"}


def test_the_hostile_catalogue_gets_its_expected_reasons() -> None:
    for kind, body, expect in hostile_bodies(lambda i: f"{CANARY}{i}", near_limit=MAX_BODY + 10):
        result = judge(body)
        assert isinstance(result, Rejection), kind
        if expect is not None:
            assert result.reason == expect, (kind, result)
        assert CANARY not in result.error, kind


@FUZZ
@given(valid_updates())
def test_valid_updates_stay_valid(doc: dict[str, Any]) -> None:
    result = judge(json.dumps(doc).encode())
    assert isinstance(result, CanonicalUpdate), result
    assert result.source_record_id == doc["source_record_id"]


@FUZZ
@given(valid_updates(), st.sampled_from(["\x00", "\x07", "\x7f", "\x85", "\u202e", "\u200b",
                                         "\ud800", "\ufeff", "\u2029", "\ue000"]),
       st.sampled_from(["given_name", "family_name", "middle_names"]))
def test_one_bad_character_in_a_valid_update_is_invalid_character(
        doc: dict[str, Any], bad: str, where: str) -> None:
    doc = copy.deepcopy(doc)
    doc["child"][where] = "Ada" + bad + "line"
    result = judge(json.dumps(doc).encode())
    assert isinstance(result, Rejection) and result.reason == "invalid_character", result
    assert "Ada" not in result.error


@FUZZ
@given(st.text(st.characters(codec=None), max_size=60))
def test_storable_keeps_everything_and_stores(text: str) -> None:
    out = storable(text)
    assert storable_text(out)
    if storable_text(text):
        assert out == text


# -- what the worker reads from AMQP properties ---------------------------------------

header_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), any_text,
    st.binary(max_size=20), st.datetimes(), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@FUZZ
@given(header_values, st.one_of(st.none(), st.datetimes(), st.datetimes(timezones=st.just(UTC)),
                                header_values))
def test_publish_time_from_any_header_and_timestamp(ms: Any, ts: Any) -> None:
    out = _published({"x-hub-published-ms": ms}, ts)
    assert out is None or (isinstance(out, datetime) and out.tzinfo is not None)


@FUZZ
@given(header_values)
def test_dead_letter_id_from_any_header(value: Any) -> None:
    out = parked_id(value)
    assert out is None or len(out) == 36


@FUZZ
@given(st.binary(min_size=8, max_size=8))
def test_any_timestamp_property_decodes(raw: bytes) -> None:
    tolerant.install()
    from pamqp import decode

    consumed, value = decode.METHODS["timestamp"](raw)
    assert consumed == 8 and (value is None or isinstance(value, datetime))


@FUZZ
@given(st.binary(max_size=255))
def test_any_short_string_decodes(raw: bytes) -> None:
    tolerant.install()
    from pamqp import decode

    consumed, value = decode.METHODS["shortstr"](bytes([len(raw)]) + raw)
    assert consumed == len(raw) + 1 and isinstance(value, str)


@FUZZ
@given(st.binary(max_size=200))
def test_any_header_table_of_the_right_length_decodes(raw: bytes) -> None:
    tolerant.install()
    from pamqp import decode

    consumed, value = decode.METHODS["table"](struct.pack(">I", len(raw)) + raw)
    assert consumed == len(raw) + 4 and isinstance(value, dict)
