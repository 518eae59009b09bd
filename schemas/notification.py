"""The change notification councils receive on hub.notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENTS = ("child.created", "child.updated", "child.moved_in", "child.moved_out",
          "child.shielded", "child.unshielded", "child.snapshot", "alert.break_glass",
          "alert.shield_check")


class Notification(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_id: str = Field(description="Stable per change: a repeat carries the same id")
    event: Literal[EVENTS] = Field(  # type: ignore[valid-type]
        description="What happened; routing key la.<LA>.<event>")
    child_id: str | None = Field(description="The hub's id of the child (null on an export alert)")
    version: int = Field(description="The child record's version: order by it")
    occurred_at: datetime
    shielded: bool | None = Field(
        default=None, description="True when the child is shielded: only its authority hears")
    child: dict[str, Any] | None = Field(
        default=None,
        description="The canonical child as this council may see it (see canonical_update)")
    # To the shielding authority only, on child.shielded and alert.shield_check: open
    # records still showing where she is, by id (hub.shield_check).
    open_at_same_house: list[str] | None = Field(
        default=None, description="Open records at the shielded child's house (ids)")
    open_could_be_her: list[str] | None = Field(
        default=None, description="Open records that could be the shielded child: a "
        "duplicate made before the shield (ids, best first, at most 20)")
    open_could_be_her_count: int | None = Field(
        default=None, description="How many open records could be the shielded child")
