"""The sequential half of a bulk load: the pipeline's own BatchState, fed ahead of time.

A load decides its records one at a time in file order with hub.batch.BatchState
and hub.decide.decide, exactly as one pipeline worker would decide them one batch
after another: each record sees the index plus every earlier record of the load.
What the workers computed in parallel only saves time, never changes an answer:

- blocking keys computed by a worker are used for the record they were computed for;
- a score computed by a worker is used only while the candidate's record is the very
  object it was computed against (records are replaced, never changed in place, and
  the load keeps a reference to each one it scored, so an id cannot be reused). A
  candidate changed since (an earlier record of the load linked to it) is scored
  again, then and there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from hub.batch import BatchState, StoredRecord
from hub.decide import Matcher
from hub.match.blocking import index_keys
from hub.match.compare import Prepared, prepare
from hub.match.score import MatchScore
from hub.records import Record
from hub.shielding import Shield
from hub.uuids import uuid_text
from schemas.canonical import CanonicalUpdate

if TYPE_CHECKING:
    from hub.bulk.write import Snapshot


class RandomIds:
    """New child ids, each the text uuid.uuid4() would give for 16 bytes of the
    system's random generator, read 4 KiB at a time: one os.urandom call a record
    let go of the interpreter lock and waited to take it back from the load's other
    threads (a tenth of the deciding process's time deciding, py-spy). One thread's."""

    __slots__ = ("_buf", "_at")

    def __init__(self) -> None:
        self._buf, self._at = b"", 0

    def __call__(self) -> str:
        at = self._at
        if at + 16 > len(self._buf):
            self._buf, at = os.urandom(4096), 0
        self._at = at + 16
        return uuid_text(self._buf[at:at + 16], 4)


@dataclass(frozen=True, eq=False)
class CachedMatcher(Matcher):
    """The pipeline's scorer, answering from the workers' scores where they hold.

    `cache` maps the id of a candidate's record (or of its normal forms) to the
    current update's score against it; the load resets it before each update,
    and decide() scores nothing but the current update."""

    cache: dict[int, MatchScore] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"cached": 0, "scored": 0})
    current: list[Any] = field(default_factory=lambda: [None, None])  # [child, Prepared]

    def prepare(self, child: Mapping[str, Any]) -> Prepared:
        if child is self.current[0]:
            return cast(Prepared, self.current[1])
        return super().prepare(child)

    def score(self, update: Any, record: Any) -> MatchScore:
        s = self.cache.get(id(record))
        if s is not None:
            self.counts["cached"] += 1
            return s
        self.counts["scored"] += 1
        return super().score(update, record)


class _Child:
    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return self.data


class LoadedUpdate:
    """A validated update as BatchState reads it (source, ids, version, child dump).

    The child is the dump the worker made of the validated CanonicalUpdate; the
    full model is rebuilt from the raw body only when a review item needs it."""

    __slots__ = ("source", "source_record_id", "source_version", "restricted", "child", "raw")

    def __init__(self, source: str, source_record_id: str, source_version: int,
                 restricted: bool, child: dict[str, Any], raw: str) -> None:
        self.source = source
        self.source_record_id = source_record_id
        self.source_version = source_version
        self.restricted = restricted
        self.child = _Child(child)
        self.raw = raw

    def model_dump(self, **kw: Any) -> dict[str, Any]:
        return CanonicalUpdate.model_validate_json(self.raw).model_dump(**kw)

    def as_update(self) -> CanonicalUpdate:
        return cast(CanonicalUpdate, self)


@dataclass
class LoadState(BatchState):
    """BatchState with the blocking keys the workers computed for the current record."""

    current_qkeys: tuple[str, ...] = ()
    current_nplain: int = 0  # of current_qkeys, the plain kinds' (hub.bulk.work.Valid)
    current_ikeys: tuple[str, ...] = ()
    current_places: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    current_child: dict[str, Any] | None = None
    current_prepared: Prepared | None = None
    _create: tuple[tuple[str, ...], Prepared | None] | None = None
    _ids: RandomIds = field(default_factory=RandomIds)

    def keep_written(self, snap: Snapshot) -> None:
        """A committed chunk's records kept as the JSON text they were written as,
        decoded again only where a later record of the load is merged into one
        (hub.batch.StoredRecord, as a pipeline batch reads the index): a record's
        objects took about 3.7 KB, its text 0.6 KB. Only records unchanged since,
        and with their normal forms held (the workers score against those, never
        the record)."""
        children = self.children
        for cid, version, record, *_rest, match in snap.children:
            row = children.get(cid)
            text = snap.texts.get(cid)
            if (row is not None and text is not None and match is not None
                    and row.version == version and row.record is record
                    and row.match is match):
                row.record = StoredRecord(text, cid)

    def release(self, writing: Snapshot) -> None:
        """Every chunk before `writing` is committed: keep only the children and source
        links `writing` holds (not yet in the index). What else the state held the
        index now holds as it was held here; a later chunk reads what it needs of it
        from there (hub.bulk.load reads each chunk's candidates from the index)."""
        self.keep_only({c[0] for c in writing.children})
        links = writing.writes.links
        self.links = {k: link for k, link in self.links.items() if k in links}

    def query_keys_of(self, child: Record, form: Prepared) -> frozenset[str]:
        if child is self.current_child:
            keys = self.current_qkeys
            # The kinds only shielded records carry find no one while the index holds
            # none of them: 25 of a record's 41 keys, each a probe of a dict of
            # millions (hub.batch.KeyIndex.found).
            return frozenset(keys if self.key_index.guarded else keys[:self.current_nplain])
        return super().query_keys_of(child, form)

    def new_child_id(self) -> str:
        return self._ids()

    def places_of_child(self, child: Record) -> tuple[frozenset[str], frozenset[str]]:
        if child is self.current_child:
            return self.current_places
        return super().places_of_child(child)

    def index_keys_of(self, record: Record) -> set[str]:
        if self._create is not None:
            return set(self._create[0])
        return index_keys(record)

    def prepare_of(self, record: Record) -> Prepared:
        if self._create is not None and self._create[1] is not None:
            return self._create[1]
        return prepare(record)

    def end_chunk(self) -> None:
        """Forget the chunk's update views (the pipeline's are per batch) and the
        updates that created and the records given new keys (a load runs alone:
        nothing to guard them against)."""
        self._seen.clear()
        self.created.clear()
        self.grown.clear()

    def apply(self, update: CanonicalUpdate, child: Record, child_id: str | None,
              message_id: str | None, actor: str, reason: str,
              shield: Shield | None = None) -> str:
        # A new record is merge(None, child): its index keys and normal forms are the
        # child's own, which the worker computed (merge drops only empty values, and
        # so does prepare).
        if child_id is None and child is self.current_child:
            self._create = (self.current_ikeys, self.current_prepared)
        try:
            return super().apply(update, child, child_id, message_id, actor, reason, shield)
        finally:
            self._create = None
