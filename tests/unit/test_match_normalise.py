"""Name, postcode and date normalisation for matching."""

from datetime import date, datetime

import pytest

from hub.match.normalise import (
    are_variants,
    name_key,
    name_parts,
    normalise_address_line,
    normalise_name,
    parse_date,
    postcode_parts,
    soundex,
    swapped_date,
    variant_groups,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Zoë ", "zoe"),
        ("O'Brien", "obrien"),
        ("O\u2019Brien", "obrien"),
        ("SMITH-JONES", "smith jones"),
        ("Smith  -  Jones", "smith jones"),
        ("Søren", "soren"),
        ("Strauß", "strauss"),
        ("Łukasz", "lukasz"),
        ("Mary.Jane", "maryjane"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalise_name(raw: str | None, expected: str) -> None:
    assert normalise_name(raw) == expected


def test_name_key_is_compact_and_drops_placeholders() -> None:
    assert name_key("Smith-Jones") == name_key("smith jones") == "smithjones"
    assert name_key("Baby") == ""
    assert name_key("UNKNOWN") == ""
    assert name_key("Babette") == "babette"


def test_name_parts_split_hyphens_and_drop_particles() -> None:
    assert name_parts("Hartley-Pope") == ("hartley", "pope")
    assert name_parts("Vaughan Williams") == ("vaughan", "williams")
    assert name_parts("de la Cruz") == ("cruz",)
    assert name_parts("Al-Amin") == ("amin",)
    assert name_parts("Okafor") == ("okafor",)


def test_soundex() -> None:
    assert soundex("smith") == soundex("smyth") == "S530"
    assert soundex("") == ""
    assert soundex("\u5f20") == ""  # no Latin letters to code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ls4 2ab", ("LS42AB", "LS42", "LS4")),
        ("LS42AB", ("LS42AB", "LS42", "LS4")),
        ("SW1A 1AA", ("SW1A1AA", "SW1A1", "SW1A")),
        ("M1 1AE", ("M11AE", "M11", "M1")),
        ("not a postcode", ("NOTAPOSTCODE", "", "")),
        (None, ("", "", "")),
    ],
)
def test_postcode_parts(raw: str | None, expected: tuple[str, str, str]) -> None:
    assert postcode_parts(raw) == expected


def test_address_line() -> None:
    assert normalise_address_line("8, Stanley Rd.") == "8 stanley road"
    assert normalise_address_line("8 Stanley St") == "8 stanley street"
    assert normalise_address_line("St Mary's Close") == "st marys close"


def test_parse_date_accepts_strings_dates_and_datetimes() -> None:
    d = date(2014, 3, 7)
    assert parse_date("2014-03-07") == d
    assert parse_date(d) == d
    assert parse_date(datetime(2014, 3, 7, 12, 0)) == d
    with pytest.raises(ValueError):
        parse_date("07/03/2014")
    with pytest.raises(ValueError):
        parse_date(None)


def test_swapped_date() -> None:
    assert swapped_date(date(2014, 3, 7)) == date(2014, 7, 3)
    assert swapped_date(date(2014, 3, 3)) is None
    assert swapped_date(date(2014, 3, 25)) is None


def test_variant_table() -> None:
    groups = variant_groups()
    assert len({g for ids in groups.values() for g in ids}) >= 300
    assert are_variants("Bill", "William")
    assert are_variants("Liam", "william")
    assert are_variants("Peggy", "Margaret")
    assert are_variants("Mohammed", "Muhammad")
    assert not are_variants("Bill", "Robert")
    # Names that share a nickname are not variants of each other.
    assert not are_variants("Charles", "Charlotte")
    assert not are_variants("Philip", "Philippa")
    assert not are_variants("Julia", "Julian")
    assert not are_variants("Frederick", "Alfred")
    assert not are_variants(None, "William")
