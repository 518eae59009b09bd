"""Stored normal forms and blocking keys change only with compact.FORM_VERSION.

Forms and keys are written once per record version and trusted by every reader
while their tag matches. If the code that makes them gave other output under the
same version, records indexed before would keep keys that updates no longer look
up: missed matches, and for a shielded child a duplicate. So their output on a
fixed sample of records (tests/fixtures/form_sample.jsonl: synthetic children,
their corruptions and hand-made edge cases) is pinned, per version, in
tests/fixtures/form_digest.txt.

When this fails because the output changed on purpose: bump FORM_VERSION in
hub/match/compact.py and add a line "<version> <digest>" with the digest printed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hub.match import compact
from hub.match.blocking import index_keys, query_keys, shielded_keys
from hub.match.compare import prepare

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _sample() -> list[dict[str, object]]:
    lines = (FIXTURES / "form_sample.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def output_digest() -> str:
    """SHA-256 of every sample record's form (without its tag) and keys."""
    h = hashlib.sha256()
    for record in _sample():
        p = prepare(record)
        form = compact.encode(p, 1)
        parts = [
            "" if form is None else form[len(compact.TAG):],
            *sorted(index_keys(p)), "|", *sorted(query_keys(p)), "|", *sorted(shielded_keys(p)),
        ]
        h.update("\n".join(parts).encode("utf-8") + b"\n\n")
    return h.hexdigest()


def recorded() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (FIXTURES / "form_digest.txt").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            version, digest = line.split()
            assert version not in out, f"{version} recorded twice"
            out[version] = digest
    return out


def test_the_sample_is_varied_enough_to_notice_a_change() -> None:
    sample = _sample()
    assert len(sample) >= 400
    forms = [prepare(r) for r in sample]
    assert sum(1 for p in forms if p.given_groups) >= 20  # nicknames in play
    assert any(p.formers for p in forms) and any(len(p.family_all) > 1 for p in forms)
    assert any(not p.given for p in forms) and any(not p.sector for p in forms)


def test_forms_and_keys_match_the_digest_recorded_for_this_version() -> None:
    digests = recorded()
    got = output_digest()
    assert compact.FORM_VERSION in digests, (
        f"no digest recorded for {compact.FORM_VERSION}: add '{compact.FORM_VERSION} {got}'"
        " to tests/fixtures/form_digest.txt")
    assert got == digests[compact.FORM_VERSION], (
        "normal forms or blocking keys changed under the same FORM_VERSION: bump it in"
        f" hub/match/compact.py and record '<new version> {got}' in"
        " tests/fixtures/form_digest.txt")
    # A version's output is never recorded under another one's name.
    assert list(digests.values()).count(got) == 1


def test_the_tag_carries_the_version() -> None:
    assert compact.TAG.startswith(compact.FORM_VERSION + ".")
