"""Fellegi-Sunter scoring of one update against one stored record.

    s = score(update_child, record_child)          # dicts in the canonical shape
    s.probability                                  # posterior P(same child)
    s.identity_probability                         # names, date of birth, sex only

To score many pairs, prepare each record once and pass the Prepared forms:

    pu = prepare(update_child)
    for rec in candidates: score(pu, prepared_rec)

``score`` also accepts plain dicts and remembers recently prepared ones, so
callers that only hold dicts still avoid most of the normalisation.

identity_weight / identity_probability use the names, the date of birth and sex
only (no address, NHS number, UPN or local authority): what a shielded record
still shows, and what still identifies a child who has moved to a refuge or
whose update carries a different or no NHS number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from math import log2
from typing import Any, NamedTuple

from hub.match.compare import (
    EXACT,
    SWAPPED,
    Prepared,
    compare_address_line,
    compare_dob,
    compare_family,
    compare_given,
    compare_postcode,
    compare_sex,
    identifier_level,
    prepared,
    swap_levels,
)
from hub.match.model import DEFAULT_MODEL, FieldResult, Model, TermFrequencies

__all__ = ["FieldResult", "MatchScore", "probability_of", "score", "score_prepared"]

_LOG2_LIMIT = 1000.0


def probability_of(weight: float) -> float:
    """1 / (1 + 2^-weight), safe for any weight."""
    if weight > _LOG2_LIMIT:
        return 1.0
    if weight < -_LOG2_LIMIT:
        return 0.0
    return 1.0 / (1.0 + 2.0 ** -weight)


class MatchScore(NamedTuple):  # a tuple: one per pair scored, made cheaply
    weight: float  # total log2 weight (without the prior)
    probability: float  # posterior match probability with the prior
    identity_weight: float  # names, date of birth and sex only
    identity_probability: float
    fields: tuple[FieldResult, ...]
    model_version: str

    def level(self, field: str) -> str | None:
        for f in self.fields:
            if f.field == field:
                return f.level
        return None

    def explain(self) -> dict[str, Any]:
        """A JSON-friendly account of the score, for review screens and logs."""
        return {
            "model_version": self.model_version,
            "probability": self.probability,
            "weight": round(self.weight, 3),
            "identity_probability": self.identity_probability,
            "identity_weight": round(self.identity_weight, 3),
            "fields": {f.field: {"level": f.level, "weight": round(f.weight, 3)}
                       for f in self.fields},
        }


def score(
    update: Mapping[str, Any] | Prepared,
    record: Mapping[str, Any] | Prepared,
    model: Model = DEFAULT_MODEL,
    tf: TermFrequencies | None = None,
) -> MatchScore:
    """Score an update's child against a stored record's child (dicts or Prepared)."""
    return score_prepared(prepared(update), prepared(record), model, tf)


def score_prepared(
    u: Prepared, r: Prepared, model: Model = DEFAULT_MODEL, tf: TermFrequencies | None = None
) -> MatchScore:
    nhs_t, upn_t, given_t, family_t, dob_t, sex_t, postcode_t, line_t, la_t, household_t = (
        model.tables)  # in FIELDS order

    given_level = compare_given(u, r)
    swapped = swap_levels(u, r) if given_level != EXACT else None
    if swapped is not None:
        given_level, family_level = swapped
    else:
        family_level = compare_family(u, r)
    given = given_t[given_level]
    family = family_t[family_level]
    if tf is not None:
        if given_level == EXACT:
            given = _tf_result(model, "given_name", u.given, tf.given_u)
        if family_level == EXACT:
            family = _tf_result(model, "family_name", u.family, tf.family_u)
    dob = dob_t[compare_dob(u, r)]
    sex = sex_t[compare_sex(u, r)]
    identity = given.weight + family.weight + dob.weight + sex.weight

    postcode_level = compare_postcode(u, r)
    line_level = compare_address_line(u, r)
    # compare_nhs, compare_upn and compare_la, called straight (a pair at a time).
    nhs = nhs_t[identifier_level(u.nhs, r.nhs)]
    upn = upn_t[identifier_level(u.upn, r.upn)]
    postcode = postcode_t[postcode_level]
    line = line_t[line_level]
    la = la_t[identifier_level(u.la, r.la)]
    if (
        dob.level == EXACT
        and given_level not in _NOT_TWIN
        and family_level in _SAME_FAMILY
        and (postcode_level == EXACT or line_level == EXACT)
    ):
        household = household_t["twin_pattern"]
    else:
        household = household_t["none"]

    total = (
        identity + nhs.weight + upn.weight + postcode.weight + line.weight + la.weight
        + household.weight
    )
    prior = model.prior_weight
    return MatchScore(
        total,
        probability_of(total + prior),
        identity,
        probability_of(identity + prior),
        (nhs, upn, given, family, dob, sex, postcode, line, la, household),
        model.version,
    )


# Given-name levels that do not look like a different child of the same household.
_NOT_TWIN = frozenset({EXACT, SWAPPED, "missing"})
_SAME_FAMILY = frozenset({EXACT, "part"})


def _tf_result(
    model: Model, field: str, key: str, lookup: Callable[[str, float], float]
) -> FieldResult:
    """Exact agreement on a name, with u from the name's frequency."""
    level = model.level(field, EXACT)
    u = lookup(key, level.u)
    return FieldResult(field, EXACT, log2(level.m / min(u, level.m)))
