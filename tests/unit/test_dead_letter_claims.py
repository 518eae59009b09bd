"""A message not read as an update (larger than a update may be, or published under
a routing key that is no source's) still has its dead letter name the record it
claims to be, so an operator can tell the source which one to mend (found by a
probe: such letters had no record id)."""

from __future__ import annotations

import json

from hub import ingest
from hub.validate import MAX_BODY, PEEK_BYTES, Rejection, claims, parse
from tests.factories import canonical_body, update


def test_a_body_too_large_is_named_by_its_publisher_and_its_claimed_id() -> None:
    body = json.dumps({**update("dwp", "CB-77"), "source": "nhs",
                       "pad": "p" * MAX_BODY}).encode()
    result = parse(body, expected_source="dwp")
    assert isinstance(result, Rejection) and result.reason == "too_large"
    # The source is the one it was published as, not the one it claims.
    assert (result.source, result.source_record_id) == ("dwp", "CB-77")


def test_a_message_under_no_source_is_named_by_what_it_claims() -> None:
    item = ingest.Incoming("m-1", "elsewhere", canonical_body(update("la", "LA-9")))
    result = ingest.check(item)
    assert isinstance(result, Rejection) and result.reason == "invalid_routing_key"
    assert (result.source, result.source_record_id) == ("la", "LA-9")


def test_claims_are_read_from_the_start_of_the_body_only() -> None:
    assert claims(b'{"source_record_id": 42, "source": "dwp"}') == ("dwp", "42")
    assert claims(b'{"source": "dwp", "source": "nhs"}') == ("dwp", None)  # the first
    assert claims(b"not json at all") == (None, None)
    assert claims(b'{"source_record_id": "a\\"b"}') == (None, None)  # escapes: not read
    late = b'{"pad": "' + b"p" * PEEK_BYTES + b'", "source_record_id": "CB-1"}'
    assert claims(late) == (None, None)
    # Control characters are never a label.
    assert claims(b'{"source_record_id": "a\x00b"}') == (None, None)
