"""Child-benefit style CSV extract (`--format csv`): one child per row.

The file is UTF-8 (a byte-order mark is tolerated), comma-separated, with
CRLF or LF line ends and RFC 4180 quoting (fields may hold commas, quotes and
line breaks when quoted). The first line is the header. Column names are
matched case-insensitively, surrounding spaces ignored, in any order.

Columns (R = required in the header; every other column may be left out):

==========================  ================================================
source_record_id (R)        the source's id for the row; blank -> BadRecord
source_version (R)          integer that grows with each change of the row
nhs_number                  ten digits (spaces allowed)
upn                         unique pupil number
given_name (R*)             * at least one of given_name / family_name
middle_names
family_name (R*)
former_family_names         separated by ";"
date_of_birth (R)           YYYY-MM-DD or DD/MM/YYYY
sex                         F/M/U or female/male/unknown (any case)
address_line1..3            address lines, blanks skipped
town
postcode                    stripped, spacing kept as given
la                          three-digit DfE local authority number
carer<N>_name               N = 1, 2, ... (any number of carers)
carer<N>_relationship
carer<N>_phone
service<N>_name             N = 1, 2, ... services involved
service<N>_contact
school_urn                  -> education_setting.urn
school_name                 -> education_setting.name
gp_ods_code                 -> gp_practice.ods_code
gp_name                     -> gp_practice.name
restricted                  Y/N, yes/no, true/false, 1/0; blank = no
==========================  ================================================

Header problems give a BadRecord at the header's line (``where`` "line 1"):
``missing_column`` (a required column is absent), ``unknown_column`` (a column
not listed above: a misspelt column would otherwise lose its data silently),
``duplicate_column``. No row can be mapped under such a header, but none is
dropped either: reading goes on, and every following non-blank row gives its
own BadRecord with the header's reason, its line, its raw text, an error
naming the header problem (prefixed "row not read because of the header: ")
and its source_record_id when the header has that column. This holds for a
row that is also malformed (wrong field count, invalid UTF-8, broken quoting);
only the header's reason is given.

File-level problems stop the file after ONE BadRecord at "line 1" (nothing in
it can be read safely): ``invalid_encoding`` (header not UTF-8),
``unparseable_record`` (header quoting broken) and ``empty_file``.

Row-level problems give a BadRecord for the row and reading goes on:
``wrong_field_count``, ``invalid_encoding``, ``unparseable_record`` (broken
quoting; a row whose quote is left open, which would run on over the rows after
it, is its first line alone, and the lines after it are read again as rows of
their own), ``missing_source_record_id``, ``invalid_source_version`` (blank or
not a non-negative integer), ``invalid_restricted``. Canonical rules (NHS
number, date of birth, names) are left to hub.validate.

`where` is "line N": the physical line the row starts on, the header being
line 1 (a row with a quoted line break spans several lines). Blank lines are
skipped. The file is read one line at a time; one field may hold at most
131072 characters (csv.field_size_limit), so broken quoting cannot swallow
the rest of the file into memory.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple

from adapters import _common
from adapters.base import BadRecord, Record

REQUIRED = ("source_record_id", "source_version", "date_of_birth")
NAME_COLUMNS = ("given_name", "family_name")
COLUMNS = frozenset(
    {
        "source_record_id",
        "source_version",
        "nhs_number",
        "upn",
        "given_name",
        "middle_names",
        "family_name",
        "former_family_names",
        "date_of_birth",
        "sex",
        "address_line1",
        "address_line2",
        "address_line3",
        "town",
        "postcode",
        "la",
        "school_urn",
        "school_name",
        "gp_ods_code",
        "gp_name",
        "restricted",
    }
)
_NUMBERED = re.compile(r"^(carer|service)([1-9][0-9]{0,2})_(name|relationship|phone|contact)$")
_NUMBERED_FIELDS = {"carer": ("name", "relationship", "phone"), "service": ("name", "contact")}
_TRUE = {"y", "yes", "true", "1"}
_FALSE = {"n", "no", "false", "0", ""}

HEADER = (
    "source_record_id,source_version,nhs_number,upn,given_name,middle_names,family_name,"
    "former_family_names,date_of_birth,sex,address_line1,address_line2,address_line3,town,"
    "postcode,la,carer1_name,carer1_relationship,carer1_phone,carer2_name,carer2_relationship,"
    "carer2_phone,school_urn,school_name,gp_ods_code,gp_name"
)
"""The usual header, in the usual order (any order is accepted)."""


class _Lines:
    """Feeds decoded lines to csv.reader and remembers what the row consumed."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.number = 0  # physical lines read so far
        self.taken: list[tuple[int, str, bool]] = []  # (number, text, bad UTF-8) since reset
        self._again: list[tuple[int, str, bool]] = []  # given back, read first (reversed)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._again:
            line = self._again.pop()
        else:
            line = self._read()
        self.taken.append(line)
        return line[1]

    def _read(self) -> tuple[int, str, bool]:
        data = self._stream.readline()
        if not data:
            raise StopIteration
        self.number += 1
        if self.number == 1 and data.startswith(_common.BOM):
            data = data[len(_common.BOM) :]
        try:
            return self.number, data.decode("utf-8"), False
        except UnicodeDecodeError:
            return self.number, data.decode("utf-8", errors="replace"), True

    def reset(self) -> tuple[int, str, bool]:
        """(first line number, raw text, had invalid UTF-8) of the last row."""
        taken, self.taken = self.taken, []
        if not taken:
            return self.number, "", False
        return taken[0][0], _chomp("".join(t for _, t, _ in taken)), any(b for *_, b in taken)

    def spans_lines(self) -> bool:
        return len(self.taken) > 1

    def first_only(self) -> tuple[int, str]:
        """The last row's first line alone (line number, raw text); the lines after it
        are given back to be read again as rows of their own. A quote left open
        swallows the rows after it into one field, up to the next quote or the end
        of the file: thousands of rows would otherwise be one dead letter."""
        first, *rest = self.taken
        self.taken = []
        self._again.extend(reversed(rest))
        return first[0], _chomp(first[1])


