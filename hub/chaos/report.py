"""The chaos suite's tables of figures (Markdown, so they paste into the README)."""

from __future__ import annotations

from hub.chaos.check import Figures
from hub.chaos.faults import FaultResult


def _n(v: int) -> str:
    return f"{v:,}"


def figures_table(g: Figures) -> list[str]:
    rows = [
        ("updates sent (distinct message ids)", _n(g.sent)),
        ("  publish attempts, retries after faults included", _n(g.publishes)),
        ("  confirmed by the broker", _n(g.confirmed)),
        ("  never confirmed (the source gave up)", _n(g.unconfirmed)),
        ("effects found (sent ids with an effect)", _n(g.effects)),
        ("  record changes", _n(g.changes)),
        ("  no-ops (duplicates, older or equal versions)", _n(g.noops)),
        ("  linked with nothing new to write", _n(g.unchanged)),
        ("  review items", _n(g.reviews)),
        ("  dead letters: invalid records", _n(g.dead_invalid)),
        ("  dead letters: poison messages", _n(g.dead_poison)),
        ("  dead letters: valid updates at the delivery limit", _n(g.dead_valid)),
        ("**lost** (confirmed, no effect)", _n(g.lost)),
        ("**doubled** (two effects or decisions, a version written twice)", _n(g.doubled)),
        ("**unexpected** (an effect nobody sent)", _n(g.unexpected)),
        ("invalid or poison messages processed as good ones", _n(g.misplaced)),
        ("duplicate children against the ground truth", _n(g.duplicate_children)),
        ("stale source links (newest confirmed version not applied)", _n(g.stale_links)),
        ("race groups (one child, several sources, at once)", _n(g.race_groups)),
        ("  decided in 2+ transactions within a second", _n(g.race_groups_concurrent)),
        ("notifications committed (to listening councils)", _n(g.notes_committed)),
        ("  delivered at least once", _n(g.notes_delivered)),
        ("  delivered more than once (allowed)", _n(g.notes_redelivered)),
        ("  **missing**", _n(g.notes_missing)),
        ("  unexpected or inconsistent", _n(g.notes_unexpected)),
        ("record changes without a notification", _n(g.changes_unnotified)),
    ]
    width = max(len(r[0]) for r in rows)
    out = [f"| {'figure':<{width}} | {'value':>8} |", f"|{'-' * (width + 2)}|{'-' * 9}:|"]
    out += [f"| {k:<{width}} | {v:>8} |" for k, v in rows]
    return out


def faults_table(results: list[FaultResult]) -> list[str]:
    out = ["| # | fault | at | detail | down | recovered after |",
           "|---:|---|---:|---|---:|---:|"]
    for i, r in enumerate(results, 1):
        rec = "**never**" if r.recovered is None else f"{r.recovered:.1f}s"
        out.append(f"| {i} | {r.name} | {r.at:.0f}s | {r.detail} | {r.down:.1f}s | {rec} |")
    return out


def examples(g: Figures) -> list[str]:
    out = []
    for what, items in g.examples.items():
        for item in items:
            out.append(f"  {what}: {item}")
    return out
