"""Training the Fellegi-Sunter model from the index itself (pure: no database).

    model = train(records, blocked_pairs, DEFAULT_MODEL, version="trained-...")

* u (P(level | different children)) comes from random pairs of distinct records:
  ``estimate_u``. A level seen fewer than MIN_U_COUNT times in the sample keeps the
  base model's u: a sample of n pairs cannot measure a rate much below 1/n, and the
  rates that matter most (two children sharing a valid NHS number or UPN) are far
  below it. The address fields (postcode, address_line, la) keep the base u
  altogether: those are deliberately *not* random-pair rates but the rates among
  non-matching pairs that already look alike (siblings, twins; see model.py), and
  random-pair values would let an agreeing address outweigh a different given name.
* m (P(level | same child)) comes from expectation-maximisation over blocked
  candidate pairs with u held fixed: ``estimate_m``. Pairs sharing a first element
  (an update and its candidates) form a group holding at most one match; the
  E-step gives each candidate its posterior within the group from the current m,
  u and pi (the share of groups with a match); the M-step re-estimates m per
  level and pi. Judging pairs one by one instead lets twins and siblings, which
  share a date of birth, surname and address, pass for matches. m is a MAP
  estimate: a Dirichlet prior centred on the base model's m, worth M_PSEUDO_COUNT
  pairs, keeps every level above 0. When the pairs hold fewer than MIN_MATCHES
  expected matches (a deduplicated index blocked against itself) EM is not run
  and m comes from the labelled pairs and the base model only.
* Labelled pairs (operators' decisions) enter EM with a fixed posterior of 1 or 0;
  they do not count towards pi or lambda (the share of matches among the blocked
  pairs, reported).
* The prior (per random pair: a property of the population, not of the blocked
  pairs) and the "household" correction (a fixed adjustment, not a field) are kept
  from the base model.

Levels are read from ``score_prepared`` itself, so training always sees exactly
the levels (names swapped, the twin pattern, ...) that scoring uses.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.match.compare import MISSING, Prepared, prepare
from hub.match.model import FIELDS, Comparison, Level, Model
from hub.match.score import score_prepared

#: Probabilities per field and level: field -> level -> probability.
Probabilities = dict[str, dict[str, float]]

#: Fields that are adjustments, not evidence with m and u of their own.
FIXED_FIELDS: frozenset[str] = frozenset({"household"})
#: Fields whose u is deliberately not the random-pair rate (see model.py).
BASE_U_FIELDS: frozenset[str] = frozenset({"postcode", "address_line", "la"})
TRAINED_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if f not in FIXED_FIELDS)

#: A level seen fewer times than this among the random pairs keeps the base u.
MIN_U_COUNT = 5
#: Weight, in pairs, of the base model's m in the EM estimate of m.
M_PSEUDO_COUNT = 20.0
#: EM runs only when the blocked pairs, judged by the base model, hold at least this
#: many expected matches. Otherwise (a deduplicated index blocked against itself)
#: the best candidate of each group is a sibling or a twin, and EM would happily
#: learn "sibling" as the match class; m then comes from the labelled pairs and
#: the base model only.
MIN_MATCHES = 100.0
#: No m or u below this (Level requires both > 0).
FLOOR = 1e-9
#: EM stops when no m moves by more than this and lambda moves by less than
#: LAMBDA_TOLERANCE of itself.
M_TOLERANCE = 1e-6
LAMBDA_TOLERANCE = 1e-6

_FIELD_INDEX = {f: i for i, f in enumerate(FIELDS)}

Pattern = tuple[str, ...]  # levels in FIELDS order


@dataclass(frozen=True)
class Training:
    """A trained model and how it was trained."""

    model: Model
    records: int
    u_pairs: int
    pairs: int
    labelled: int
    iterations: int
    converged: bool
    lambda_: float
    m: Probabilities = field(repr=False)
    u: Probabilities = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.model.version,
            "records": self.records,
            "u_pairs": self.u_pairs,
            "pairs": self.pairs,
            "labelled": self.labelled,
            "iterations": self.iterations,
            "converged": self.converged,
            "lambda": self.lambda_,
            # False when the blocked pairs held too few matches (MIN_MATCHES) to learn m
            "em": self.pairs > 0 and self.lambda_ > 0,
        }


# --- levels -------------------------------------------------------------------------


def pair_levels(a: Prepared, b: Prepared, model: Model) -> Pattern:
    """The level of every field (FIELDS order) for a pair, exactly as scored."""
    return tuple(f.level for f in score_prepared(a, b, model).fields)


class _Preparer:
    """Prepare each record once (by identity); None for records that cannot be."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Any, Prepared | None]] = {}

    def __call__(self, record: Mapping[str, Any] | Prepared) -> Prepared | None:
        if isinstance(record, Prepared):
            return record
        hit = self._cache.get(id(record))
        if hit is not None and hit[0] is record:
            return hit[1]
        try:
            p: Prepared | None = prepare(record)
        except (ValueError, TypeError):
            p = None
        self._cache[id(record)] = (record, p)  # holding the record keeps its id unique
        return p