def _chomp(raw: str) -> str:
    return raw[:-2] if raw.endswith("\r\n") else raw[:-1] if raw.endswith("\n") else raw


def _header_problem(header: list[str]) -> tuple[str, str] | None:
    # Errors name a column by position, not by its text: a file sent without a
    # header has a child's details in its first line.
    seen = set(header)
    for name in REQUIRED:
        if name not in seen:
            return "missing_column", f"required column {name} is missing"
    if not any(n in seen for n in NAME_COLUMNS):
        return "missing_column", "one of the columns given_name and family_name is required"
    seen = set()
    for position, name in enumerate(header, start=1):
        if name in seen:
            return "duplicate_column", f"header column {position} repeats an earlier column"
        seen.add(name)
        if name not in COLUMNS and not _numbered_column(name):
            return "unknown_column", f"header column {position} is not a documented column"
    return None


def _numbered_column(name: str) -> bool:
    m = _NUMBERED.match(name)
    return m is not None and m.group(3) in _NUMBERED_FIELDS[m.group(1)]


def _blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


class Row(NamedTuple):
    """A row read under a good header, not yet mapped (adapters.base.Deferred). A
    tuple: a bulk load sends rows to its workers, and the header and plan every row
    of a file shares go once a batch (pickle keeps one copy of a shared object)."""

    where: str
    header: list[str]
    cells: list[str]
    plan: dict[str, list[dict[str, str]]]
    raw: str
    source: str

    def record(self) -> Record | BadRecord:
        return _row(self.where, dict(zip(self.header, self.cells, strict=True)), self.plan,
                    self.raw, self.source)


def read(stream: BinaryIO, source: str) -> Iterator[Record | BadRecord]:
    for item in rows(stream, source):
        yield item.record() if isinstance(item, Row) else item


def rows(stream: BinaryIO, source: str) -> Iterator[Row | BadRecord]:
    """As `read`, each good row left to be mapped (Row.record)."""
    lines = _Lines(stream)
    reader = csv.reader(lines, strict=True)
    header: list[str] | None = None
    header_problem: tuple[str, str] | None = None  # (reason, error) of a bad header
    plan: dict[str, list[dict[str, str]]] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            if header is None:
                first, raw, _ = lines.reset()
                yield BadRecord(
                    f"line {first}", "unparseable_record", "header cannot be parsed", raw
                )
                return
            if lines.spans_lines():
                yield _open_quote(lines, header, header_problem)
                continue
            first, raw, _ = lines.reset()
            if header_problem:
                yield _after_bad_header(f"line {first}", header_problem, raw, None)
                continue
            yield BadRecord(
                f"line {first}", "unparseable_record", "row cannot be parsed (quoting)", raw
            )
            continue
        if header is not None and len(row) != len(header) and lines.spans_lines():
            yield _open_quote(lines, header, header_problem)
            continue
        first, raw, bad_encoding = lines.reset()
        where = f"line {first}"
        if header is None:
            if bad_encoding:
                yield BadRecord(where, "invalid_encoding", "header is not valid UTF-8", raw)
                return
            if _blank(row):
                continue  # blank lines before the header
            header = [cell.strip().lower() for cell in row]
            header_problem = _header_problem(header)
            if header_problem:
                yield BadRecord(where, header_problem[0], header_problem[1], raw)
                continue  # every row after it is still read, and dead-lettered
            plan = _numbered_plan(header)
            continue
        if _blank(row):
            continue
        if header_problem:
            yield _after_bad_header(where, header_problem, raw, _row_id(header, row))
            continue
        if bad_encoding:
            yield BadRecord(
                where, "invalid_encoding", "row is not valid UTF-8", raw, _row_id(header, row)
            )
            continue
        if len(row) != len(header):
            yield BadRecord(
                where,
                "wrong_field_count",
                f"row has {len(row)} fields, the header has {len(header)}",
                raw,
                _row_id(header, row),
            )
            continue
        yield Row(where, header, row, plan, raw, source)
    if header is None:
        yield BadRecord("line 1", "empty_file", "the file has no header", "")


