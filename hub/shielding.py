"""THE shielding policy: what each audience may see of a child record.

Every exit (notification routing, export, search, review display, error
messages, logs) asks this module. Matching never does: it sees everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.records import Record, la_of, without_protected

CONTACT_NOTE = "contact the shielding authority"


@dataclass(frozen=True)
class Shield:
    shielded: bool
    authority: str | None


def may_see_protected(shield: Shield, authority: str | None, break_glass: bool = False) -> bool:
    """Protected fields of a shielded record: the shielding authority, or a recorded override."""
    if not shield.shielded:
        return True
    return break_glass or (authority is not None and authority == shield.authority)


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
