"""Canonical updates written as a child-benefit style CSV extract (adapters/csv.py's
columns), for tests and benchmarks of `hub load`. Streams: any number of rows."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MAX_CARERS = 2
MAX_SERVICES = 2
HEADER = [
    "source_record_id", "source_version", "nhs_number", "upn", "given_name", "middle_names",
    "family_name", "former_family_names", "date_of_birth", "sex",
    "address_line1", "address_line2", "address_line3", "town", "postcode", "la",
    *[f"carer{i}_{f}" for i in range(1, MAX_CARERS + 1) for f in ("name", "relationship",
                                                                     "phone")],
    *[f"service{i}_{f}" for i in range(1, MAX_SERVICES + 1) for f in ("name", "contact")],
    "school_urn", "school_name", "gp_ods_code", "gp_name", "restricted",
]


def row(update: dict[str, Any]) -> list[str]:
    """One CSV row for a canonical update (fields beyond the columns are left out)."""
    c = update["child"]
    addr = c.get("address") or {}
    lines = list(addr.get("lines") or [])[:3]
    lines += [""] * (3 - len(lines))
    out = [
        update["source_record_id"], str(update["source_version"]), c.get("nhs_number") or "",
        c.get("upn") or "", c.get("given_name") or "", c.get("middle_names") or "",
        c.get("family_name") or "", ";".join(c.get("former_family_names") or []),
        c.get("date_of_birth") or "", c.get("sex") or "",
        *lines, addr.get("town") or "", addr.get("postcode") or "", addr.get("la") or "",
    ]
    carers = list(c.get("carers") or [])[:MAX_CARERS]
    for i in range(MAX_CARERS):
        k = carers[i] if i < len(carers) else {}
        out += [k.get("name") or "", k.get("relationship") or "", k.get("phone") or ""]
    services = list(c.get("services") or [])[:MAX_SERVICES]
    for i in range(MAX_SERVICES):
        sv = services[i] if i < len(services) else {}
        out += [sv.get("name") or "", sv.get("contact") or ""]
    school = c.get("education_setting") or {}
    gp = c.get("gp_practice") or {}
    out += [school.get("urn") or "", school.get("name") or "", gp.get("ods_code") or "",
            gp.get("name") or "", "Y" if update.get("restricted") else ""]
    return out


def write_csv(updates: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write updates as a CSV extract; returns how many rows."""
    n = 0
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for u in updates:
            w.writerow(row(u))
            n += 1
    return n


def with_duplicates(
    pop: Any, seed: int, duplicate_rate: float = 0.08, source: str = "la",
    kinds_out: dict[str, list[str]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A source's extract of a population in which `duplicate_rate` of the children
    appear twice, under a second record id, the second time with one or two of the
    corruptions sources make (hub.synth.corrupt). Returns (updates, record id ->
    person id). The second copy comes later in the file, somewhere random."""
    import random

    from hub.synth.corrupt import KIND_WEIGHTS, applicable_kinds, corrupt

    rng = random.Random(f"bulk-extract:{seed}")
    updates: list[dict[str, Any]] = []
    truth: dict[str, str] = {}
    late: list[tuple[int, dict[str, Any]]] = []
    for n, person in enumerate(pop.children):
        rid = f"{source.upper()}-{n:07d}"
        updates.append({"source": source, "source_record_id": rid, "source_version": 1,
                        "kind": "upsert", "child": person.to_child()})
        truth[rid] = person.person_id
        if rng.random() < duplicate_rate:
            child = person.to_child()
            kinds: list[str] = []
            for _ in range(1 if rng.random() < 0.7 else 2):
                options = [k for k in applicable_kinds(child, pop.as_of) if k not in kinds]
                if not options:
                    break
                kind = rng.choices(options, weights=[KIND_WEIGHTS[k] for k in options])[0]
                child = corrupt(child, kind, rng, as_of=pop.as_of)
                kinds.append(kind)
            drid = f"{source.upper()}-D{n:07d}"
            truth[drid] = person.person_id
            if kinds_out is not None:
                kinds_out[drid] = kinds
            late.append((n + rng.randint(1, max(1, len(pop.children) // 2)),
                         {"source": source, "source_record_id": drid, "source_version": 1,
                          "kind": "upsert", "child": child}))
    # Each second copy goes in after its first, at a random later place.
    late.sort(key=lambda t: t[0])
    out: list[dict[str, Any]] = []
    j = 0
    for n, u in enumerate(updates):
        out.append(u)
        while j < len(late) and late[j][0] <= n:
            out.append(late[j][1])
            j += 1
    out.extend(u for _, u in late[j:])
    return out, truth