# --- u ------------------------------------------------------------------------------


def estimate_u(
    records: Sequence[Mapping[str, Any]], model: Model, pairs: int, rng: random.Random
) -> Probabilities:
    """u per field level (non-missing levels, FIXED_FIELDS excluded) from `pairs`
    random pairs of distinct records."""
    prep = _Preparer()
    prepared = [p for p in (prep(r) for r in records) if p is not None]
    counts: dict[str, Counter[str]] = {f: Counter() for f in TRAINED_FIELDS}
    n = len(prepared)
    if n >= 2:
        for _ in range(pairs):
            i, j = rng.sample(range(n), 2)
            levels = pair_levels(prepared[i], prepared[j], model)
            for f in TRAINED_FIELDS:
                level = levels[_FIELD_INDEX[f]]
                if level != MISSING:
                    counts[f][level] += 1
    return {f: _u_of_field(model.comparison(f), counts[f]) for f in TRAINED_FIELDS}


def _u_of_field(comparison: Comparison, counts: Counter[str]) -> dict[str, float]:
    levels = [lv for lv in comparison.levels if lv.name != MISSING]
    base = {lv.name: lv.u for lv in levels}
    if comparison.field in BASE_U_FIELDS:
        return base
    measured = {lv.name for lv in levels if counts[lv.name] >= MIN_U_COUNT}
    if not measured:
        return base
    kept = sum(base[name] for name in base if name not in measured)
    share = max(1.0 - kept, 0.5)  # what the measured levels divide between them
    seen = sum(counts[name] for name in measured)
    out = {}
    for name in base:
        if name in measured:
            out[name] = max(share * counts[name] / seen, FLOOR)
        else:
            out[name] = base[name]
    return out


# --- m by EM -------------------------------------------------------------------------


def _base_m(model: Model) -> Probabilities:
    """The model's m over each field's non-missing levels, normalised to sum to 1."""
    out: Probabilities = {}
    for f in TRAINED_FIELDS:
        levels = [lv for lv in model.comparison(f).levels if lv.name != MISSING]
        total = sum(lv.m for lv in levels)
        out[f] = {lv.name: lv.m / total for lv in levels}
    return out


def _pattern_weight(
    pattern: Pattern, m: Probabilities, u: Probabilities, fixed: Mapping[str, Level]
) -> float:
    w = 0.0
    for f, i in _FIELD_INDEX.items():
        level = pattern[i]
        if f in FIXED_FIELDS:
            w += fixed[f"{f}:{level}"].weight
        elif level != MISSING:
            w += math.log2(m[f][level] / u[f][level])
    return w


