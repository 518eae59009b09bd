"""Blocking recall: whatever single corruption an update carries, its true record
shares at least one blocking key with it (domain.md, "Matching practice")."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hub.match.blocking import SHIELDED_ONLY, index_keys, query_keys, shielded_keys
from hub.match.normalise import date_slips
from hub.nhs import check_digit

GIVEN = [
    "Amara", "Tobias", "Wilhelmina", "Orrin", "Ffion", "Jolyon", "Keziah", "Mirela",
    "Bartholomew", "Saoirse", "Zubair", "Ines", "Peregrine", "Oyelaran", "Dagny",
]
FAMILY = [
    "Quennell", "Abernethy", "Ravensworth", "Okonkwo-Baines", "Featherstone", "Ibekwe",
    "Lindqvist", "Marchbanks", "Pargeter", "Tregothnan", "Van der Berg", "Hartley Pope",
]
# (formal, nickname) pairs from the variant table.
NICKNAMES = [
    ("William", "Bill"), ("Margaret", "Peggy"), ("Robert", "Bob"), ("Elizabeth", "Betty"),
    ("Richard", "Dick"), ("Catherine", "Kate"), ("Edward", "Ted"), ("Alexander", "Sandy"),
    ("Mohammed", "Muhammad"), ("Eleanor", "Nell"), ("Henry", "Hal"), ("Patrick", "Paddy"),
]
POSTCODES = ["LS4 2AB", "M14 5RT", "SW1A 1AA", "B15 2TT", "NE1 7RU", "CF10 3AT"]


def nhs_number(n: int) -> str:
    for i in range(n, n + 20):
        nine = f"999{i % 1_000_000:06d}"
        check = check_digit(nine)
        if check is not None:
            return nine + str(check)
    raise AssertionError("unreachable")


@st.composite
def children(draw: st.DrawFn) -> dict[str, Any]:
    dob = draw(st.dates(date(2007, 1, 1), date(2025, 12, 31)))
    return {
        "nhs_number": draw(st.none() | st.integers(0, 999_999).map(nhs_number)),
        "given_name": draw(st.sampled_from(GIVEN)),
        "middle_names": draw(st.none() | st.sampled_from(GIVEN)),
        "family_name": draw(st.sampled_from(FAMILY)),
        "former_family_names": [],
        "date_of_birth": draw(st.sampled_from([dob, dob.isoformat()])),
        "sex": draw(st.sampled_from(["female", "male", "unknown", None])),
        "address": draw(
            st.none()
            | st.builds(
                lambda pc: {"lines": ["1 High Street"], "postcode": pc, "la": "383"},
                st.sampled_from(POSTCODES),
            )
        ),
    }


def typo(draw: st.DrawFn, name: str) -> str:
    i = draw(st.integers(0, len(name) - 1))
    kind = draw(st.sampled_from(["sub", "del", "ins", "swap"]))
    letter = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
    if kind == "sub":
        out = name[:i] + letter + name[i + 1:]
    elif kind == "del":
        out = name[:i] + name[i + 1:]
    elif kind == "ins":
        out = name[:i] + letter + name[i:]
    else:
        j = min(i + 1, len(name) - 1)
        chars = list(name)
        chars[i], chars[j] = chars[j], chars[i]
        out = "".join(chars)
    return out or name


def _dob(child: dict[str, Any]) -> date:
    d = child["date_of_birth"]
    return d if isinstance(d, date) else date.fromisoformat(d)


def _digit_wrong(child: dict[str, Any], pos: int, digit: int) -> str:
    """The child's date of birth (ISO) with the digit at `pos` moved on by `digit`;
    a draw where that is no date is discarded."""
    iso = _dob(child).isoformat()
    wrong = iso[:pos] + str((int(iso[pos]) + digit) % 10) + iso[pos + 1:]
    try:
        date.fromisoformat(wrong)
    except ValueError:
        assume(False)
    return wrong


CORRUPTIONS = [
    "typo_given", "typo_family", "day_month_swap", "names_swapped", "nickname",
    "surname_part", "surname_part_added", "surname_changed", "surname_changed_update",
    "moved", "no_nhs",
]
NAME_CORRUPTIONS = [c for c in CORRUPTIONS if c != "day_month_swap"]


def corrupt(
    draw: st.DrawFn, record: dict[str, Any], how: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(record, update): the stored record and an update about the same child."""
    record = dict(record)
    update = dict(record)
    if how == "typo_given":
        update["given_name"] = typo(draw, record["given_name"])
    elif how == "typo_family":
        update["family_name"] = typo(draw, record["family_name"])
    elif how == "day_month_swap":
        dob = _dob(record)
        assume(dob.day <= 12 and dob.day != dob.month)
        update["date_of_birth"] = dob.replace(month=dob.day, day=dob.month).isoformat()
    elif how == "names_swapped":
        update["given_name"], update["family_name"] = record["family_name"], record["given_name"]
    elif how == "nickname":
        formal, nick = draw(st.sampled_from(NICKNAMES))
        if draw(st.booleans()):
            formal, nick = nick, formal
        record["given_name"], update["given_name"] = formal, nick
    elif how == "surname_part":
        first, second = draw(st.sampled_from(FAMILY)), draw(st.sampled_from(FAMILY))
        assume(first != second)
        record["family_name"] = f"{first}-{second}"
        update["family_name"] = draw(st.sampled_from([first, second]))
    elif how == "surname_part_added":
        extra = draw(st.sampled_from(FAMILY))
        assume(extra != record["family_name"])
        update["family_name"] = f"{record['family_name']}-{extra}"
    elif how == "surname_changed":
        # The index learned the new surname and kept the old; the update has the old.
        new = draw(st.sampled_from(FAMILY))
        assume(new != record["family_name"])
        record["former_family_names"] = [record["family_name"]]
        record["family_name"] = new
    elif how == "surname_changed_update":
        # The update carries the new surname and the old one as former.
        new = draw(st.sampled_from(FAMILY))
        assume(new != record["family_name"])
        update["former_family_names"] = [record["family_name"]]
        update["family_name"] = new
    elif how == "moved":
        update["address"] = {"lines": ["2 Low Road"], "postcode": "TR1 2HE", "la": "908"}
    elif how == "no_nhs":
        update["nhs_number"] = None
    return record, update


