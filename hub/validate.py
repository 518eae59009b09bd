"""What makes an update acceptable: canonical schema, NHS number, dates, names.

Returns a reason code and a short error for anything else. Errors never carry
the offending values (they may be personal data), only field paths.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from hub import text_rules
from schemas.canonical import CanonicalUpdate

# A body this large is no single update: refused before it is parsed, so a
# flood of huge messages costs the worker almost nothing.
MAX_BODY = 1 << 20


def _field_names(model: Any) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        for arg in (info.annotation, *getattr(info.annotation, "__args__", ())):
            for inner in (arg, *getattr(arg, "__args__", ())):
                if isinstance(inner, type) and hasattr(inner, "model_fields"):
                    names |= _field_names(inner)
    return names


# Only the schema's own field names, and unknown keys shaped like one (_field_like),
# are shown in an error: an unknown key can be any text a source sent (a child's
# name, a NUL, a megabyte).
_KNOWN_FIELDS = frozenset(_field_names(CanonicalUpdate))
_FIELD_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+){0,5}")


@dataclass(frozen=True)
class Rejection:
    reason: str
    error: str
    source: str | None = None
    source_record_id: str | None = None


def _field_like(key: Any) -> bool:
    """An unknown key shaped like a field name (snake_case, short: `ethnicity`,
    `pupil_premium`), which a source needs named to mend its feed; any other key
    stays unnamed (a child's name sent as a key would be capitalised or spaced)."""
    return key in _KNOWN_FIELDS or (isinstance(key, str) and len(key) <= 40
                                    and _FIELD_NAME.fullmatch(key) is not None)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) if isinstance(p, int) or p in _KNOWN_FIELDS else "(field)" for p in loc]
    return ".".join(parts) or "(record)"


def _reason_for(err: dict[str, Any]) -> tuple[str, str]:
    loc = tuple(err.get("loc", ()))
    path = _field_path(loc)
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    last = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        where = f"in {_field_path(loc[:-1])}" if len(loc) > 1 else "at the top level"
        name = f"field {loc[-1]}" if loc and _field_like(loc[-1]) else "a field"
        return "unknown_field", f"{name} {where} is not in the schema"
    if kind == "string_unicode":  # a lone surrogate (a "\ud800" escape), in a value or a key
        return "invalid_character", f"{path} holds a lone surrogate"
    if last == "nhs_number":
        text = _said(msg)
        return "invalid_nhs_number", f"nhs_number {text}" if text.startswith("should") else text
    if last == "date_of_birth":
        if kind == "missing":
            return "missing_date_of_birth", "date_of_birth is required"
        detail = _said(msg).partition(", ")[2] or _said(msg) or kind
        return "invalid_date_of_birth", f"date_of_birth is not a valid date ({detail})"
    if "at least one of given_name and family_name" in msg:
        return "missing_name", "at least one of given_name and family_name is required"
    if "date of birth is in the future" in msg:
        return "invalid_date_of_birth", "date of birth is in the future"
    if kind == "missing":
        return "missing_field", f"{path} is required"
    return "schema_violation", f"{path}: {_said(msg) or kind}"


def _said(msg: str) -> str:
    """A validation message as a sentence a publisher reads ("Input should be 'upsert'",
    "local authority must be a three-digit DfE LA number"), not a code. pydantic's own
    name what was expected, never the input; ours are written so."""
    return msg.removeprefix("Value error, ").replace("Input should be", "should be")


def _peek(data: Any, key: str) -> str | None:
    if isinstance(data, dict):
        value = data.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return text_rules.storable(str(value)[:200])
    return None


# A body not read as an update (too large, or under a routing key that is no
# source's) is still searched for the ids it claims, so its dead letter names the
# record: only this much of it, so a flood of huge bodies stays cheap.
PEEK_BYTES = 1 << 16
_CLAIM = re.compile(rb'"(source|source_record_id)"\s*:\s*'
                    rb'(?:"([^"\\\x00-\x1f]{1,200})"|(-?\d{1,30})\b)')


def claims(body: bytes) -> tuple[str | None, str | None]:
    """The `source` and `source_record_id` a body claims (the first of each in its
    first PEEK_BYTES), as labels for its dead letter; None where none is found."""
    found: dict[bytes, str] = {}
    for m in _CLAIM.finditer(body[:PEEK_BYTES]):
        value = (m.group(2) or m.group(3)).decode("utf-8", "replace")
        found.setdefault(m.group(1), text_rules.storable(value))
    return found.get(b"source"), found.get(b"source_record_id")


def check(data: Any, expected_source: str | None = None) -> CanonicalUpdate | Rejection:
    """Validate a decoded JSON value as a canonical update."""
    source, record_id = _peek(data, "source"), _peek(data, "source_record_id")
    if not isinstance(data, dict):
        return Rejection("schema_violation", "an update must be a JSON object", None, None)
    try:
        update = CanonicalUpdate.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        # The most specific reason wins: NHS number and date errors before generic ones.
        reasons = [_reason_for(dict(e)) for e in errors]
        order = [
            "invalid_nhs_number",
            "invalid_date_of_birth",
            "missing_date_of_birth",
            "missing_name",
            "unknown_field",
            "missing_field",
        ]
        reasons.sort(key=lambda r: order.index(r[0]) if r[0] in order else len(order))
        reason, error = reasons[0]
        return Rejection(reason, error, source, record_id)
    bad_text = text_rules.problem(update.model_dump(mode="json"))
    if bad_text is not None:
        return Rejection(bad_text[0], bad_text[1], source, record_id)
    if expected_source is not None and update.source != expected_source:
        # Named by the source it was published as (who sent it), the claim in the text.
        return Rejection(
            "source_mismatch",
            f"the update's source {update.source!r} does not match the source it was"
            f" published as ({expected_source!r})",
            expected_source,
            record_id,
        )
    return update


def parse(body: bytes, expected_source: str | None = None) -> CanonicalUpdate | Rejection:
    """Decode and validate one message body."""
    if len(body) > MAX_BODY:
        # Named by the source it was published as (as source_mismatch is), its id
        # as it claims it.
        return Rejection("too_large", f"message body is larger than {MAX_BODY} bytes",
                         expected_source, claims(body)[1])
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection("invalid_encoding", "message body is not valid UTF-8")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return Rejection("invalid_json", "message body is not valid JSON")
    except ValueError:
        return Rejection("invalid_json", "message body is not valid JSON")
    return check(data, expected_source)