class _Groups:
    """Blocked pairs as candidate groups: the pairs sharing a first element (the same
    object) are one update's candidates. Groups with the same multiset of level
    patterns behave identically in EM, so they are counted, not repeated."""

    def __init__(self) -> None:
        self.patterns: list[Pattern] = []
        self._index: dict[Pattern, int] = {}
        self.groups: Counter[tuple[int, ...]] = Counter()
        self.pairs = 0

    def pattern_id(self, pattern: Pattern) -> int:
        i = self._index.get(pattern)
        if i is None:
            i = self._index[pattern] = len(self.patterns)
            self.patterns.append(pattern)
        return i

    @classmethod
    def of(cls, pairs: Iterable[tuple[Any, Any]], model: Model, prep: _Preparer) -> _Groups:
        out = cls()
        by_first: dict[int, list[int]] = {}
        for a, b in pairs:
            pa, pb = prep(a), prep(b)
            if pa is None or pb is None:
                continue
            by_first.setdefault(id(a), []).append(out.pattern_id(pair_levels(pa, pb, model)))
            out.pairs += 1
        for ids in by_first.values():
            out.groups[tuple(sorted(ids))] += 1
        return out


def _group_posteriors(
    ids: tuple[int, ...], weights: Sequence[float], pi: float
) -> list[float]:
    """P(candidate i is the match) for each candidate of one group."""
    log_none = math.log2(1.0 - pi)
    log_each = math.log2(pi / len(ids))
    logs = [log_each + weights[i] for i in ids]
    top = max(log_none, *logs)
    terms = [2.0 ** (x - top) for x in logs]
    total = 2.0 ** (log_none - top) + sum(terms)
    return [t / total for t in terms]


def _expected_matches(
    blocked: _Groups, m: Probabilities, u: Probabilities, fixed: Mapping[str, Level],
    pi: float,
) -> float:
    weights = [_pattern_weight(p, m, u, fixed) for p in blocked.patterns]
    return sum(count * sum(_group_posteriors(ids, weights, pi))
               for ids, count in blocked.groups.items())


def _em(
    blocked: _Groups,
    labelled: Mapping[tuple[Pattern, bool], int],
    model: Model,
    u: Probabilities,
    iterations: int,
    share_start: float,
) -> tuple[Probabilities, float, int, bool]:
    """EM for m with u fixed. Each candidate group (an update and the records it was
    blocked with) holds at most one match: with probability pi one of its n
    candidates, each a priori equally likely, else none. So a twin's record does
    not count as a match when the child's own record is among the candidates, as it
    would if every blocked pair were judged on its own. Returns m, the share of
    matches among the blocked pairs, the iterations run and whether EM converged."""
    base = _base_m(model)
    fixed = {
        f"{f}:{lv.name}": lv for f in FIXED_FIELDS for lv in model.comparison(f).levels
    }
    m = {f: dict(levels) for f, levels in base.items()}
    pi = min(max(share_start, 1e-9), 1.0 - 1e-9)
    if _expected_matches(blocked, m, u, fixed, pi) < MIN_MATCHES:
        blocked = _Groups()  # too few matches to learn from: labelled pairs only
    n_groups = sum(blocked.groups.values())
    matches = 0.0
    done = 0
    converged = False
    for done in range(1, iterations + 1):  # noqa: B007 (returned)
        # E-step: the expected number of matches with each pattern.
        weights = [_pattern_weight(p, m, u, fixed) for p in blocked.patterns]
        expected = [0.0] * len(blocked.patterns)
        matched_groups = 0.0
        for ids, count in blocked.groups.items():
            for i, post in zip(ids, _group_posteriors(ids, weights, pi), strict=True):
                e = count * post
                expected[i] += e
                matched_groups += e
        matches = matched_groups
        # M-step: m per level (MAP, Dirichlet prior at the base m) and pi.
        sums: dict[str, dict[str, float]] = {f: {} for f in TRAINED_FIELDS}
        contributions = list(zip(blocked.patterns, expected, strict=True)) + [
            (pattern, float(count)) for (pattern, same), count in labelled.items() if same
        ]
        for pattern, e in contributions:
            for f in TRAINED_FIELDS:
                level = pattern[_FIELD_INDEX[f]]
                if level != MISSING:
                    sums[f][level] = sums[f].get(level, 0.0) + e
        new_m: Probabilities = {}
        for f in TRAINED_FIELDS:
            total_f = sum(sums[f].values())
            new_m[f] = {
                level: max(
                    (sums[f].get(level, 0.0) + M_PSEUDO_COUNT * b) / (total_f + M_PSEUDO_COUNT),
                    FLOOR,
                )
                for level, b in base[f].items()
            }
        new_pi = min(max(matched_groups / n_groups, 1e-9), 1.0 - 1e-9) if n_groups else pi
        if not blocked.groups:  # labelled pairs only: one M-step is the estimate
            m, converged = new_m, True
            break
        delta = max(abs(new_m[f][lv] - m[f][lv]) for f in m for lv in m[f])
        pi_delta = abs(new_pi - pi) / pi
        m, pi = new_m, new_pi
        if delta < M_TOLERANCE and pi_delta < LAMBDA_TOLERANCE:
            converged = True
            break
    share = matches / blocked.pairs if blocked.pairs else 0.0
    return m, share, done, converged


