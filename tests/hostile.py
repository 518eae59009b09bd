"""Hostile messages for the ingest path, and good updates to interleave with them.

Every hostile message carries a distinctive canary string in its body (or in a
property), so a test can search the hub's logs for it; every good update's
name, NHS number and postcode are distinctive too. Used by
tests/integration/test_hostile_input.py and bench/hostile_mix.py.

Some hostile properties cannot be sent through aio-pika at all (a timestamp
past the year 9999, a message id that is not UTF-8): `raw_amqp()` lets pamqp
put pre-encoded bytes on the wire for values wrapped in `Raw`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.factories import nhs, update

# Reasons a dead letter may carry (README "Dead-letter reasons", hub/validate.py,
# workers/parking.py). A hostile message must end with one of these and never as
# poison_message: poison means processing it failed, which it should not.
DEAD_REASONS = frozenset({
    "invalid_json", "invalid_encoding", "schema_violation", "unknown_field", "missing_field",
    "missing_name", "missing_date_of_birth", "invalid_nhs_number", "invalid_date_of_birth",
    "source_mismatch", "unauthenticated_source", "invalid_routing_key", "unroutable",
    "invalid_character", "too_large",
})


class Raw(bytes):
    """A property or header value already encoded for the wire (see raw_amqp)."""


@contextlib.contextmanager
def raw_amqp() -> Iterator[None]:
    """Let pamqp send `Raw` values as they are: shortstr and timestamp properties,
    and header table values (their type tag included)."""
    from pamqp import encode

    saved = dict(encode.METHODS)
    saved_value = encode.encode_table_value

    def wrap(fn: Any) -> Any:
        return lambda value: bytes(value) if isinstance(value, Raw) else fn(value)

    for name in ("shortstr", "timestamp"):
        encode.METHODS[name] = wrap(saved[name])
    encode.encode_table_value = wrap(saved_value)  # type: ignore[assignment]
    try:
        yield
    finally:
        encode.METHODS.clear()
        encode.METHODS.update(saved)
        encode.encode_table_value = saved_value  # type: ignore[assignment]


def raw_shortstr(data: bytes) -> Raw:
    return Raw(struct.pack(">B", len(data)) + data)


def raw_timestamp(value: int) -> Raw:
    return Raw(struct.pack(">Q", value))


@dataclass
class Message:
    """One message to publish to hub.ingest."""

    kind: str
    body: bytes
    canary: str
    routing_key: str = "source.dwp"
    # AMQP properties as pamqp takes them; message_id None means "left out".
    properties: dict[str, Any] = field(default_factory=dict)
    expect: str | None = None  # the dead-letter reason expected, when it is certain
    good: bool = False  # a good update (perhaps with odd properties): must be committed
    # what must never appear in a log line: the canary, and for good ones their details
    secrets: tuple[str, ...] = ()

    @property
    def message_id(self) -> str | None:
        mid = self.properties.get("message_id")
        return mid if isinstance(mid, str) else None


# -- good updates ----------------------------------------------------------------

_GIVEN = ["Ysolde", "Bramble", "Odalys", "Caspian", "Wrenna", "Tobiah", "Elowen", "Fenwick"]
_FAMILY = ["Quillfeather", "Ashbury", "Marlowe", "Penhallow", "Thistlewood", "Varga"]


def _letters(n: int) -> str:
    out = ""
    n += 26 * 26  # at least three letters
    while n:
        n, r = divmod(n, 26)
        out = chr(97 + r) + out
    return out


def good(i: int, source: str = "dwp", **properties: Any) -> Message:
    """A valid update about a child of its own (distinct name, NHS number, birth date)."""
    given = _GIVEN[i % len(_GIVEN)] + _letters(i)
    family = _FAMILY[i % len(_FAMILY)] + _letters(i * 7 + 3)
    number = nhs(50_000 + i)
    postcode = f"ZE{1 + i % 9} {i % 10}Q{chr(65 + i % 26)}"
    dob = f"{2008 + i % 16}-{1 + i % 12:02d}-{1 + (i // 12) % 28:02d}"
    u = update(source, f"GOOD-{i:05d}", 1, nhs_number=number, given_name=given,
               family_name=family, date_of_birth=dob,
               address={"lines": [f"{i + 1} Lantern Yard"], "town": "Leeds",
                        "postcode": postcode, "la": "383"},
               carers=[{"name": f"Juniper {family}", "relationship": "mother",
                        "phone": f"07700 9{i:05d}"}])
    body = json.dumps(u).encode()
    props = {"message_id": f"good-{i:05d}", "content_type": "application/json",
             "delivery_mode": 2, **properties}
    return Message("good", body, given, routing_key=f"source.{source}", properties=props,
                   good=True, secrets=(given, family, number, postcode))


# -- hostile bodies ----------------------------------------------------------------

def _valid(canary: str, i: int) -> dict[str, Any]:
    """A valid update to break one thing in; its middle name holds the canary."""
    return update("dwp", f"HOST-{i:05d}", 1, nhs_number=nhs(90_000 + i),
                  given_name="Perrin", family_name="Oakhallow", middle_names=canary,
                  date_of_birth="2013-05-06")


def _set(d: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node = d
    for p in parents:
        node = node[p]
    node[last] = value
    return d


def _drop(d: dict[str, Any], path: str) -> dict[str, Any]:
    *parents, last = path.split(".")
    node = d
    for p in parents:
        node = node[p]
    del node[last]
    return d


def _j(value: Any) -> bytes:
    return json.dumps(value).encode()


def _nested(depth: int, canary: str) -> bytes:
    return ('{"a":' * depth + json.dumps(canary) + "}" * depth).encode()


def hostile_bodies(canary_for: Any, near_limit: int = 0) -> list[tuple[str, bytes, str | None]]:
    """(kind, body, expected reason) for each hostile body; `canary_for(i)` names
    the canary of the i-th. `near_limit` > 0 adds one body of that many bytes."""
    out: list[tuple[str, bytes, str | None]] = []

    def add(kind: str, make: Any, expect: str | None) -> None:
        i = len(out)
        out.append((kind, make(canary_for(i), i), expect))

    # Not JSON, not UTF-8, not an object.
    add("truncated_json", lambda c, i: b'{"source":"dwp","source_record_id":"' + c.encode()
        + b'","child":{"given_name":"', "invalid_json")
    add("invalid_utf8", lambda c, i: b'{"source":"dwp","x":"' + c.encode() + b'\xff\xfe\xc3"}',
        "invalid_encoding")
    add("utf8_surrogate_bytes", lambda c, i: b'{"x":"\xed\xa0\x80' + c.encode() + b'"}',
        "invalid_encoding")
    add("overlong_utf8", lambda c, i: b'{"x":"\xc0\xaf' + c.encode() + b'"}', "invalid_encoding")
    add("latin1", lambda c, i: json.dumps({**_valid(c, i), "x": "Zo\xeb"}).encode("latin-1")
        .replace(b"\\u00eb", b"\xeb"), "invalid_encoding")
    add("utf16", lambda c, i: json.dumps(_valid(c, i)).encode("utf-16"), "invalid_encoding")
    add("json_array", lambda c, i: _j([c, 1, None]), "schema_violation")
    add("json_string", lambda c, i: _j(c), "schema_violation")
    add("json_number", lambda c, i: b"12345", "schema_violation")
    add("json_null", lambda c, i: b"null", "schema_violation")
    add("empty_body", lambda c, i: b"", "invalid_json")
    add("whitespace_body", lambda c, i: b" \n\t ", "invalid_json")
    add("nan", lambda c, i: json.dumps({**_valid(c, i), "source_version": float("nan")})
        .encode(), "schema_violation")
    add("huge_integer", lambda c, i: json.dumps(_valid(c, i)).replace(
        '"source_version": 1', '"source_version": ' + "9" * 5000).encode(), "invalid_json")
    add("two_documents", lambda c, i: _j(_valid(c, i)) + b"\n" + _j(_valid(c, i)), "invalid_json")
    add("bom", lambda c, i: b"\xef\xbb\xbf" + _j(_valid(c, i)), "invalid_json")
    add("gzip", lambda c, i: gzip.compress(_j(_valid(c, i))), "invalid_encoding")
    # Wrong types.
    for path, value, expect in [
        ("source_version", "v-CANARY", "schema_violation"),
        ("source_version", True, "schema_violation"),
        ("source_version", -1, "schema_violation"),
        ("source_version", 2**64, "schema_violation"),
        ("source_record_id", 12345.5, "schema_violation"),
        ("source_record_id", "", "schema_violation"),
        ("source", ["dwp"], "schema_violation"),
        ("kind", "delete", "schema_violation"),
        ("restricted", "CANARY", "schema_violation"),
        ("restricted", "yes", "schema_violation"),
        ("restricted", 1, "schema_violation"),
        ("source_version", "7", "schema_violation"),
        ("child", "CANARY", "schema_violation"),
        ("child.given_name", {"CANARY": 1}, "schema_violation"),
        ("child.family_name", ["CANARY"], "schema_violation"),
        ("child.date_of_birth", 20130506, "invalid_date_of_birth"),
        ("child.date_of_birth", "2013-02-30", "invalid_date_of_birth"),
        ("child.date_of_birth", 0, "invalid_date_of_birth"),
        ("child.date_of_birth", "1388534400", "invalid_date_of_birth"),
        ("child.date_of_birth", "2014-01-01T00:00:00", "invalid_date_of_birth"),
        ("child.date_of_birth", "9999-12-31", "invalid_date_of_birth"),
        ("child.date_of_birth", "CANARY", "invalid_date_of_birth"),
        ("child.nhs_number", 9990000000, "invalid_nhs_number"),
        ("child.nhs_number", "CANARY", "invalid_nhs_number"),
        ("child.sex", "CANARY", "schema_violation"),
        ("child.address", "CANARY", "schema_violation"),
        ("child.address.la", "CANARY", "schema_violation"),
        ("child.address.lines", "CANARY", "schema_violation"),
        ("child.carers", {"name": "CANARY"}, "schema_violation"),
        ("child.former_family_names", [1, "CANARY"], "schema_violation"),
    ]:
        add(f"wrong_type:{path}={value!r:.20}", lambda c, i, p=path, v=value: _j(_set(
            _valid(c, i), p, json.loads(json.dumps(v).replace("CANARY", c)))), expect)
    # Missing fields.
    for path, expect in [("child", "missing_field"), ("source", "missing_field"),
                         ("source_record_id", "missing_field"),
                         ("source_version", "missing_field"),
                         ("child.date_of_birth", "missing_date_of_birth")]:
        add(f"missing:{path}", lambda c, i, p=path: _j(_drop(_valid(c, i), p)), expect)
    add("missing:names", lambda c, i: _j(_set(_set(_valid(c, i), "child.given_name", None),
                                              "child.family_name", "  ")), "missing_name")
    add("empty_object", lambda c, i: b"{}", "missing_field")
    # Extra fields, some with hostile names.
    add("extra:top", lambda c, i: _j({**_valid(c, i), c: 1}), "unknown_field")
    add("extra:child", lambda c, i: _j(_set(_valid(c, i), f"child.{c}", "x")), "unknown_field")
    add("extra:address", lambda c, i: _j(_set(_valid(c, i), "child.address.colour", c)),
        "unknown_field")
    add("extra:nul_key", lambda c, i: _j({**_valid(c, i), f"{c}\x00key": 1}), "unknown_field")
    add("extra:huge_key", lambda c, i: _j({**_valid(c, i), c + "k" * 100_000: 1}),
        "unknown_field")
    add("extra:surrogate_key", lambda c, i: _j({**_valid(c, i), c + "\ud800": 1}),
        "invalid_character")
    # Huge values and documents.
    add("huge_name", lambda c, i: _j(_set(_valid(c, i), "child.given_name", c + "x" * 200_000)),
        "too_large")
    add("many_carers", lambda c, i: _j(_set(_valid(c, i), "child.carers",
                                            [{"name": c}] * 5000)), "too_large")
    add("huge_body", lambda c, i: _j({**_valid(c, i), "pad": "p" * (2 << 20)}), "too_large")
    if near_limit:
        add("near_broker_limit", lambda c, i: _j(_valid(c, i))[:-1] + b', "pad": "'
            + b"p" * (near_limit - 200) + b'"}', "too_large")
    # Deeply nested: past the recursion limit, and just under it inside a field.
    add("deep_arrays", lambda c, i: b"[" * 200_000 + _j(c) + b"]" * 200_000, "invalid_json")
    add("deep_objects", lambda c, i: _nested(100_000, c), "invalid_json")
    add("deep_in_field", lambda c, i: _j(_valid(c, i))[:-2] + b', "x": '
        + _nested(900, c) + b"}}", "unknown_field")
    add("deep_name", lambda c, i: _j(_valid(c, i)).replace(
        b'"given_name": "Perrin"', b'"given_name": ' + b"[" * 900 + b"1" + b"]" * 900),
        "schema_violation")
    # Control characters, invisible and lookalike text, in otherwise valid updates.
    for label, path, text in [
        ("nul", "child.given_name", "Per\x00rin"),
        ("escape", "child.family_name", "Oak\x1b[31mhallow"),
        ("vertical_tab", "child.address.town", "Leeds\x0bLondon"),
        ("delete", "child.given_name", "Perrin\x7f"),
        ("c1_control", "child.family_name", "Oak\x85hallow"),
        ("bidi_override", "child.family_name", "Oak\u202ewollah"),
        ("zero_width_space", "child.address.postcode", "LS6\u200b1AA"),
        ("line_separator", "child.given_name", "Per\u2028rin"),
        ("lone_surrogate", "child.given_name", "Per\ud800rin"),
        ("surrogate_record_id", "source_record_id", "HOST-\udfff"),
        ("nul_record_id", "source_record_id", "HOST-\x00"),
        ("private_use", "child.family_name", "Oak\ue000hallow"),
        ("noncharacter", "child.family_name", "Oak\uffffhallow"),
        ("fullwidth_postcode", "child.address.postcode", "ＬＳ６ １ＡＡ"),
        ("math_bold_name", "child.given_name", "𝐏𝐞𝐫𝐫𝐢𝐧"),
        ("cyrillic_o_address", "child.address.lines", ["12 Оrchard Row"]),
        ("greek_omicron_name", "child.family_name", "Οakhallow"),
        ("cyrillic_a_given", "child.given_name", "Pеrrin"),
    ]:
        add(f"text:{label}", lambda c, i, p=path, t=text: _j(_set(_valid(c, i), p, t)),
            "invalid_character")
    # Injection strings where they cannot be valid (they are refused for what they
    # are, never run): SQL, log, template and path injection.
    injections = ["'); DROP TABLE children;--", "1 OR 1=1", "${jndi:ldap://x/a}",
                  "{{7*7}}", "../../etc/passwd", "%s%n%x", "<script>alert(1)</script>"]
    for n, inj in enumerate(injections):
        add(f"injection:nhs:{n}", lambda c, i, t=inj: _j(_set(_valid(c, i), "child.nhs_number",
                                                              t + c)), "invalid_nhs_number")
        add(f"injection:dob:{n}", lambda c, i, t=inj: _j(_set(
            _valid(c, i), "child.date_of_birth", t + c)), "invalid_date_of_birth")
        add(f"injection:source:{n}", lambda c, i, t=inj: _j({**_valid(c, i), "source": t + c}),
            "schema_violation")
    # Valid in form, wrong in meaning.
    add("bad_check_digit", lambda c, i: _j(_set(_valid(c, i), "child.nhs_number", "9990000019")),
        "invalid_nhs_number")
    add("source_mismatch", lambda c, i: _j({**_valid(c, i), "source": "pds"}), "source_mismatch")
    return out


def _canary(tag: str, i: int) -> str:
    return f"Kanary{tag}{i:04d}zq"


def hostile(tag: str = "", near_limit: int = 0) -> list[Message]:
    """The whole catalogue: hostile bodies with proper properties, then odd
    properties, headers and routing keys on hostile bodies."""
    out: list[Message] = []

    def canary(i: int) -> str:
        return _canary(tag, i)

    for i, (kind, body, expect) in enumerate(hostile_bodies(canary, near_limit)):
        out.append(Message(kind, body, canary(i), properties={
            "message_id": f"hostile-{tag}{i:04d}", "content_type": "application/json",
            "delivery_mode": 2}, expect=expect, secrets=(canary(i),)))

    def odd(kind: str, properties: dict[str, Any], routing_key: str = "source.dwp",
            expect: str | None = "invalid_json") -> None:
        i = len(out)
        c = canary(i)
        body = b'{"source":"dwp","child":{"given_name":"' + c.encode() + b'"'  # broken JSON
        mid = f"hostile-{tag}{i:04d}"
        # A property may be made from the message's own id: ids stay unique, so
        # that the catalogue can be sent many times (a reused id is a redelivery).
        props = {"message_id": mid, **{k: v(mid) if callable(v) else v
                                       for k, v in properties.items()}}
        out.append(Message(f"props:{kind}", body, c, routing_key, props, expect, secrets=(c,)))

    odd("no_properties", {"message_id": None})
    odd("content_type_xml", {"content_type": "application/xml", "content_encoding": "gzip"})
    odd("content_type_latin1", {"content_type": "text/plain; charset=latin1"})
    odd("published_ms_huge", {"headers": {"x-hub-published-ms": 10**18}})
    odd("published_ms_negative", {"headers": {"x-hub-published-ms": -(10**15)}})
    odd("published_ms_text", {"headers": {"x-hub-published-ms": "soon"}})
    # (a NaN header is refused by the broker itself: INTERNAL_ERROR, connection closed)
    odd("published_ms_float_huge", {"headers": {"x-hub-published-ms": 3e38}})
    odd("retry_of_not_uuid", {"headers": {"x-hub-retry-of": "not-a-uuid"}})
    odd("retry_of_table", {"headers": {"x-hub-retry-of": {"a": [1, 2]}}})
    odd("routing_key_header_spoof", {"headers": {"x-hub-routing-key": "source.pds"}})
    odd("routing_key_header_nul", {"headers": {"x-hub-routing-key": "source.dwp\x00"}})
    odd("attempt_text", {"headers": {"x-hub-attempt": "many"}})
    odd("reason_spoof", {"headers": {"x-hub-reason": "poison_message", "x-hub-error": "x"}})
    odd("fake_x_death", {"headers": {"x-death": [{"routing-keys": ["source.\x00"],
                                                  "count": "x"}]}})
    odd("many_headers", {"headers": {f"h{n}": n for n in range(2000)}})
    odd("nested_headers", {"headers": {"t": {"u": {"v": [1, {"w": None}, 2.5, True]}}}})
    odd("message_id_nul", {"message_id": lambda mid: mid + "-nul\x00id"})
    odd("message_id_long", {"message_id": lambda mid: mid.ljust(255, "m")})
    odd("correlation_and_type", {"correlation_id": "\x00" * 10, "message_type": "x" * 255,
                                 "app_id": "\u202e", "reply_to": "\u202e" * 50,
                                 "priority": 255, "expiration": "600000"})
    odd("timestamp_zero", {"timestamp": raw_timestamp(0)})
    odd("timestamp_milliseconds", {"timestamp": raw_timestamp(1_700_000_000_000)})
    odd("timestamp_max", {"timestamp": raw_timestamp(2**64 - 1)})
    odd("message_id_not_utf8",
        {"message_id": lambda mid: raw_shortstr(mid.encode() + b"\xff\xfe")})
    odd("header_not_utf8", {"headers": {
        "x-hub-routing-key": Raw(b"S" + struct.pack(">I", 3) + b"\xff\xfe\xfd"),
        "x-hub-published-ms": Raw(b"T" + struct.pack(">Q", 2**64 - 1))}})
    odd("routing_key_extra_part", {}, "source.dwp.extra", "invalid_routing_key")
    odd("routing_key_empty_name", {}, "source.", "invalid_routing_key")
    odd("routing_key_nul", {}, "source.dwp\x00", None)
    odd("routing_key_unbound", {}, "sauce.dwp", "unroutable")
    odd("routing_key_blank", {}, "", "unroutable")
    odd("routing_key_long", {}, "source." + "d" * 240, "invalid_json")
    return out


def good_with_odd_properties(start: int) -> list[Message]:
    """Good updates whose properties are odd but harmless: each must be committed."""
    odd: list[dict[str, Any]] = [
        {"message_id": None},
        {"content_type": "text/plain", "delivery_mode": 1},
        {"headers": {"x-hub-published-ms": 10**18}},
        {"headers": {"x-hub-published-ms": 0}},
        {"headers": {"x-hub-published-ms": "yesterday"}},
        {"headers": {"x-hub-retry-of": "not-a-uuid"}},
        {"headers": {"x-hub-routing-key": "source.d\x00wp"}},
        {"headers": {"x-hub-attempt": "lots", "x-death": "nonsense"}},
        {"timestamp": raw_timestamp(0)},
        {"timestamp": raw_timestamp(1_700_000_000_000)},
        {"timestamp": raw_timestamp(2**64 - 1)},
        {"headers": {"x-hub-published-ms": Raw(b"T" + struct.pack(">Q", 2**64 - 1))}},
    ]
    return [good(start + n, **p) for n, p in enumerate(odd)]


def mix(goods: list[Message], bad: list[Message], seed: int = 7) -> list[Message]:
    """Interleave: the bad ones scattered through the good ones, order of each kept."""
    rng = random.Random(seed)
    slots = sorted(rng.sample(range(len(goods) + len(bad)), len(bad)))
    out: list[Message] = []
    gi = bi = 0
    for pos in range(len(goods) + len(bad)):
        if bi < len(bad) and slots[bi] == pos:
            out.append(bad[bi])
            bi += 1
        else:
            out.append(goods[gi])
            gi += 1
    return out


def _properties(m: Message) -> dict[str, Any]:
    props = {k: v for k, v in m.properties.items() if v is not None}
    if m.properties.get("message_id", "") is None:
        # aiormq invents a message id when there is none: send an empty one instead
        props["message_id"] = raw_shortstr(b"")
    return props


async def publish(amqp_url: str, messages: list[Message], window: int = 64) -> None:
    """Publish each message to hub.ingest with publisher confirms, in order, through
    aiormq so that raw properties go out as they are."""
    import asyncio

    import aiormq
    from pamqp.commands import Basic

    conn = await aiormq.connect(amqp_url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        room = asyncio.Semaphore(window)

        async def one(m: Message) -> None:
            try:
                await channel.basic_publish(m.body, exchange="hub.ingest",
                                            routing_key=m.routing_key,
                                            properties=Basic.Properties(**_properties(m)))
            finally:
                room.release()

        with raw_amqp():
            tasks = []
            for m in messages:
                await room.acquire()
                tasks.append(asyncio.create_task(one(m)))
            await asyncio.gather(*tasks)
    finally:
        await conn.close()
