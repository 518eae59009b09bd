"""Named corruptions: pure, applicable only where they make sense, always valid."""

from __future__ import annotations

import random
from datetime import date

import pytest

from hub.synth import KINDS, NotApplicable, applicable, applicable_kinds, corrupt
from hub.synth.corrupt import _dob_digit_candidates
from hub.validate import check


def base(**over: object) -> dict:
    child: dict = {
        "nhs_number": "9434765919",
        "upn": None,
        "given_name": "William",
        "middle_names": "James",
        "family_name": "Smith-Jones",
        "former_family_names": [],
        "date_of_birth": "2015-03-07",
        "sex": "male",
        "address": {
            "lines": ["8 Stanley Street"],
            "town": "Leeds",
            "postcode": "LS4 2AB",
            "la": "383",
        },
        "carers": [],
    }
    child.update(over)
    return child


def valid(child: dict) -> bool:
    update = {
        "source": "dwp",
        "source_record_id": "CB-1",
        "source_version": 1,
        "kind": "upsert",
        "child": child,
    }
    return not hasattr(check(update, "dwp"), "reason")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_pure_changes_something_and_stays_valid(kind: str) -> None:
    child = base()
    before = repr(child)
    assert applicable(child, kind)
    for seed in range(30):
        out = corrupt(child, kind, random.Random(seed))
        assert repr(child) == before  # input untouched
        assert out != child
        assert valid(out)


def test_same_rng_same_result() -> None:
    for kind in KINDS:
        assert corrupt(base(), kind, random.Random(4)) == corrupt(base(), kind, random.Random(4))


def test_typo_is_one_edit() -> None:
    child = base(family_name="Thompson")
    for seed in range(50):
        out = corrupt(child, "typo", random.Random(seed))
        changed = [f for f in ("given_name", "family_name") if out[f] != child[f]]
        assert len(changed) == 1
        old, new = child[changed[0]], out[changed[0]]
        assert abs(len(new) - len(old)) <= 1
        if len(new) == len(old):  # substitution or transposition
            assert sum(a != b for a, b in zip(old.lower(), new.lower(), strict=True)) <= 2


def test_nickname() -> None:
    seen = {corrupt(base(), "nickname", random.Random(s))["given_name"] for s in range(60)}
    assert seen <= {"Bill", "Will", "Liam", "Billy"} and len(seen) >= 3
    assert not applicable(base(given_name="Zebedee"), "nickname")


def test_names_swapped() -> None:
    out = corrupt(base(), "names_swapped", random.Random(0))
    assert (out["given_name"], out["family_name"]) == ("Smith-Jones", "William")


def test_day_month_swap_rules() -> None:
    out = corrupt(base(), "dob_day_month_swapped", random.Random(0))
    assert out["date_of_birth"] == "2015-07-03"
    assert not applicable(base(date_of_birth="2015-03-13"), "dob_day_month_swapped")
    assert not applicable(base(date_of_birth="2015-04-04"), "dob_day_month_swapped")
    # never into the future
    assert not applicable(
        base(date_of_birth="2026-10-12"), "dob_day_month_swapped", as_of=date(2026, 11, 1)
    )


def test_dob_digit_one_digit_valid_date() -> None:
    for seed in range(40):
        out = corrupt(base(), "dob_digit", random.Random(seed))
        a, b = base()["date_of_birth"], out["date_of_birth"]
        assert sum(x != y for x, y in zip(a, b, strict=True)) == 1
        assert date.fromisoformat(b) <= date(2026, 11, 1)
    assert all(
        date.fromisoformat(c) <= date(2026, 1, 2)
        for c in _dob_digit_candidates(date(2026, 1, 1), date(2026, 1, 2))
    )


def test_hyphen_part() -> None:
    seen = {corrupt(base(), "hyphen_part", random.Random(s))["family_name"] for s in range(30)}
    assert seen == {"Smith", "Jones"}
    assert not applicable(base(family_name="Smith"), "hyphen_part")


def test_missing_fields() -> None:
    assert corrupt(base(), "missing_nhs", random.Random(0))["nhs_number"] is None
    assert corrupt(base(), "missing_given", random.Random(0))["given_name"] is None
    assert corrupt(base(), "missing_family", random.Random(0))["family_name"] is None
    assert corrupt(base(), "missing_sex", random.Random(0))["sex"] is None
    assert not applicable(base(nhs_number=None), "missing_nhs")
    # never both names
    one = corrupt(base(), "missing_given", random.Random(0))
    assert "missing_family" not in applicable_kinds(one)
    assert "missing_given" not in applicable_kinds(one)


def test_moved_and_other_la() -> None:
    outs = [corrupt(base(), "moved", random.Random(s)) for s in range(60)]
    assert all(o["address"]["postcode"] != "LS4 2AB" for o in outs)
    assert {o["address"]["la"] for o in outs} - {"383"}  # sometimes another LA
    assert any(o["address"]["la"] == "383" for o in outs)


def test_family_name_change_keeps_former() -> None:
    out = corrupt(base(former_family_names=["Brown"]), "family_name_change", random.Random(1))
    assert out["family_name"] != "Smith-Jones"
    assert out["former_family_names"] == ["Smith-Jones", "Brown"]


def test_not_applicable_raises() -> None:
    with pytest.raises(NotApplicable):
        corrupt(base(date_of_birth="2015-03-20"), "dob_day_month_swapped", random.Random(0))
    with pytest.raises(KeyError):
        applicable(base(), "no_such_kind")