def estimate_m(
    pairs: Sequence[tuple[Prepared, Prepared]],
    model: Model,
    u: Probabilities,
    iterations: int = 20,
    prior_start: float = 0.5,
) -> tuple[Probabilities, float]:
    """EM over blocked candidate pairs with u fixed: m per field level (non-missing
    levels, FIXED_FIELDS excluded) and the estimated share of matches among the
    pairs. Pairs whose first element is the same object are one update's candidates
    (at most one is its match); `prior_start` is the starting share of updates
    that have a match among their candidates. `model` gives the starting m, the
    prior for m and the fixed adjustments."""
    m, share, _, _ = _em(_Groups.of(pairs, model, _Preparer()), {}, model, u, iterations,
                         prior_start)
    return m, share


# --- the model --------------------------------------------------------------------------


def build_model(
    base: Model, m: Probabilities, u: Probabilities, version: str, description: str = ""
) -> Model:
    """`base` with new m and u for the trained fields; missing levels, fixed fields
    and the prior unchanged."""
    comparisons = []
    for c in base.comparisons:
        if c.field in FIXED_FIELDS or c.field not in m:
            comparisons.append(c)
            continue
        comparisons.append(Comparison(c.field, tuple(
            lv if lv.name == MISSING else Level(lv.name, m[c.field][lv.name], u[c.field][lv.name])
            for lv in c.levels
        )))
    return Model(version, base.prior, tuple(comparisons), description or base.description)


def fit(
    records: Sequence[Mapping[str, Any]],
    blocked_pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    base: Model,
    version: str,
    rng_seed: int = 0,
    labelled: Sequence[tuple[Mapping[str, Any], Mapping[str, Any], bool]] = (),
    *,
    u_pairs: int = 50_000,
    iterations: int = 20,
    prior_start: float = 0.5,
) -> Training:
    """Train and report: u from random pairs of `records`, m by EM over
    `blocked_pairs` (anchored by `labelled`: True = same child)."""
    prep = _Preparer()
    u = estimate_u(records, base, u_pairs, random.Random(rng_seed))
    blocked = _Groups.of(blocked_pairs, base, prep)
    fixed: Counter[tuple[Pattern, bool]] = Counter()
    for a, b, same in labelled:
        pa, pb = prep(a), prep(b)
        if pa is not None and pb is not None:
            fixed[(pair_levels(pa, pb, base), bool(same))] += 1
    m, lam, done, converged = _em(blocked, fixed, base, u, iterations, prior_start)
    n_pairs, n_labelled = blocked.pairs, sum(fixed.values())
    description = (
        f"Trained from {base.version}: u from {u_pairs} random pairs of {len(records)}"
        f" records, m by EM over {n_pairs} blocked pairs and {n_labelled} labelled"
        f" ({done} iterations, lambda {lam:.4g}); prior and household correction kept."
    )
    model = build_model(base, m, u, version, description)
    return Training(model, len(records), u_pairs, n_pairs, n_labelled, done, converged,
                    lam, m, u)


def train(
    records: Sequence[Mapping[str, Any]],
    blocked_pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    base: Model,
    version: str,
    rng_seed: int = 0,
    labelled: Sequence[tuple[Mapping[str, Any], Mapping[str, Any], bool]] = (),
) -> Model:
    """A new model named `version`: the base's structure, prior and fixed adjustments,
    with u from random pairs of `records` and m by EM over `blocked_pairs`."""
    return fit(records, blocked_pairs, base, version, rng_seed, labelled).model
