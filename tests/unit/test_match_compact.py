"""The stored normal form (children.prepared): what is read back is what was prepared."""

from __future__ import annotations

import pytest

from hub.match import compact
from hub.match.compare import Prepared, prepare
from tests.factories import child

RECORDS = [
    child(),
    child(nhs_number=None, family_name="Hartley-Pope", former_family_names=["Ashdown"]),
    child(given_name="Bill", middle_names="Aurelio", sex="male", address=None, carers=[]),
]


def _fields(p: Prepared) -> dict[str, object]:
    return {name: getattr(p, name) for name in Prepared.FIELDS}


@pytest.mark.parametrize("record", RECORDS)
def test_a_form_decodes_to_what_was_prepared(record: dict[str, object]) -> None:
    p = prepare(record)
    text = compact.encode(p, 7)
    assert text is not None
    back = compact.decode(text, 7)
    assert back is not None and _fields(back) == _fields(p)
    # The NHS number tie reads these two without decoding the rest.
    assert compact.identifiers(text, 7) == (p.nhs, p.dob_s)


def test_a_form_of_another_version_or_code_is_never_used() -> None:
    text = compact.encode(prepare(child()), 3)
    assert text is not None
    assert compact.decode(text, 4) is None and compact.identifiers(text, 4) is None
    other = "p1.00000000" + text[len(compact.TAG):]  # another FORM_VERSION or nickname table
    assert compact.decode(other, 3) is None and compact.identifiers(other, 3) is None
    assert compact.identifiers(text + "\x1fextra", 3) is None


def test_fields_name_every_slot() -> None:
    # The address line is made from the address when first read (line1).
    # Its __slots__ as written; compiled (hub.native), the attributes mypyc made of them.
    declared = getattr(Prepared, "__slots__", ()) or getattr(Prepared, "__mypyc_attrs__", ())
    slots = set(declared) - {"_line1", "_address"}
    assert set(Prepared.FIELDS) == slots | {"line1"}
