"""Seeded synthetic children, families and source feeds (pure: no database, no broker).

Typical use: `generate_population(n, seed)` makes the people (the ground truth),
`initial_load(pop)` the clean local authority records, `central_feed(pop, seed)`
the DWP and PDS updates (corrupted, duplicated, out of order, some invalid, with
shielded children turning up at refuge addresses) together with their truth, and
`write_jsonl(updates, path)` writes any of them in the canonical `jsonl` form.
"""

from hub.synth.corrupt import KINDS, NotApplicable, applicable, applicable_kinds, corrupt
from hub.synth.data import DEFAULT_AS_OF
from hub.synth.feed import (
    INVALID_REASONS,
    SOURCE_FIELDS,
    Feed,
    central_feed,
    initial_load,
    initial_truth,
    write_jsonl,
)
from hub.synth.population import Family, Person, Population, generate_population

__all__ = [
    "DEFAULT_AS_OF",
    "INVALID_REASONS",
    "KINDS",
    "SOURCE_FIELDS",
    "Family",
    "Feed",
    "NotApplicable",
    "Person",
    "Population",
    "applicable",
    "applicable_kinds",
    "central_feed",
    "corrupt",
    "generate_population",
    "initial_load",
    "initial_truth",
    "write_jsonl",
]
