"""Coverage-guided fuzzing (atheris / libFuzzer) of the ingest path's entry points.

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python -m fuzz.run TARGET [--seconds 120] [--corpus DIR] [-- LIBFUZZER_ARGS]

TARGET is `validate` (hub.ingest.check, what the pipeline worker runs on every
message body) or an adapter: `jsonl`, `csv`, `fhir`, `ctf` (the whole file is
the input). Each input must give what the hub promises: a valid update or a
rejection with a documented reason (adapters: Records and BadRecords), a
one-line error without the input's values, text that can be stored and sent,
and no exception at all. A failed promise is a crash: libFuzzer stops and
writes the input to `--artifacts` (default fuzz/artifacts/).

The corpus starts from the adapters' test fixtures (tests/fixtures/adapters/)
and, for `validate`, a few canonical updates and the hostile catalogue's
bodies (tests/hostile.py); the corpus grows in fuzz/corpus/TARGET (not in git)
unless --corpus names another directory.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports():
    from adapters.base import BadRecord, Record
    from adapters.registry import FORMATS
    from hub.ingest import Incoming, check, raw_text
    from hub.publishing import canonical_body
    from hub.text_rules import text_problem
    from hub.validate import Rejection
    from hub.validate import check as check_update
    from schemas.canonical import CanonicalUpdate

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "adapters"
TARGETS = ("validate", "jsonl", "csv", "fhir", "ctf")
# Reasons documented in README ("Dead-letter reasons") and adapters/README.md.
REASONS = frozenset({
    "invalid_json", "invalid_encoding", "schema_violation", "unknown_field", "missing_field",
    "missing_name", "missing_date_of_birth", "invalid_nhs_number", "invalid_date_of_birth",
    "source_mismatch", "unauthenticated_source", "invalid_routing_key", "invalid_character",
    "too_large",
})
ADAPTER_REASONS = frozenset({
    "invalid_encoding", "invalid_json", "not_an_object", "missing_column", "unknown_column",
    "duplicate_column", "unparseable_record", "empty_file", "wrong_field_count",
    "missing_source_record_id", "invalid_source_version", "invalid_restricted",
    "unsupported_resource", "missing_resource", "invalid_resource", "too_large",
    "missing_upn", "missing_header", "invalid_xml", "misplaced_pupil", "not_a_ctf",
    "conflicting_nhs_numbers",
})


class Broken(AssertionError):
    """A promise the hub makes about hostile input was not kept."""


def _storable(text: str | None) -> bool:
    if text is None:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _clean(value: Any) -> None:
    if isinstance(value, str) and text_problem(value) is not None:
        raise Broken(f"accepted text with a problem: {text_problem(value)}")
    if isinstance(value, dict):
        for item in value.values():
            _clean(item)
    if isinstance(value, list):
        for item in value:
            _clean(item)


def judge(result: CanonicalUpdate | Rejection, reasons: frozenset[str]) -> None:
    if isinstance(result, Rejection):
        if result.reason not in reasons:
            raise Broken(f"undocumented reason {result.reason!r}")
        if not result.error or "\n" in result.error or not _storable(result.error):
            raise Broken(f"bad error text for {result.reason}")
        if not (_storable(result.source) and _storable(result.source_record_id)):
            raise Broken("rejection holds text that cannot be stored")
        return
    if not isinstance(result, CanonicalUpdate):
        raise Broken(f"neither an update nor a rejection: {type(result).__name__}")
    _clean(result.model_dump(mode="json"))


def one_validate(data: bytes) -> None:
    result = check(Incoming("fuzz", "source.dwp", data))
    judge(result, REASONS)
    if not _storable(raw_text(data)):
        raise Broken("raw text cannot be stored")
    if isinstance(result, CanonicalUpdate):
        again = check(Incoming("fuzz", "source.dwp",
                               json.dumps(result.model_dump(mode="json")).encode()))
        if again != result:
            raise Broken("an accepted update is not accepted again as stored")


def one_adapter(fmt: str, data: bytes) -> None:
    for item in FORMATS[fmt](io.BytesIO(data), "dwp"):
        if isinstance(item, BadRecord):
            if item.reason not in ADAPTER_REASONS:
                raise Broken(f"undocumented adapter reason {item.reason!r}")
            if not item.error or "\n" in item.error:
                raise Broken(f"bad error text for {item.reason}")
            item.raw.encode("utf-8")  # hub publish sends it
        elif isinstance(item, Record):
            judge(check_update(item.update, "dwp"), REASONS)
            canonical_body(item.update).decode("utf-8")  # sent as update or as raw
        else:
            raise Broken(f"adapter yielded {type(item).__name__}")


def seeds(target: str) -> list[bytes]:
    if target == "validate":
        from tests.factories import update
        from tests.hostile import hostile_bodies

        out = [json.dumps(update("dwp", f"S-{i}", i)).encode() for i in range(3)]
        out += [body for _, body, _ in hostile_bodies(lambda i: f"seed{i}")
                if len(body) < 200_000]
        for path in sorted((FIXTURES / "jsonl").iterdir()):
            out += [line for line in path.read_bytes().splitlines() if line.strip()]
        return out
    return [p.read_bytes() for p in sorted((FIXTURES / target).iterdir())]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", choices=TARGETS)
    p.add_argument("--seconds", type=int, default=120)
    p.add_argument("--corpus", type=Path,
                   help="corpus directory, kept between runs (default: fuzz/corpus/TARGET)")
    p.add_argument("--artifacts", type=Path, default=ROOT / "fuzz" / "artifacts")
    p.add_argument("--max-len", type=int, default=1 << 16)
    p.add_argument("--reproduce", type=Path, metavar="FILE",
                   help="run one input (a crash artifact) and show what fails")
    a = p.parse_args(argv)

    def test_one_input(data: bytes) -> None:
        if a.target == "validate":
            one_validate(data)
        else:
            one_adapter(a.target, data)

    if a.reproduce is not None:
        test_one_input(a.reproduce.read_bytes())  # raises what the fuzzer caught
        print("no failure")
        return

    corpus = a.corpus or ROOT / "fuzz" / "corpus" / a.target
    corpus.mkdir(parents=True, exist_ok=True)
    for n, seed in enumerate(seeds(a.target)):
        (corpus / f"seed-{n:04d}").write_bytes(seed[: a.max_len])
    a.artifacts.mkdir(parents=True, exist_ok=True)

    args = [sys.argv[0], f"-max_total_time={a.seconds}", f"-max_len={a.max_len}",
            f"-artifact_prefix={a.artifacts}/{a.target}-", "-print_final_stats=1",
            "-rss_limit_mb=4096", "-timeout=20", *extra, str(corpus)]
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
