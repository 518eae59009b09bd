"""Fellegi-Sunter scoring: the cases from domain.md, twins and siblings, identity."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hub.match import DEFAULT_MODEL, Model, TermFrequencies, prepare, score, score_prepared
from hub.match.model import FIELDS, IDENTITY_FIELDS
from hub.nhs import check_digit, is_valid


def nhs_number(n: int) -> str:
    for i in range(n, n + 20):
        nine = f"999{i:06d}"
        check = check_digit(nine)
        if check is not None:
            return nine + str(check)
    raise AssertionError("unreachable")


NHS_A, NHS_B, NHS_C = nhs_number(101), nhs_number(202), nhs_number(303)

CHILD: dict[str, Any] = {
    "nhs_number": NHS_A,
    "upn": None,
    "given_name": "Wilhelmina",
    "middle_names": "Rose",
    "family_name": "Quennell-Abernethy",
    "former_family_names": [],
    "date_of_birth": "2014-03-07",
    "sex": "female",
    "address": {"lines": ["8 Stanley Street"], "town": "Leeds", "postcode": "LS4 2AB",
                "la": "383"},
    "carers": [],
    "education_setting": None,
    "gp_practice": None,
    "services": [],
}
ELSEWHERE = {"lines": ["Flat 3, 12 Quarry Road"], "town": "Manchester", "postcode": "M14 5RT",
             "la": "352"}
WILLIAM = dict(CHILD, given_name="William", middle_names=None, sex="male")


def with_(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    return dict(base or CHILD, **changes)


def test_test_numbers_are_valid() -> None:
    assert all(is_valid(n) and n.startswith("999") for n in (NHS_A, NHS_B, NHS_C))
    assert len({NHS_A, NHS_B, NHS_C}) == 3


def test_exact_same_child() -> None:
    s = score(CHILD, CHILD)
    assert s.probability >= 0.99
    assert s.identity_probability >= 0.99
    assert s.model_version == "default-1"
    assert [f.field for f in s.fields] == list(FIELDS)
    assert s.level("given_name") == s.level("family_name") == s.level("date_of_birth") == "exact"


# One corruption at a time, NHS number agreeing: every one is a confident match.
SINGLE_CORRUPTIONS = {
    "typo in given name": (with_(given_name="Wilhemina"), CHILD, "given_name", "jw94"),
    "day/month swapped": (with_(date_of_birth="2014-07-03"), CHILD, "date_of_birth", "swapped"),
    "nickname": (with_(WILLIAM, given_name="Bill"), WILLIAM, "given_name", "nickname"),
    "names swapped": (
        with_(given_name="Quennell-Abernethy", family_name="Wilhelmina"), CHILD,
        "given_name", "swapped",
    ),
    "one part of a double-barrelled surname": (
        with_(family_name="Quennell"), CHILD, "family_name", "part",
    ),
    "surname part added": (
        with_(family_name="Abernethy"), with_(family_name="Abernethy-Okafor"),
        "family_name", "part",
    ),
    "former surname": (
        with_(family_name="Okafor", former_family_names=["Quennell-Abernethy"]), CHILD,
        "family_name", "former",
    ),
    "moved address": (with_(address=ELSEWHERE), CHILD, "postcode", "disagree"),
    "known by middle name": (with_(given_name="Rose", middle_names=None), CHILD,
                             "given_name", "middle"),
    "typo in family name": (with_(family_name="Featherstone"), with_(family_name="Featherston"),
                            "family_name", "jw94"),
    "one digit of the date of birth": (with_(date_of_birth="2014-03-17"), CHILD,
                                       "date_of_birth", "one_digit"),
}


@pytest.mark.parametrize("case", sorted(SINGLE_CORRUPTIONS))
def test_single_corruption_with_nhs_number_matches(case: str) -> None:
    update, record, field, level = SINGLE_CORRUPTIONS[case]
    s = score(update, record)
    assert s.level(field) == level
    assert s.probability >= 0.99


@pytest.mark.parametrize(
    "case",
    sorted(set(SINGLE_CORRUPTIONS) - {"moved address", "one digit of the date of birth"}),
)
def test_single_name_or_date_corruption_without_nhs_number_still_matches(case: str) -> None:
    """Address agreeing, no NHS number: names, date of birth and address carry it (>= 0.95)."""
    update, record, _, _ = SINGLE_CORRUPTIONS[case]
    s = score(with_(update, nhs_number=None), record)
    assert s.probability >= 0.95


def test_moved_without_nhs_number_is_at_least_worth_review() -> None:
    s = score(with_(address=ELSEWHERE, nhs_number=None), CHILD)
    assert 0.85 <= s.probability
    assert s.identity_probability >= 0.99


def test_identity_ignores_address_and_identifiers() -> None:
    """Exact names and date of birth, a different address and no NHS number:
    a shielded record is still a plausible candidate."""
    update = with_(address=ELSEWHERE, nhs_number=None, upn="A123456789012")
    s = score(update, CHILD)
    assert s.identity_probability >= 0.9
    assert s.identity_weight == pytest.approx(score(CHILD, CHILD).identity_weight)
    ident = sum(f.weight for f in s.fields if f.field in IDENTITY_FIELDS)
    assert s.identity_weight == pytest.approx(ident)
    assert s.weight == pytest.approx(sum(f.weight for f in s.fields))


def test_twins_do_not_match() -> None:
    """Same date of birth, family name and address; different given name and NHS number."""
    twin = with_(given_name="Oyelaran", middle_names=None, nhs_number=NHS_B)
    s = score(twin, CHILD)
    assert s.probability < 0.05
    assert s.level("household") == "twin_pattern"
    assert s.identity_probability < 0.05
    # Even with no NHS number on the update, a twin is not a match.
    assert score(with_(twin, nhs_number=None), CHILD).probability < 0.05
    # Opposite-sex twin.
    assert score(with_(twin, nhs_number=None, sex="male", given_name="Jolyon"),
                 CHILD).probability < 0.05


def test_siblings_do_not_match() -> None:
    sibling = with_(given_name="Ffion", middle_names=None, date_of_birth="2011-09-22",
                    nhs_number=NHS_C)
    assert score(sibling, CHILD).probability < 0.01
    assert score(with_(sibling, nhs_number=None), CHILD).probability < 0.01
    # A sibling whose update carries our child's NHS number by mistake: not a link.
    assert score(with_(sibling, nhs_number=NHS_A), CHILD).probability < 0.95


def test_same_name_and_dob_with_different_nhs_numbers() -> None:
    other = with_(nhs_number=NHS_B, address=ELSEWHERE)
    assert score(other, CHILD).probability < 0.01
    assert score(with_(other, address=None), CHILD).probability < 0.05
    # Same address too: probably one child registered twice; a person decides.
    same_home = score(with_(nhs_number=NHS_B), CHILD)
    assert same_home.probability < 0.95
    nhs = next(f for f in same_home.fields if f.field == "nhs_number")
    assert nhs.level == "disagree"
    assert -20 < nhs.weight < -10  # very strongly against, but finite


def test_nhs_agreement_alone_is_not_enough() -> None:
    """A valid NHS number with everything else different is a data error, not a match."""
    stranger = with_(given_name="Peregrine", middle_names=None, family_name="Marchbanks",
                     date_of_birth="2009-11-30", sex="male", address=ELSEWHERE)
    assert score(stranger, CHILD).probability < 0.5


def test_different_children() -> None:
    other = with_(nhs_number=None, given_name="Dagny", middle_names=None,
                  family_name="Lindqvist", date_of_birth="2016-05-01", address=ELSEWHERE)
    s = score(other, CHILD)
    assert s.probability < 1e-6
    assert s.identity_probability < 1e-6


def test_placeholder_given_name_counts_as_missing() -> None:
    baby = with_(given_name="Baby", nhs_number=None)
    assert score(baby, CHILD).level("given_name") == "missing"


def test_one_name_only() -> None:
    only_family = {"family_name": "Quennell-Abernethy", "date_of_birth": "2014-03-07",
                   "address": CHILD["address"], "sex": "female"}
    s = score(only_family, CHILD)
    assert s.level("given_name") == "missing"
    assert s.probability > 0.9


@pytest.mark.parametrize(
    ("postcode", "level"),
    [("LS4 2AB", "exact"), ("LS4 2ZZ", "sector"), ("LS4 9QQ", "district"),
     ("M1 1AE", "disagree"), (None, "missing")],
)
def test_postcode_levels(postcode: str | None, level: str) -> None:
    update = with_(address={"lines": [], "postcode": postcode})
    assert score(update, CHILD).level("postcode") == level


def test_accepts_dates_and_prepared_forms() -> None:
    as_date = with_(date_of_birth=date(2014, 3, 7))
    assert score(as_date, CHILD) == score(CHILD, CHILD)
    pu, pr = prepare(as_date), prepare(CHILD)
    assert score_prepared(pu, pr) == score(pu, CHILD) == score(CHILD, CHILD)


def test_accents_case_and_punctuation_do_not_matter() -> None:
    a = with_(given_name="ZOË", family_name="O'Brien-Smythe", nhs_number=None)
    b = with_(given_name="zoe", family_name="OBRIEN SMYTHE", nhs_number=None)
    s = score(a, b)
    assert s.level("given_name") == s.level("family_name") == "exact"


def test_term_frequencies_reward_rare_names() -> None:
    counts = {"Smith": 10_000, "Quennell-Abernethy": 1}
    tf = TermFrequencies.from_counts(given={"Wilhelmina": 5, "Olivia": 8_000},
                                     family=counts | {"Other": 990_000})
    rare = score(CHILD, CHILD, tf=tf)
    smith = with_(family_name="Smith")
    common = score(smith, smith, tf=tf)
    flat = score(smith, smith)
    fam = {s: next(f for f in s.fields if f.field == "family_name")
           for s in (rare, common, flat)}
    assert fam[rare].weight > fam[flat].weight > fam[common].weight > 0
    assert rare.identity_weight > common.identity_weight
    # Only exact agreement is adjusted.
    part = score(with_(family_name="Quennell"), CHILD, tf=tf)
    assert part.fields[3] == score(with_(family_name="Quennell"), CHILD).fields[3]
    assert part.fields[3].level == "part"
    assert TermFrequencies.from_dict(json.loads(json.dumps(tf.to_dict()))).to_dict() == \
        tf.to_dict()


def test_term_frequencies_keep_only_names_that_change_a_score() -> None:
    # A long tail of rare names, as a national index has: each is floored as an
    # unseen name is, so leaving them out changes no u and no score.
    family = {f"Rarename{chr(97 + i)}{chr(97 + j)}": 1 + (i * 26 + j) % 40
              for i in range(26) for j in range(26)}
    family |= {"Smith": 12_000, "Quenby": 300, "Other": 1_000_000}
    full = TermFrequencies.from_counts(given={"Olivia": 8_000, "Marigold": 3}, family=family)
    kept = full.for_model(DEFAULT_MODEL)
    assert len(kept.family) < 10 < len(full.family)
    assert (kept.given_total, kept.family_total) == (full.given_total, full.family_total)
    for name in [*full.family, "Nevermet"]:
        flat = DEFAULT_MODEL.level("family_name", "exact").u
        assert kept.family_u(name, flat) == full.family_u(name, flat), name
    for name in [*full.given, "Nevermet"]:
        flat = DEFAULT_MODEL.level("given_name", "exact").u
        assert kept.given_u(name, flat) == full.given_u(name, flat), name
    quenby = with_(nhs_number=None, family_name="Quenby")
    assert score(quenby, quenby, tf=kept) == score(quenby, quenby, tf=full)


def test_name_frequencies_key_names_as_the_scorer_does() -> None:
    # The table is built without the scorer's caches (hub.match.model._key_uncached):
    # its keys must stay the scorer's, or no name would find its frequency.
    from hub.match.model import _key_uncached
    from hub.match.normalise import name_key

    for raw in ("Smith-Jones", "  O'Brien ", "ZOË", "Baby", "UNKNOWN", "de la Cruz", ""):
        assert _key_uncached(raw) == name_key(raw), raw


def test_term_frequencies_from_records() -> None:
    tf = TermFrequencies.from_records([CHILD, CHILD, WILLIAM])
    assert tf.family["quennellabernethy"] == 3
    assert tf.given["wilhelmina"] == 2


def test_model_round_trips_through_json() -> None:
    data = json.loads(json.dumps(DEFAULT_MODEL.to_dict()))
    model = Model.from_dict(data)
    assert model == DEFAULT_MODEL
    assert model.version == "default-1"
    assert score(CHILD, CHILD, model) == score(CHILD, CHILD)
    tweaked = model.with_prior(1e-6, version="local-2")
    assert score(CHILD, CHILD, tweaked).model_version == "local-2"
    assert score(with_(address=ELSEWHERE, nhs_number=None), CHILD, tweaked).probability > \
        score(with_(address=ELSEWHERE, nhs_number=None), CHILD).probability


def test_every_weight_is_finite_and_missing_is_neutral() -> None:
    for comparison in DEFAULT_MODEL.comparisons:
        for level in comparison.levels:
            assert -30 < level.weight < 30, (comparison.field, level.name)
            if level.name == "missing":
                assert level.weight == 0


NAMES = st.sampled_from(["Wilhelmina", "William", "Bill", "Rose", "Oyelaran", "Quennell",
                         "Quennell-Abernethy", "Abernethy", "Smith", "Smyth", None])


@given(
    st.fixed_dictionaries({
        "given_name": NAMES, "family_name": NAMES, "middle_names": NAMES,
        "date_of_birth": st.sampled_from(["2014-03-07", "2014-07-03", "2014-03-17",
                                          "2014-01-01", "2011-09-22"]),
        "sex": st.sampled_from(["female", "male", None]),
        "nhs_number": st.sampled_from([NHS_A, NHS_B, None]),
        "address": st.sampled_from([CHILD["address"], ELSEWHERE, None]),
    }),
    st.fixed_dictionaries({
        "given_name": NAMES, "family_name": NAMES,
        "former_family_names": st.lists(NAMES.filter(bool), max_size=2),
        "date_of_birth": st.sampled_from(["2014-03-07", "2014-03-08", "2015-03-07"]),
        "sex": st.sampled_from(["female", "male", "unknown"]),
        "nhs_number": st.sampled_from([NHS_A, NHS_C, None]),
        "address": st.sampled_from([CHILD["address"], ELSEWHERE, None]),
    }),
)
# A nickname in the transposed pair used to count only when the update was the
# transposed side: "Wilhelmina William" v "Bill Wilhelmina" scored 57.9 one way, 36.3 the other.
@example(
    {"given_name": "Wilhelmina", "family_name": "William", "middle_names": "Wilhelmina",
     "date_of_birth": "2014-03-07", "sex": "female", "nhs_number": NHS_A,
     "address": CHILD["address"]},
    {"given_name": "Bill", "family_name": "Wilhelmina", "former_family_names": [],
     "date_of_birth": "2014-03-07", "sex": "female", "nhs_number": NHS_A,
     "address": CHILD["address"]},
)
def test_scores_are_symmetric_and_bounded(a: dict[str, Any], b: dict[str, Any]) -> None:
    ab, ba = score(a, b), score(b, a)
    assert ab.weight == pytest.approx(ba.weight)
    assert [f.level for f in ab.fields] == [f.level for f in ba.fields]
    assert 0.0 <= ab.probability <= 1.0
    assert 0.0 <= ab.identity_probability <= 1.0


def test_one_edit_in_a_short_name() -> None:
    """Jaro-Winkler punishes a wrong first letter in a short name; one edit does not."""
    ava = with_(given_name="Ava", middle_names=None, nhs_number=None)
    s = score(with_(ava, given_name="Zva"), ava)
    assert s.level("given_name") == "edit1"
    assert s.probability >= 0.95


def test_transposed_names_with_a_typo_or_a_nickname() -> None:
    william = with_(WILLIAM, nhs_number=None, family_name="Quennell")
    typo = with_(william, given_name="Quennel", family_name="William")
    nick = with_(william, given_name="Quennell", family_name="Bill")
    for update in (typo, nick):
        for s in (score(update, william), score(william, update)):
            assert (s.level("given_name"), s.level("family_name")) == ("swapped", "swapped")
            assert s.probability >= 0.95
    # Only one name, in the other field.
    only = with_(william, given_name="Quennell", family_name=None)
    s = score(only, william)
    assert (s.level("given_name"), s.level("family_name")) == ("swapped", "missing")
    # Sharing one name across fields is not a transposition.
    other = with_(william, given_name="Quennell", family_name="Marchbanks")
    assert score(other, william).level("given_name") != "swapped"


def test_a_twins_middle_name_is_not_a_known_as_name() -> None:
    """'Isla Hannah' and 'Olivia Isla' are two children; 'Isla' and 'Olivia Isla' may be one."""
    olivia = with_(given_name="Olivia", middle_names="Isla", nhs_number=None)
    isla = with_(given_name="Isla", middle_names="Hannah", nhs_number=None)
    s = score(isla, olivia)
    assert s.level("given_name") == "disagree"
    assert s.probability < 0.05
    assert score(with_(isla, middle_names=None), olivia).level("given_name") == "middle"