def _codes_kept(record: dict[str, Any], update: dict[str, Any]) -> bool:
    """Two corruptions at once (a name and the date of birth) are found only when the
    names keep their soundex codes or are nickname variants: the blocking design's
    stated limit, which keeps each key to a handful of children at national scale."""
    from hub.match.normalise import are_variants, name_key, soundex

    for field in ("given_name", "family_name"):
        a, b = record.get(field), update.get(field)
        if a and b and soundex(name_key(a)) != soundex(name_key(b)) and not are_variants(a, b):
            return False
    return True


@st.composite
def corrupted_pairs(
    draw: st.DrawFn, corruptions: list[str]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    how = draw(st.sampled_from(corruptions))
    record, update = corrupt(draw, draw(children()), how)
    return how, record, update


@settings(max_examples=400, suppress_health_check=[HealthCheck.filter_too_much])
@given(corrupted_pairs(CORRUPTIONS))
def test_single_corruption_shares_a_key(case: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    how, record, update = case
    assert index_keys(record) & query_keys(update), how


@settings(max_examples=400, suppress_health_check=[HealthCheck.filter_too_much])
@given(corrupted_pairs(NAME_CORRUPTIONS), st.integers(1, 27))
def test_name_corruption_plus_wrong_day_still_shares_a_key(
    case: tuple[str, dict[str, Any], dict[str, Any]], shift: int
) -> None:
    """Without NHS number or address, and with the day of birth also wrong, the
    surname or given name keys (with the year) still find the record."""
    how, record, update = case
    assume(_codes_kept(record, update))
    record = dict(record, nhs_number=None)
    dob = _dob(record)
    wrong = dob.replace(day=1) + timedelta(days=(dob.day - 1 + shift) % 28)
    assume(wrong != dob and wrong.year == dob.year)
    update = dict(update, nhs_number=None, address=None, date_of_birth=wrong.isoformat())
    assert index_keys(record) & query_keys(update), how


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(corrupted_pairs(NAME_CORRUPTIONS), st.integers(1, 11))
def test_name_corruption_plus_wrong_month_still_shares_a_key(
    case: tuple[str, dict[str, Any], dict[str, Any]], shift: int
) -> None:
    """Without NHS number or address, and with the month of birth also wrong, both
    names with the year and the day still find the record."""
    how, record, update = case
    assume(_codes_kept(record, update))
    record = dict(record, nhs_number=None)
    dob = _dob(record)
    try:
        wrong = dob.replace(month=(dob.month - 1 + shift) % 12 + 1)
    except ValueError:
        assume(False)
    update = dict(update, nhs_number=None, address=None, date_of_birth=wrong.isoformat())
    assert index_keys(record) & query_keys(update), how


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(corrupted_pairs(NAME_CORRUPTIONS), st.integers(1, 9), st.integers(2, 3))
def test_name_corruption_plus_wrong_year_digit_still_shares_a_key(
    case: tuple[str, dict[str, Any], dict[str, Any]], digit: int, pos: int
) -> None:
    """A wrong digit in the year and a move (no NHS number): the surname and the
    birthday find the record, unless the surname itself is what changed."""
    how, record, update = case
    assume(_codes_kept(record, update))
    assume(how not in {"typo_family", "names_swapped", "surname_part", "surname_part_added",
                       "surname_changed", "surname_changed_update"})
    record = dict(record, nhs_number=None)
    wrong = _digit_wrong(record, pos, digit)
    moved = {"lines": ["2 Low Road"], "postcode": "TR1 2HE", "la": "908"}
    update = dict(update, nhs_number=None, address=moved, date_of_birth=wrong)
    assert index_keys(record) & query_keys(update), how


@given(children())
def test_keys_are_few_and_query_keys_include_index_keys(child: dict[str, Any]) -> None:
    keys = index_keys(child)
    assert len(keys) <= 16
    assert keys <= query_keys(child)
    assert all(isinstance(k, str) and len(k) < 40 for k in keys)


def test_key_shapes() -> None:
    child = {
        "nhs_number": nhs_number(1),
        "given_name": "William",
        "family_name": "Hartley-Pope",
        "former_family_names": ["Quennell"],
        "date_of_birth": "2014-03-07",
        "address": {"lines": ["8 Stanley Street"], "postcode": "ls4 2ab", "la": "383"},
    }
    keys = index_keys(child)
    assert f"n:{nhs_number(1)}" in keys
    # date of birth with the full surname, its parts, the former one, the given name
    assert {"d:2014-03-07:H634", "d:2014-03-07:P100", "d:2014-03-07:Q540",
            "d:2014-03-07:W450"} <= keys
    assert {"y:H634:W450:2014-03", "y:H634:W450:2014-07"} <= keys  # names, year, month|day
    assert "m:H634:0307:W450" in keys  # surname and birthday without the year
    assert any(k.startswith("y:H634:v") for k in keys)  # William's nickname group
    assert "p:LS42AB" in keys  # everyone at the postcode, whatever the names
    assert len(keys) <= 16
    q = query_keys(child)
    assert "d:2014-07-03:H634" in q  # day and month swapped
    assert {"y:W450:H634:2014-03", "m:W450:0307:H634"} <= q  # names transposed


def test_one_name_is_enough() -> None:
    only_family = {"family_name": "Quennell", "date_of_birth": "2014-03-07"}
    only_given = {"given_name": "Orrin", "date_of_birth": "2014-03-07"}
    assert index_keys(only_family) == {"d:2014-03-07:Q540"}
    assert index_keys(only_given) == {"d:2014-03-07:O650"}
    assert index_keys(only_family) & query_keys(dict(only_family, given_name="Orrin"))


@settings(max_examples=300)
@given(children(), st.data())
def test_two_corruptions_at_the_same_address_still_share_a_key(
    record: dict[str, Any], data: st.DataObject
) -> None:
    """Names and date of birth may all be broken at once (a missing given name, a
    mistyped surname, a wrong digit of the date): the postcode still finds the
    record, if the child has not moved. Before form p3 these were created again."""
    assume(record["address"] is not None)
    record = dict(record, nhs_number=None)
    update = dict(record, given_name=None, middle_names=None)
    if data.draw(st.booleans()):
        update["family_name"] = typo(data.draw, record["family_name"])
    else:
        pos = data.draw(st.sampled_from([2, 3, 5, 6, 8, 9]))
        update["date_of_birth"] = _digit_wrong(record, pos, data.draw(st.integers(1, 9)))
    assert index_keys(record) & query_keys(update)
    # The postcode key is what guarantees it (a mistyped surname may keep its soundex).
    postcode_key = "p:" + record["address"]["postcode"].replace(" ", "").upper()
    assert postcode_key in index_keys(record) & query_keys(update)


@settings(max_examples=300)
@given(children(), st.sampled_from(FAMILY), st.sampled_from([2, 3, 5, 6, 8, 9]),
       st.integers(1, 9))
def test_a_shielded_record_is_found_with_a_new_surname_and_a_digit_of_its_date_wrong(
    record: dict[str, Any], new_surname: str, pos: int, digit: int
) -> None:
    """A new surname the record does not know, one digit of the date mistyped (the
    year's, the month's or the day's), at a new address, without an NHS number: no
    ordinary key is shared, and the shielded record's given-name keys find her (form
    p5: the given name as written with the date, one digit of it unknown)."""
    assume(new_surname != record["family_name"])
    record = dict(record, nhs_number=None, middle_names=None)
    wrong = _digit_wrong(record, pos, digit)
    update = dict(record, family_name=new_surname, date_of_birth=wrong, address=None)
    shared = (index_keys(record) | shielded_keys(record)) & query_keys(update)
    assert any(k.startswith("G:") for k in shared), shared


@settings(max_examples=300)
@given(children(), st.sampled_from(FAMILY), st.data())
def test_a_shielded_record_is_found_with_a_new_surname_and_a_slip_of_its_date(
    record: dict[str, Any], new_surname: str, data: st.DataObject
) -> None:
    """A new surname and a date a clerk's slip away that one mistyped digit does not
    reach (a day or a month either side, the 9th as the 10th; the day's or month's
    digits transposed, the 12th as the 21st), at a new address, without an NHS
    number: the update looks up the shielded record's given-name key of each such
    date, and finds her."""
    assume(new_surname != record["family_name"])
    record = dict(record, nhs_number=None, middle_names=None)
    slips = sorted(date_slips(_dob(record).strftime("%Y%m%d")))
    assume(slips)
    slip = data.draw(st.sampled_from(slips))
    update = dict(record, family_name=new_surname, address=None,
                  date_of_birth=f"{slip[:4]}-{slip[4:6]}-{slip[6:]}")
    shared = (index_keys(record) | shielded_keys(record)) & query_keys(update)
    assert any(k.startswith("G:") for k in shared), shared


@settings(max_examples=200)
@given(children(), st.sampled_from(NICKNAMES), st.sampled_from(FAMILY), st.booleans())
def test_a_shielded_record_is_found_with_a_new_surname_and_a_nickname(
    record: dict[str, Any], pair: tuple[str, str], new_surname: str, formal_first: bool
) -> None:
    """A new surname and a nickname (Bill for William, or William for Bill), at a new
    address, without an NHS number: the shielded record's nickname keys find her."""
    assume(new_surname != record["family_name"])
    formal, nick = pair if formal_first else pair[::-1]
    record = dict(record, nhs_number=None, middle_names=None, given_name=formal)
    update = dict(record, given_name=nick, family_name=new_surname, address=None)
    shared = (index_keys(record) | shielded_keys(record)) & query_keys(update)
    assert any(k.startswith("G:") for k in shared), shared


@settings(max_examples=300)
@given(children(), st.sampled_from(FAMILY), st.data())
def test_a_shielded_record_is_found_with_a_new_surname_and_a_given_name_typo(
    record: dict[str, Any], new_surname: str, data: st.DataObject
) -> None:
    """A new surname and one typo in the given name (a letter wrong, missing, added,
    or two swapped: often another Soundex, Oliwia's O400 for Olivia's O410), her
    date of birth, at a new address, without an NHS number: the shielded record's
    typo-variant keys (form p6) find her."""
    assume(new_surname != record["family_name"])
    record = dict(record, nhs_number=None, middle_names=None)
    mistyped = typo(data.draw, record["given_name"].lower())
    assume(mistyped != record["given_name"].lower())
    update = dict(record, given_name=mistyped, family_name=new_surname, address=None)
    shared = (index_keys(record) | shielded_keys(record)) & query_keys(update)
    assert any(k.startswith("T:") for k in shared), shared


@settings(max_examples=200)
@given(children(), st.sampled_from(GIVEN), st.sampled_from(FAMILY), st.booleans())
def test_a_shielded_record_is_found_with_a_new_surname_by_her_middle_name(
    record: dict[str, Any], middle: str, new_surname: str, hers_first: bool
) -> None:
    """A new surname, and the child known by her middle name (or the record made
    under it, the update carrying both), her date of birth, at a new address, without
    an NHS number: the shielded record's middle-name keys (form p7) find her."""
    assume(new_surname != record["family_name"] and middle != record["given_name"])
    record = dict(record, nhs_number=None, middle_names=middle)
    update = dict(record, given_name=middle, middle_names=None, family_name=new_surname,
                  address=None)
    if not hers_first:
        record, update = dict(update, family_name=record["family_name"]), dict(
            record, family_name=new_surname, address=None)
    shared = (index_keys(record) | shielded_keys(record)) & query_keys(update)
    assert any(k.startswith("G:") for k in shared), shared


@given(children(), st.sampled_from(FAMILY), st.integers(-1, 1), st.sampled_from(GIVEN),
       st.booleans())
def test_a_shielded_record_is_found_with_a_new_surname_and_her_date_unknown(
    record: dict[str, Any], new_surname: str, year_out: int, middle: str, by_middle: bool
) -> None:
    """A new surname and a source that knew only her birth year, perhaps a year out (1
    January recorded), at a new address, without an NHS number, her given name or the
    middle name she goes by: her names with her birth year (forms p7, p9) find her."""
    assume(new_surname != record["family_name"] and middle != record["given_name"])
    record = dict(record, nhs_number=None, middle_names=middle)
    update = dict(record, family_name=new_surname, address=None, middle_names=None,
                  given_name=middle if by_middle else record["given_name"],
                  date_of_birth=f"{_dob(record).year + year_out}-01-01")
    shared = (index_keys(record) | shielded_keys(record)) & query_keys(update)
    assert any(k.startswith(("G:", "J:")) for k in shared), shared


@given(children(), st.sampled_from(FAMILY), st.dates(date(2007, 1, 2), date(2025, 12, 31)),
       st.integers(-1, 1))
def test_a_shielded_record_of_unknown_date_is_found_with_a_new_surname_and_her_true_date(
    record: dict[str, Any], new_surname: str, true_date: date, year_out: int
) -> None:
    """Her record holds 1 January (her age assessed, her date not known, perhaps a
    year out); an update under a new surname carries a date of that year or one either
    side: it looks up her given name with 1 January of its year and the years either
    side (forms p8, p9), and finds her."""
    assume(new_surname != record["family_name"] and true_date.timetuple().tm_yday > 1)
    record = dict(record, nhs_number=None, middle_names=None,
                  date_of_birth=f"{true_date.year + year_out}-01-01")
    update = dict(record, family_name=new_surname, address=None,
                  date_of_birth=true_date.isoformat())
    shared = (index_keys(record) | shielded_keys(record)) & query_keys(update)
    assert any(k.startswith("G:") for k in shared), shared


def test_typo_keys_are_narrow() -> None:
    """The given name and each letter dropped, with the exact date: two typos away,
    or another date, shares none."""
    her = {"given_name": "Orrin", "family_name": "Quennell", "date_of_birth": "2014-03-07"}
    typo_keys = {k for k in shielded_keys(her) if k.startswith("T:")}
    assert typo_keys == {"T:orrin:20140307", "T:rrin:20140307", "T:orin:20140307",
                         "T:orrn:20140307", "T:orri:20140307"}
    for other in ({"given_name": "Oran"}, {"given_name": "Orin", "date_of_birth": "2014-03-08"}):
        assert not typo_keys & query_keys(dict(her, family_name="Ibekwe", **other)), other


def test_shielded_given_name_keys_are_seven_and_narrow() -> None:
    """Seven keys of the given name as written (and one of it with her birth year
    alone, which only an update dated 1 January looks up); another given name (even
    one sounding alike or a nickname of it) or a date two digits away (not a slip)
    shares none."""
    her = {"given_name": "Orrin", "family_name": "Quennell", "date_of_birth": "2014-03-07"}
    given_keys = {k for k in shielded_keys(her) if k.startswith(("G:", "J:"))}
    assert given_keys == {"G:orrin:20140307", "G:orrin:20?40307", "G:orrin:201?0307",
                          "G:orrin:2014?307", "G:orrin:20140?07", "G:orrin:201403?7",
                          "G:orrin:2014030?", "J:orrin:2014"}  # no nickname group
    assert "J:orrin:2014" in query_keys(dict(her, date_of_birth="2014-01-01"))
    assert "J:orrin:2014" not in query_keys(her)
    william = {k for k in shielded_keys(dict(her, given_name="William")) if k.startswith("G:v")}
    assert william and all(k.endswith(":20140307") for k in william)
    for other in ({"given_name": "Oran"}, {"date_of_birth": "2014-03-18"},
                  {"date_of_birth": "2014-05-17"}, {"date_of_birth": "2014-03-25"}):
        assert not given_keys & query_keys(dict(her, family_name="Ibekwe", **other)), other


@given(children())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_only_shielded_records_carry_the_shielded_only_kinds(child: dict[str, Any]) -> None:
    """A lookup of a SHIELDED_ONLY kind may go to the PROTECTED copies alone (hub load):
    every shielded key is of those kinds, and no index key is."""
    assert all(k.startswith(SHIELDED_ONLY) for k in shielded_keys(child))
    assert not any(k.startswith(SHIELDED_ONLY) for k in index_keys(child))