def _open_quote(
    lines: _Lines, header: list[str], header_problem: tuple[str, str] | None
) -> BadRecord:
    """A bad row over several lines: its first line is the dead letter, and the lines
    after it are read again (_Lines.first_only)."""
    first, raw = lines.first_only()
    where = f"line {first}"
    record_id = _plain_row_id(header, raw)
    if header_problem:
        return _after_bad_header(where, header_problem, raw, record_id)
    return BadRecord(where, "unparseable_record",
                     "row cannot be parsed: a quote is not closed on its line; the lines"
                     " after it are read as rows of their own", raw, record_id)


def _plain_row_id(header: list[str], line: str) -> str | None:
    """The record id of a line whose quoting is broken, only where no quote comes
    before it (one that does may have shifted the cells: another cell's text, a
    name, would be taken for the id, and ids go into logs)."""
    if "source_record_id" not in header:
        return None
    cells = line.split(",")
    position = header.index("source_record_id")
    if len(cells) <= position or '"' in ",".join(cells[:position + 1]):
        return None
    return _common.clean(cells[position])


def _after_bad_header(
    where: str, problem: tuple[str, str], raw: str, record_id: str | None
) -> BadRecord:
    """A row that cannot be mapped because the header is bad: kept, never dropped."""
    reason, error = problem
    return BadRecord(where, reason, f"row not read because of the header: {error}", raw, record_id)


def _row_id(header: list[str], row: list[str]) -> str | None:
    try:
        return _common.clean(row[header.index("source_record_id")])
    except (ValueError, IndexError):
        return None


def _row(
    where: str,
    cells: dict[str, str],
    plan: dict[str, list[dict[str, str]]],
    raw: str,
    source: str,
) -> Record | BadRecord:
    get = cells.get
    record_id = _common.clean(get("source_record_id"))
    if record_id is None:
        return BadRecord(where, "missing_source_record_id", "source_record_id is blank", raw)
    version = _common.integer(get("source_version"))
    if version is None:
        return BadRecord(
            where,
            "invalid_source_version",
            "source_version is blank or not a non-negative integer",
            raw,
            record_id,
        )
    restricted_text = (get("restricted") or "").strip().lower()
    if restricted_text not in _TRUE | _FALSE:
        return BadRecord(
            where,
            "invalid_restricted",
            "restricted is not Y/N (or yes/no, true/false, 1/0)",
            raw,
            record_id,
        )

    child: dict[str, Any] = {
        "nhs_number": _nhs(get("nhs_number")),
        "upn": _common.clean(get("upn")),
        "given_name": _common.clean(get("given_name")),
        "middle_names": _common.clean(get("middle_names")),
        "family_name": _common.clean(get("family_name")),
        "former_family_names": [
            n for n in (p.strip() for p in (get("former_family_names") or "").split(";")) if n
        ],
    }
    dob = _common.date(get("date_of_birth"))
    if dob is not None:
        child["date_of_birth"] = dob
    child["sex"] = _common.sex(_common.clean(get("sex")))
    lines = [
        line
        for line in (_common.clean(get(f"address_line{i}")) for i in (1, 2, 3))
        if line is not None
    ]
    child["address"] = _common.compact(
        {
            "lines": lines,
            "town": _common.clean(get("town")),
            "postcode": _common.clean(get("postcode")),
            "la": _common.clean(get("la")),
        }
    )
    child["carers"] = _numbered(cells, plan, "carer")
    child["education_setting"] = _common.compact(
        {"urn": _common.clean(get("school_urn")), "name": _common.clean(get("school_name"))}
    )
    child["gp_practice"] = _common.compact(
        {"ods_code": _common.clean(get("gp_ods_code")), "name": _common.clean(get("gp_name"))}
    )
    child["services"] = _numbered(cells, plan, "service")
    update: dict[str, Any] = {
        "source": source,
        "source_record_id": record_id,
        "source_version": version,
        "kind": "upsert",
    }
    if "restricted" in cells:
        update["restricted"] = restricted_text in _TRUE
    update["child"] = child
    return Record(where, update)


def _nhs(value: str | None) -> str | None:
    text = _common.clean(value)
    return text.replace(" ", "") if text else None


def _numbered_plan(header: list[str]) -> dict[str, list[dict[str, str]]]:
    """From the header: per kind, the numbered groups' columns, in number order."""
    found: dict[str, dict[int, dict[str, str]]] = {"carer": {}, "service": {}}
    for column in header:
        m = _NUMBERED.match(column)
        if m and m.group(3) in _NUMBERED_FIELDS[m.group(1)]:
            found[m.group(1)].setdefault(int(m.group(2)), {})[m.group(3)] = column
    return {kind: [groups[n] for n in sorted(groups)] for kind, groups in found.items()}


def _numbered(
    cells: dict[str, str], plan: dict[str, list[dict[str, str]]], kind: str
) -> list[dict[str, str | None]]:
    """carer1_name, carer1_phone, carer2_name ... -> [{name, phone}, ...] by number."""
    out = []
    for columns in plan[kind]:
        group = {
            f: _common.clean(cells[columns[f]]) if f in columns else None
            for f in _NUMBERED_FIELDS[kind]
        }
        if any(v is not None for v in group.values()):
            out.append(group)
    return out
