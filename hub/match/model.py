"""The Fellegi-Sunter match model: m and u probabilities per field level, and a prior.

For each field, a pair of records falls into exactly one *level* ("exact",
"nickname", "disagree", ...). Each level has

* m = P(level | the two records are the same child)
* u = P(level | they are two different children)

and contributes weight log2(m/u). The weights of all fields add up; with the
prior match probability the posterior is

    probability = 1 / (1 + 2 ** -(total_weight + log2(prior / (1 - prior))))

"missing" levels have m = u, weight 0: an absent field is no evidence either way.

The prior
---------
The u values below are the chance that two *random* different children agree,
so the consistent prior is the chance that two random records are the same
child: one in the size of the population an update may be about, the children
of England (about 11 million). DEFAULT_MODEL uses 1e-7 (log2 prior odds -23.25),
whatever the current size of the index: an update about a child who is not yet
indexed is just as likely as before. With it, names + date of birth + sex alone
give 0.99 for typical names; a valid NHS number agreeing on its own just cancels
the prior (so it needs the date of birth, as in PDS tracing, to make a match).

Deliberate departures from "random pair" u values (conditional dependence)
--------------------------------------------------------------------------
Fellegi-Sunter assumes fields are independent given non-match. For children that
fails most where it matters: twins and siblings share family name, address and
local authority, and twins share the date of birth. So:

* address levels (postcode, first line, local authority) use u values near the
  rate at which *non-matching pairs that already look alike* share an address
  (siblings, cousins, twins), not the 1-in-a-million random rate. A whole address
  agreeing is worth about +7.8, less than a given name; a move (all three
  disagree) about -3.2, since it is one event, not three. These u values are
  tuned as a group and are not probabilities of anything on their own;
* a given name that disagrees is strong evidence against (-8.3): a child's first
  name rarely changes between sources once nicknames, middle names, spelling and
  phonetic variants are allowed for;
* "household" is a correction, not a field: when the date of birth agrees
  exactly, the family name agrees and the address agrees but the given names are
  not the same, the pair looks like twins, whose number among non-matches is
  about 16 times what independence predicts. Its "twin_pattern" level carries
  that factor (m/u = 1/16, weight -4).

The m/u values are considered judgements, set before any training, chosen so
that each field's m (and u) over its non-missing levels add up to about 1.
They are plain data: ``to_dict``/``from_dict`` round-trip through JSON so a
trained model can be stored in Postgres with its version.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from hub.match.normalise import PLACEHOLDER_NAMES, name_key, normalise_name

FIELDS: tuple[str, ...] = (
    "nhs_number", "upn", "given_name", "family_name", "date_of_birth", "sex",
    "postcode", "address_line", "la", "household",
)
# The fields of identity_weight: what a shielded record still shows.
IDENTITY_FIELDS: frozenset[str] = frozenset({"given_name", "family_name", "date_of_birth", "sex"})
# The fields that compare addresses ("household" asks whether the address agrees):
# what a viewer who may not see a shielded record's address may not see of its score.
ADDRESS_FIELDS: frozenset[str] = frozenset({"postcode", "address_line", "la", "household"})


@dataclass(frozen=True, slots=True)  # one read per field of every pair scored
class FieldResult:
    field: str
    level: str
    weight: float


@dataclass(frozen=True)
class Level:
    name: str
    m: float
    u: float

    def __post_init__(self) -> None:
        if not (0.0 < self.m <= 1.0) or not (0.0 < self.u <= 1.0):
            raise ValueError(f"level {self.name}: m and u must be in (0, 1]")

    @property
    def weight(self) -> float:
        return math.log2(self.m / self.u)


@dataclass(frozen=True)
class Comparison:
    field: str
    levels: tuple[Level, ...]

    def level(self, name: str) -> Level:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(f"{self.field} has no level {name!r}")


@dataclass(frozen=True)
class Model:
    version: str
    prior: float
    comparisons: tuple[Comparison, ...]
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.prior < 1.0:
            raise ValueError("prior must be strictly between 0 and 1")
        missing = set(FIELDS) - {c.field for c in self.comparisons}
        if missing:
            raise ValueError(f"model lacks fields: {sorted(missing)}")

    # -- lookups (cached: the model is immutable) --

    @cached_property
    def prior_weight(self) -> float:
        """log2 prior odds."""
        return math.log2(self.prior / (1.0 - self.prior))

    @cached_property
    def results(self) -> dict[str, dict[str, FieldResult]]:
        """field -> level -> the (shared) FieldResult for that level."""
        return {
            c.field: {lv.name: FieldResult(c.field, lv.name, lv.weight) for lv in c.levels}
            for c in self.comparisons
        }

    @cached_property
    def tables(self) -> tuple[dict[str, FieldResult], ...]:
        """`results` for each of FIELDS, in that order (scoring unpacks them at once)."""
        return tuple(self.results[f] for f in FIELDS)

    @cached_property
    def _levels(self) -> dict[tuple[str, str], Level]:
        return {(c.field, lv.name): lv for c in self.comparisons for lv in c.levels}

    def comparison(self, field_name: str) -> Comparison:
        for c in self.comparisons:
            if c.field == field_name:
                return c
        raise KeyError(field_name)

    def level(self, field_name: str, level: str) -> Level:
        try:
            return self._levels[(field_name, level)]
        except KeyError:
            raise KeyError(f"{field_name} has no level {level!r}") from None

    def weight(self, field_name: str, level: str) -> float:
        return self.results[field_name][level].weight

    def with_prior(self, prior: float, version: str | None = None) -> Model:
        return Model(version or self.version, prior, self.comparisons, self.description)

    # -- storage --

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "prior": self.prior,
            "description": self.description,
            "comparisons": {
                c.field: [{"level": lv.name, "m": lv.m, "u": lv.u} for lv in c.levels]
                for c in self.comparisons
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Model:
        comparisons = tuple(
            Comparison(
                str(name),
                tuple(Level(str(lv["level"]), float(lv["m"]), float(lv["u"])) for lv in levels),
            )
            for name, levels in data["comparisons"].items()
        )
        return cls(
            str(data["version"]), float(data["prior"]), comparisons,
            str(data.get("description", "")),
        )


def _c(name: str, *levels: tuple[str, float, float]) -> Comparison:
    return Comparison(name, tuple(Level(n, m, u) for n, m, u in levels))


_MISSING = ("missing", 1.0, 1.0)

DEFAULT_MODEL = Model(
    version="default-1",
    prior=1e-7,
    description="Hand-set m/u before training; prior 1e-7 (about 1 / children in England).",
    comparisons=(
        # A valid NHS number is issued once: agreement is near-conclusive (+23.3,
        # which with the date of birth makes a match). Two different valid numbers
        # are almost never the same child (duplicate registrations: ~1 in 5000),
        # -12.3, finite so that everything else agreeing can still reach review.
        _c("nhs_number", ("agree", 0.9998, 1e-7), ("disagree", 0.0002, 0.9999999), _MISSING),
        # Unique pupil number (DfE): lifelong but re-issued by mistake now and then.
        _c("upn", ("agree", 0.97, 1e-6), ("disagree", 0.03, 0.999999), _MISSING),
        _c(
            "given_name",
            ("exact", 0.872, 0.004),  # +7.8 (term frequencies replace u)
            ("swapped", 0.01, 0.0001),  # given <-> family transposed: +6.6 each side
            ("nickname", 0.05, 0.002),  # Bill / William: +4.6
            ("middle", 0.01, 0.001),  # known by a middle name, "Mary" / "Mary Jane": +3.3
            ("jw94", 0.03, 0.003),  # a typo: +3.3
            ("edit1", 0.015, 0.003),  # one edit, Jaro-Winkler below 0.94 ("Zva"/"Ava"): +2.3
            ("jw88", 0.01, 0.02),  # -1: as common between different children
            ("phonetic", 0.01, 0.02),  # -1: soundex/metaphone buckets are broad
            ("disagree", 0.003, 0.948),  # -8.3
            _MISSING,
        ),
        _c(
            "family_name",
            ("exact", 0.80, 0.002),  # +8.6 (term frequencies replace u)
            ("swapped", 0.01, 0.0001),  # +6.6
            ("part", 0.04, 0.0005),  # Smith / Smith-Jones: +6.3
            ("former", 0.04, 0.0005),  # agrees with a recorded former name: +6.3
            ("jw94", 0.04, 0.002),  # +4.3
            ("edit1", 0.01, 0.001),  # one edit, Jaro-Winkler below 0.94: +3.3
            ("jw88", 0.01, 0.01),  # 0
            ("phonetic", 0.01, 0.01),  # 0
            ("disagree", 0.05, 0.9745),  # -4.3: surnames change (new partner, adoption)
            _MISSING,
        ),
        _c(
            "date_of_birth",
            ("exact", 0.95, 1.5e-4),  # +12.6: ~6,600 birthdays in 18 years
            ("swapped", 0.015, 1.5e-4),  # day/month swapped, same year: +6.6
            ("one_digit", 0.02, 0.003),  # one digit wrong or two adjacent transposed: +2.7
            ("jan1", 0.003, 5e-4),  # unknown day/month recorded as 1 January: +2.6
            ("year_month", 0.005, 0.004),  # +0.3
            ("disagree", 0.007, 0.99),  # -7.1
        ),
        _c("sex", ("agree", 0.975, 0.5), ("disagree", 0.025, 0.5), _MISSING),
        _c(
            "postcode",
            ("exact", 0.70, 0.02),  # +5.1 (household rate, see module notes)
            ("sector", 0.08, 0.02),  # +2.0
            ("district", 0.05, 0.03),  # +0.7
            ("disagree", 0.17, 0.93),  # -2.5: children move
            _MISSING,
        ),
        # First line and local authority mostly restate what the postcode says: a
        # move shows in all three, so their disagreement weights are small (the
        # three together give about -3.2 for a move, close to log2 P(moved)).
        _c(
            "address_line",
            ("exact", 0.60, 0.15),  # +2.0: same dwelling, not just the same postcode
            ("jw90", 0.10, 0.05),  # +1.0
            ("disagree", 0.30, 0.40),  # -0.4
            _MISSING,
        ),
        _c("la", ("agree", 0.80, 0.5), ("disagree", 0.20, 0.25), _MISSING),  # +0.7 / -0.3
        _c("household", ("twin_pattern", 0.0625, 1.0), ("none", 1.0, 1.0)),
    ),
)


# --- term frequencies -----------------------------------------------------------

# Pseudo-count that shrinks the frequency of names seen rarely towards the model's
# flat u, and the smallest u allowed (a name shared by ~500 children in England):
# a name that is unique in a small index is not unique in the country.
TF_PSEUDO_COUNT = 1000.0
TF_MIN_U = 5e-5


@dataclass(frozen=True, eq=False)
class TermFrequencies:
    """How common each given and family name is (counts by normalised name key).

    On exact agreement of a name, u becomes the name's frequency: agreeing on a
    rare surname counts for more than agreeing on "Smith". Built from the index
    (``from_records``) or from counts; frequencies are smoothed towards the
    model's flat u with TF_PSEUDO_COUNT and floored at TF_MIN_U.
    """

    given: Mapping[str, int]
    family: Mapping[str, int]
    # (given, family) names counted in all, when the mappings keep only some (`for_model`)
    totals: tuple[int, int] | None = None

    @cached_property
    def given_total(self) -> int:
        return self.totals[0] if self.totals else sum(self.given.values())

    @cached_property
    def family_total(self) -> int:
        return self.totals[1] if self.totals else sum(self.family.values())

    def for_model(self, model: Model) -> TermFrequencies:
        """The same u for every name under `model`, keeping only the names whose u is
        above TF_MIN_U. u grows with a name's count and every name left out (the
        long tail: at 1,000,000 children, names seen fewer than about 45 times) is
        floored as an unseen one is, so a worker's table stops growing with the index."""
        def above_floor(counts: Mapping[str, int], total: int, field: str) -> dict[str, int]:
            flat_u = model.level(field, "exact").u
            return {k: n for k, n in counts.items() if _tf_u(n, total, flat_u) > TF_MIN_U}

        return TermFrequencies(
            above_floor(self.given, self.given_total, "given_name"),
            above_floor(self.family, self.family_total, "family_name"),
            (self.given_total, self.family_total),
        )

    @classmethod
    def from_counts(
        cls, given: Mapping[str, int], family: Mapping[str, int]
    ) -> TermFrequencies:
        """From raw names and their counts (names are normalised and merged)."""
        return cls(_merge(given), _merge(family))

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> TermFrequencies:
        given: dict[str, int] = {}
        family: dict[str, int] = {}
        for rec in records:
            g, f = name_key(rec.get("given_name")), name_key(rec.get("family_name"))
            if g:
                given[g] = given.get(g, 0) + 1
            if f:
                family[f] = family.get(f, 0) + 1
        return cls(given, family)

    def given_u(self, key: str, flat_u: float) -> float:
        return _tf_u(self.given.get(key, 0), self.given_total, flat_u)

    def family_u(self, key: str, flat_u: float) -> float:
        return _tf_u(self.family.get(key, 0), self.family_total, flat_u)

    def to_dict(self) -> dict[str, Any]:
        return {"given": dict(self.given), "family": dict(self.family)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TermFrequencies:
        return cls(
            {str(k): int(v) for k, v in data.get("given", {}).items()},
            {str(k): int(v) for k, v in data.get("family", {}).items()},
        )


def _key_uncached(raw: str) -> str:
    """name_key without its cache: the index's tens of thousands of names would
    otherwise fill the caches the scorer needs for the names it meets."""
    key = normalise_name.__wrapped__(raw).replace(" ", "")  # type: ignore[attr-defined]
    return "" if key in PLACEHOLDER_NAMES else key


def _merge(counts: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, n in counts.items():
        key = _key_uncached(name)
        if key:
            out[key] = out.get(key, 0) + int(n)
    return out


def _tf_u(count: int, total: int, flat_u: float) -> float:
    u = (count + TF_PSEUDO_COUNT * flat_u) / (total + TF_PSEUDO_COUNT)
    return max(u, TF_MIN_U)
