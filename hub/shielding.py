"""THE shielding policy: what each audience may see of a child record.

Every exit (notification routing, export, search, review display, error
messages, logs) asks this module. Matching never does: it sees everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.match.model import ADDRESS_FIELDS
from hub.records import Record, la_of, without_protected

CONTACT_NOTE = "contact the shielding authority"


@dataclass(frozen=True)
class Shield:
    shielded: bool
    authority: str | None


OPEN = Shield(False, None)
# How an open candidate's scores are shown beside an update hidden from the viewer
# (candidates_for_audience): as a shielded child's whose authority no one acts for.
WITHHELD = Shield(True, None)
# The identity score (names, date of birth, sex) an open candidate needs to be listed
# beside a hidden update: the default review threshold (hub.config.Thresholds).
IDENTITY_SHOWN = 0.02


def may_see_protected(shield: Shield, authority: str | None, break_glass: bool = False) -> bool:
    """Protected fields of a shielded record: the shielding authority, or a recorded override."""
    if not shield.shielded:
        return True
    return break_glass or (authority is not None and authority == shield.authority)


def restricted_shield(parked_update: Mapping[str, Any] | None) -> list[Shield]:
    """The shield a parked update restricted at origin carries itself: placed, its
    record is shielded on arrival by the council of the area it arrives in
    (hub.batch.BatchState.apply); until then its details are as hidden."""
    if not parked_update or not parked_update.get("restricted"):
        return []
    return [Shield(True, la_of(parked_update.get("child")))]


SEVERED = "severed_identity"

#: Review reasons of rule 6: a shielded child holds the update's address or contacts.
NEAR_SHIELDED = frozenset({"shielded_address", "shielded_contact"})


def listed_update_hidden(parked_update: Mapping[str, Any] | None,
                         shields: Mapping[str, Shield], authority: str | None,
                         reason: str | None = None) -> bool:
    """`update_open_to`'s answer, negated, for a list of items, read without the
    holders of each update's address (one query an item): hidden when it is
    restricted at origin, has a shielded candidate the viewer does not act for, or
    waits because a shielded child holds its address or contacts (whose authority
    the list does not read: her neighbour's open record listed beside it, and
    shown by `hub show`, told any operator her postcode)."""
    return reason in NEAR_SHIELDED or not update_open_to(
        authority, [*shields.values(), *restricted_shield(parked_update)])


def update_open_to(authority: str | None, beside: Iterable[Shield]) -> bool:
    """Whether a parked update's protected fields may be shown to a viewer acting for
    `authority`. `beside` are the shields of the shielded children it may be about or
    be beside: its listed candidates, and the holders of its address (a sibling moving
    into the refuge: rule 8 lists no holder who could not be the update's child, but
    the address is still hers). Only a viewer acting for every one of them: one
    authority's user would otherwise see where another's child may now be."""
    las = [s.authority for s in beside]
    return not las or (authority is not None and all(la == authority for la in las))


def scores_for_audience(candidate: Mapping[str, Any], shield: Shield,
                        authority: str | None = None) -> dict[str, Any]:
    """A review candidate's stored scores as `authority` may see them.

    For a shielded candidate whose address the viewer may not see, the match
    probability gives way to the identity score (names, date of birth, sex) and the
    address fields' levels and weights are dropped: beside the update's address,
    "postcode: exact", or the gap between the two scores, tells where she lives.
    A candidate kept without an identity score (a holder of a shielded address,
    listed at 0) keeps a score of 0 and nothing else.
    """
    if may_see_protected(shield, authority):
        return dict(candidate)
    out = {k: v for k, v in candidate.items() if k not in ("score", "identity_score", "fields")}
    if "identity_score" in candidate:
        out["score"] = candidate["identity_score"]
        out["identity_score"] = candidate["identity_score"]
    else:
        out["score"] = 0.0 if not candidate.get("score") else None
    if "fields" in candidate:
        out["fields"] = [f for f in candidate["fields"] if f.get("field") not in ADDRESS_FIELDS]
    out["address_withheld"] = True
    return out


def candidates_for_audience(candidates: Iterable[Mapping[str, Any]],
                            shields: Mapping[str, Shield],
                            authority: str | None = None,
                            update_hidden: bool = False,
                            reason: str | None = None) -> list[dict[str, Any]]:
    """A review item's candidates as `authority` may see them: each one's scores by
    `scores_for_audience` (`shields`: the shielded among them), and where any is
    withheld, best shown score first; in the stored order (by match probability)
    a shielded candidate's place among the others would hint at her address. A
    shielded child listed only as holding a place near the update's (rule 6: kept
    without an identity score) is left out for a viewer who may not see her
    address: beside a neighbour's open record, her id would say which street she
    lives in. With `update_hidden` (the update's own protected fields are hidden
    from the viewer: `update_open_to`), an open candidate's scores are withheld as
    a shielded one's: his address is no secret, but "postcode: exact" beside it
    says where the hidden update is (her brother's open record at the refuge); and
    one that could not be the update's child by identity alone is left out, as
    only the address would have brought him. Beside a `severed_identity` item
    (`reason`), the record that carried the severed identity now carries her new
    one (adopted: her new name, her new NHS number): it is shown only to the
    authority shielding it, and to no one when none does (an independent probe:
    any operator read her new identity off the birth family's update)."""
    shown = []
    for c in candidates:
        shield = shields.get(c["child_id"], OPEN)
        if reason == SEVERED and (shield.authority is None or shield.authority != authority):
            continue
        if update_hidden and not shield.shielded:
            if (c.get("identity_score") or 0.0) >= IDENTITY_SHOWN:
                shown.append(scores_for_audience(c, WITHHELD, authority))
        elif "identity_score" in c or may_see_protected(shield, authority):
            shown.append(scores_for_audience(c, shield, authority))
    if any(c.get("address_withheld") for c in shown):
        # (equal scores by id: their stored order would be by match probability)
        shown.sort(key=lambda c: (-(c.get("score") or 0.0), c["child_id"]))
    return shown


def for_audience(
    record: Record, shield: Shield, authority: str | None = None, break_glass: bool = False
) -> Record:
    """The record as `authority` may see it."""
    if may_see_protected(shield, authority, break_glass):
        return dict(record)
    return without_protected(record)


def notification_authorities(shield: Shield, before: Record | None, after: Record) -> list[str]:
    """Which councils may hear about a change: a shielded child's only to its authority."""
    if shield.shielded:
        return [shield.authority] if shield.authority else []
    las = [la for la in (la_of(before), la_of(after)) if la]
    return list(dict.fromkeys(las))


def search_may_return(shield: Shield, used_hidden_field: bool) -> bool:
    """A search by a hidden field (postcode, school, GP) never returns a shielded record."""
    return not (shield.shielded and used_hidden_field)


def redact_for_log(value: Any) -> str:
    """Logs carry ids and reason codes only: anything else is replaced."""
    return "[redacted]"
