"""Canonical updates from a synthetic population: the initial load and a central feed.

Every update is a plain JSON-serialisable dict in the contract's canonical shape
(`source`, `source_record_id`, `source_version`, `kind`, `child`), dates as
"YYYY-MM-DD", and only keys the canonical model knows. The feed carries its own
ground truth so a run of the hub can be scored afterwards.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.nhs import check_digit
from hub.synth.corrupt import KIND_WEIGHTS, applicable_kinds, corrupt
from hub.synth.data import tree_copy
from hub.synth.population import Person, Population

#: (source, source_record_id)
RecordKey = tuple[str, str]
#: (source, source_record_id, source_version)
VersionKey = tuple[str, str, int]

_NAMES_DOB_SEX = (
    "given_name",
    "middle_names",
    "family_name",
    "former_family_names",
    "date_of_birth",
    "sex",
)
#: What each source knows about a child.
SOURCE_FIELDS: dict[str, tuple[str, ...]] = {
    "la": (
        "nhs_number",
        "upn",
        *_NAMES_DOB_SEX,
        "address",
        "carers",
        "education_setting",
        "gp_practice",
        "services",
    ),
    "dwp": ("nhs_number", *_NAMES_DOB_SEX, "address", "carers"),
    "pds": ("nhs_number", *_NAMES_DOB_SEX, "address", "gp_practice"),
    "dfe": ("upn", *_NAMES_DOB_SEX, "address", "education_setting"),
}
#: How often a source's record of a child carries the NHS number.
NHS_KNOWN: dict[str, float] = {"la": 1.0, "dwp": 0.6, "pds": 1.0, "dfe": 0.0}
_ID_FORMAT: dict[str, str] = {"dwp": "CB-{:06d}", "pds": "PDS-{:07d}", "dfe": "DFE-{:06d}"}

#: Reasons (as hub.validate reports them) of the invalid records a feed contains.
INVALID_REASONS: tuple[str, ...] = (
    "invalid_nhs_number",
    "invalid_date_of_birth",
    "unknown_field",
    "missing_name",
)


@dataclass
class Feed:
    #: Canonical updates in arrival order (shuffled across sources).
    updates: list[dict[str, Any]]
    #: Which person each source record is about; None for invalid records.
    truth: dict[RecordKey, str | None]
    #: The corruptions applied to each version of a record ([] when clean). A refuge
    #: move of a shielded child is recorded as "moved".
    kinds: dict[VersionKey, list[str]]
    #: Versions that the hub must reject, and the reason it should give.
    invalid: set[VersionKey] = field(default_factory=set)
    invalid_reasons: dict[VersionKey, str] = field(default_factory=dict)
    #: Versions sent twice (identical bodies).
    duplicates: set[VersionKey] = field(default_factory=set)
    #: Records whose later version arrives before the earlier one.
    out_of_order: set[RecordKey] = field(default_factory=set)
    #: Versions about shielded children (all carry the refuge address).
    shielded: set[VersionKey] = field(default_factory=set)
    #: Records about new births, which no initial load knows: they should be creates.
    births: set[RecordKey] = field(default_factory=set)

    def person_of(self, update: dict[str, Any]) -> str | None:
        return self.truth.get((update["source"], update["source_record_id"]))

    @property
    def valid_updates(self) -> list[dict[str, Any]]:
        return [u for u in self.updates if _vkey(u) not in self.invalid]


def _vkey(update: dict[str, Any]) -> VersionKey:
    return (update["source"], update["source_record_id"], update["source_version"])


def _update(source: str, record_id: str, version: int, child: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": source,
        "source_record_id": record_id,
        "source_version": version,
        "kind": "upsert",
        "child": child,
    }


def initial_load(pop: Population, source: str = "la") -> list[dict[str, Any]]:
    """One clean, full update per child (not the new births), version 1, from the
    local authorities' systems; the record id is the child's `la_record_id`."""
    out = []
    for person in pop.children:
        assert person.la_record_id is not None
        out.append(_update(source, person.la_record_id, 1, person.to_child()))
    return out


def initial_truth(pop: Population, source: str = "la") -> dict[RecordKey, str]:
    """Ground truth of `initial_load`: (source, record id) -> person_id."""
    return {
        (source, p.la_record_id): p.person_id for p in pop.children if p.la_record_id is not None
    }


class _Ids:
    """Source-specific record ids, unrelated to person order."""

    def __init__(self, rng: random.Random, pop: Population, sources: Sequence[str]) -> None:
        order = [p.person_id for p in pop.everyone]
        rng.shuffle(order)
        self.counters: Counter[str] = Counter()
        self.ids: dict[tuple[str, str], str] = {}
        self.pop = pop
        for source in sources:
            if source == "la":
                continue
            for pid in order:
                self.ids[(source, pid)] = self.fresh(source, None)

    def fresh(self, source: str, person: Person | None) -> str:
        self.counters[source] += 1
        k = self.counters[source]
        if source == "la":
            la = person.la if person else "000"
            return f"LA-{la}-{900000 + k:06d}"
        fmt = _ID_FORMAT.get(source, source.upper() + "-{:06d}")
        return fmt.format(k)

    def of(self, source: str, person: Person) -> str | None:
        if source == "la":
            return person.la_record_id
        return self.ids[(source, person.person_id)]


def _child_for(
    source: str, person: Person, pop: Population, *, refuge: bool, knows_nhs: bool
) -> dict[str, Any]:
    full = person.to_child()
    if refuge:
        fam = pop.family_of(person)
        full["address"] = tree_copy(fam.refuge_address)
        full["gp_practice"] = tree_copy(fam.refuge_gp_practice)
    child = {k: full[k] for k in SOURCE_FIELDS[source]}
    if "nhs_number" in child and not knows_nhs:
        child["nhs_number"] = None
    return child


def _corrupt_some(
    child: dict[str, Any],
    rng: random.Random,
    rate: float,
    pop: Population,
    exclude: Iterable[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    kinds: list[str] = []
    if rng.random() >= rate:
        return child, kinds
    excluded = set(exclude)
    for _ in range(1 if rng.random() < 0.8 else 2):
        options = [
            k for k in applicable_kinds(child, pop.as_of) if k not in excluded and k not in kinds
        ]
        if not options:
            break
        kind = rng.choices(options, weights=[KIND_WEIGHTS[k] for k in options])[0]
        child = corrupt(child, kind, rng, as_of=pop.as_of)
        kinds.append(kind)
    return child, kinds


def _school_age(person: Person) -> bool:
    return person.education_setting is not None


def central_feed(
    pop: Population,
    seed: int,
    sources: Sequence[str] = ("dwp", "pds"),
    update_rate: float = 0.5,
    corruption_rate: float = 0.3,
    *,
    version2_rate: float = 0.15,
    duplicate_rate: float = 0.01,
    out_of_order_rate: float = 0.25,
    invalid_count: int | None = None,
    restricted_rate: float = 0.0,
) -> Feed:
    """Updates from national sources about the population.

    - each (child, source) pair gets a record with probability `update_rate`
      (the DfE only knows children with an education setting); some records have
      a second (or third) version, each version independently corrupted with
      probability `corruption_rate`;
    - every new birth gets a record (PDS always when it is a source, DWP often);
    - every shielded child gets exactly one record carrying the family's refuge
      address (and, for PDS, the refuge GP practice): alternately with and without
      the NHS number, PDS preferred for the former and DWP for the latter;
    - a few duplicates, out-of-order versions and invalid records (one of each
      reason in INVALID_REASONS at least; `invalid_count` to choose how many);
    - `restricted_rate`: the fraction of PDS records about shielded children that
      arrive flagged `restricted` (as an S-flagged PDS patient would). 0 by default.
    """
    unknown = [s for s in sources if s not in SOURCE_FIELDS]
    if unknown:
        raise ValueError(f"unknown source(s): {', '.join(unknown)}")
    if not sources:
        raise ValueError("need at least one source")
    rng = random.Random(f"central-feed:{seed}:{pop.seed}")
    ids = _Ids(rng, pop, sources)
    updates: list[dict[str, Any]] = []
    feed = Feed(updates=updates, truth={}, kinds={})

    def emit(
        source: str,
        person: Person,
        *,
        refuge: bool = False,
        knows_nhs: bool | None = None,
        versions: int = 1,
        drop_nhs_kind: bool = False,
    ) -> None:
        record_id = ids.of(source, person)
        if record_id is None:
            return
        if knows_nhs is None:
            knows_nhs = rng.random() < NHS_KNOWN[source]
        feed.truth[(source, record_id)] = person.person_id
        if person.newborn:
            feed.births.add((source, record_id))
        for version in range(1, versions + 1):
            child = _child_for(source, person, pop, refuge=refuge, knows_nhs=knows_nhs)
            exclude = ("moved", "missing_nhs") if refuge else ()
            child, kinds = _corrupt_some(child, rng, corruption_rate, pop, exclude)
            if refuge:
                kinds = ["moved", *kinds]
                if drop_nhs_kind:
                    kinds.append("missing_nhs")
            update = _update(source, record_id, version, child)
            if refuge and source == "pds" and restricted_rate and rng.random() < restricted_rate:
                update["restricted"] = True
            key = (source, record_id, version)
            feed.kinds[key] = kinds
            if refuge:
                feed.shielded.add(key)
            updates.append(update)

    def n_versions() -> int:
        roll = rng.random()
        if roll < version2_rate * 0.15:
            return 3
        return 2 if roll < version2_rate else 1

    # Ordinary children.
    for person in pop.children:
        if person.shielded:
            continue
        for source in sources:
            if source == "dfe" and not _school_age(person):
                continue
            if rng.random() < update_rate:
                emit(source, person, versions=n_versions())

    # New births: PDS registers them, DWP hears of most through a child benefit claim.
    birth_sources = [s for s in sources if s in ("pds", "dwp")]
    for person in pop.births:
        chosen = [s for s in birth_sources if s == "pds" or rng.random() < 0.75]
        if not chosen and birth_sources:
            chosen = [birth_sources[0]]
        for source in chosen:
            knows = True if source == "pds" else rng.random() < 0.3
            emit(source, person, knows_nhs=knows, versions=n_versions())

    # Shielded children: a central feed hears of their move to a refuge.
    shielded = list(pop.shielded_children)
    rng.shuffle(shielded)
    nhs_sources = [s for s in sources if "nhs_number" in SOURCE_FIELDS[s]]
    for i, person in enumerate(shielded):
        with_nhs = i % 2 == 0
        if with_nhs:
            source = "pds" if "pds" in sources else (nhs_sources or list(sources))[0]
        else:
            source = "dwp" if "dwp" in sources else rng.choice(list(sources))
        if source == "dfe" and not _school_age(person):
            continue
        knows = with_nhs and "nhs_number" in SOURCE_FIELDS[source]
        drop_kind = not with_nhs and NHS_KNOWN[source] >= 1.0
        emit(
            source,
            person,
            refuge=True,
            knows_nhs=knows,
            versions=n_versions(),
            drop_nhs_kind=drop_kind,
        )

    # Duplicates: the same body twice.
    if updates and duplicate_rate > 0:
        count = max(1, round(len(updates) * duplicate_rate))
        for idx in sorted(rng.sample(range(len(updates)), min(count, len(updates)))):
            dup = tree_copy(updates[idx])
            feed.duplicates.add(_vkey(dup))
            updates.append(dup)

    # Invalid records, each under a record id of its own.
    n_invalid = invalid_count
    if n_invalid is None:
        n_invalid = max(len(INVALID_REASONS), round(len(updates) * 0.002))
    donors = [p for p in pop.children if not p.shielded] or pop.children
    for i in range(n_invalid if donors else 0):
        reason = INVALID_REASONS[i % len(INVALID_REASONS)]
        source = sources[i % len(sources)]
        person = rng.choice(donors)
        child = _child_for(source, person, pop, refuge=False, knows_nhs=True)
        _break(child, reason, person, rng)
        record_id = ids.fresh(source, person)
        update = _update(source, record_id, 1, child)
        key = _vkey(update)
        feed.truth[(source, record_id)] = None
        feed.kinds[key] = []
        feed.invalid.add(key)
        feed.invalid_reasons[key] = reason
        updates.append(update)

    rng.shuffle(updates)
    _order_versions(updates, feed, rng, out_of_order_rate)
    return feed


def _break(child: dict[str, Any], reason: str, person: Person, rng: random.Random) -> None:
    if reason == "invalid_nhs_number":
        nine = person.nhs_number[:9]
        good = check_digit(nine)
        child["nhs_number"] = nine + rng.choice([d for d in "0123456789" if d != str(good)])
    elif reason == "invalid_date_of_birth":
        child["date_of_birth"] = "2015-02-30"
    elif reason == "unknown_field":
        child["x_legacy_reference"] = f"REF{rng.randint(0, 99999):05d}"
    elif reason == "missing_name":
        child["given_name"] = None
        child["family_name"] = None
    else:  # pragma: no cover - guarded by INVALID_REASONS
        raise ValueError(reason)


def _order_versions(
    updates: list[dict[str, Any]], feed: Feed, rng: random.Random, out_of_order_rate: float
) -> None:
    """Versions mostly arrive in order; some records have a later version first."""
    positions: dict[RecordKey, list[int]] = defaultdict(list)
    for i, u in enumerate(updates):
        positions[(u["source"], u["source_record_id"])].append(i)
    multi = [
        k for k, pos in positions.items() if len({updates[i]["source_version"] for i in pos}) > 1
    ]
    if not multi:
        return
    chosen = {k for k in multi if rng.random() < out_of_order_rate}
    if not chosen:
        chosen.add(rng.choice(multi))
    for key in multi:
        pos = positions[key]
        items = sorted(
            (updates[i] for i in pos),
            key=lambda u: u["source_version"],
            reverse=key in chosen,
        )
        for i, u in zip(pos, items, strict=True):
            updates[i] = u
    feed.out_of_order = chosen


def write_jsonl(updates: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write updates as JSON lines (the `--format jsonl` form); returns how many."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with target.open("w", encoding="utf-8") as fh:
        for update in updates:
            fh.write(json.dumps(update, ensure_ascii=False))
            fh.write("\n")
            count += 1
    return count
