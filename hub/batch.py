"""One batch of updates through decide and merge, in memory.

The caller loads what the index knows about the batch (hub.db.store.load),
runs each update through `BatchState.handle` in arrival order, and flushes the
resulting writes in one transaction. Records created or changed earlier in the
batch are candidates for later updates in it, so two updates about one new
child in one batch still meet.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from mypy_extensions import mypyc_attr

from hub.config import Thresholds
from hub.decide import (
    CREATE,
    DEFAULT_MATCHER,
    LINK,
    MORE,
    NOOP,
    REVIEW,
    Decision,
    Facts,
    Matcher,
    SourceLink,
    decide,
)
from hub.match import compact
from hub.match.blocking import (
    SHIELDED_ONLY,
    index_keys,
    query_keys,
    shielded_keys,
    with_copies,
)
from hub.match.compare import Prepared, prepare
from hub.match.score import MatchScore
from hub.notify import Notification, for_change
from hub.places import (
    contact_keys,
    key_postcode,
    lookup_places,
    near,
    postcode_of_key,
    protected_places,
)
from hub.records import Record, la_of, merge
from hub.shielding import Shield
from schemas.canonical import CanonicalUpdate

PARK_NAMESPACE = uuid.UUID("0b6f3f8e-3a7d-4f2b-a0b8-2a3c9b1d7e21")


class RecordNeeded(Exception):  # noqa: N818 (a request, not an error)
    """A child's record was read that the batch loaded without it (its id in
    `child_id`). Raised before anything of the update is applied: the caller
    fetches the record (hub.db.store.fetch_records) and handles the update again."""

    def __init__(self, child_id: str) -> None:
        super().__init__(child_id)
        self.child_id = child_id


class CandidatesNeeded(Exception):  # noqa: N818 (a request, not an error)
    """An update read with only some of its candidates (BatchState.partial) needs them
    all (decide answered MORE). Raised before anything of the update is applied: the
    caller reads them (hub.db.store.widen) and handles the update again."""

    def __init__(self, update: CanonicalUpdate) -> None:
        super().__init__(update.source_record_id)
        self.update = update


#: A record's identity, kept from updates linked to it on their details alone when
#: its NHS number anchors it (`BatchState.apply`).
_ANCHORED = frozenset({"given_name", "middle_names", "family_name", "former_family_names",
                       "date_of_birth", "sex"})


class StoredRecord(Mapping[str, Any]):
    """A record as read from the index, its JSON decoded only when first read:
    most candidates of a batch are scored from their prepared form alone. Without
    JSON (`raw` None) it is a record not read yet: reading it raises RecordNeeded."""

    __slots__ = ("_raw", "_data", "_child_id")

    def __init__(self, raw: str | None, child_id: str = "") -> None:
        self._raw = raw
        self._data: dict[str, Any] | None = None
        self._child_id = child_id

    @property
    def unread(self) -> bool:
        return self._raw is None

    def _decoded(self) -> dict[str, Any]:
        if self._data is None:
            if self._raw is None:
                raise RecordNeeded(self._child_id)
            self._data = json.loads(self._raw)
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._decoded()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._decoded().get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())


@dataclass(slots=True)  # thousands a batch
class ChildRow:
    child_id: str
    version: int
    record: Mapping[str, Any]
    shielded: bool = False
    authority: str | None = None
    restricted: bool = False
    severed: bool = False
    # The record's normal forms for scoring (None: decode `form`, else prepare the record).
    match: Prepared | None = None
    # Its stored form (hub.match.compact), decoded when first scored: most candidates
    # never are (an update with an NHS number tie or a source link reads few others).
    form: str | None = None
    # The last score: (update's forms, matcher, own forms, score). Choosing which
    # records a batch reads scores the candidates its decisions score again.
    memo: tuple[Prepared, Matcher, Prepared, MatchScore] | None = None
    # (form, version, its NHS number and date of birth), read once (nhs_and_dob)
    ids: tuple[str, int, tuple[str, str]] | None = None

    @property
    def shield(self) -> Shield:
        return Shield(self.shielded, self.authority)

    @property
    def normal_form(self) -> Prepared:
        if self.match is None:
            decoded = compact.decode(self.form, self.version) if self.form else None
            # No usable form: prepared from the record (read, or RecordNeeded).
            self.match = decoded if decoded is not None else prepare(self.record)
        return self.match

    def scored_by(self, update: Prepared, matcher: Matcher) -> MatchScore:
        own = self.normal_form
        memo = self.memo
        if memo is not None and memo[0] is update and memo[1] is matcher and memo[2] is own:
            return memo[3]
        s = matcher.score(update, own)
        self.memo = (update, matcher, own, s)
        return s

    @property
    def nhs_and_dob(self) -> tuple[str, str]:
        """Read straight from the stored form while it is not decoded (and kept
        while the form is the one it was read from)."""
        if self.match is None and self.form is not None:
            ids = self.ids
            if ids is not None and ids[0] is self.form and ids[1] == self.version:
                return ids[2]
            got = compact.identifiers(self.form, self.version)
            if got is not None:
                self.ids = (self.form, self.version, got)
                return got
        p = self.normal_form
        return p.nhs, p.dob_s


class _View(NamedTuple):
    """What a batch makes of an update once: its child as a dict, the blocking keys
    it looks up, its normal forms, and what rule 6 looks up of its address and its
    contacts (hub.places.lookup_places, contact_keys)."""

    update: CanonicalUpdate
    child: Record
    keys: frozenset[str]
    form: Prepared
    lookups: frozenset[str]
    contacts: frozenset[str]


_NONE: frozenset[str] = frozenset()

#: The fields whose change can give a record new blocking keys (hub.match.blocking).
_KEYED = frozenset({"given_name", "family_name", "former_family_names", "date_of_birth",
                    "address", "upn", "nhs_number"})


#: The provenance row of a record as its source created it, naming every field: one
#: row a new record instead of one a field (about eleven; a bulk load's writes set its
#: pace). A later update adds a row for each field it changes (migration 0016).
ALL_FIELDS = "*"


@dataclass
class Writes:
    children: dict[str, ChildRow] = field(default_factory=dict)
    versions: list[tuple[Any, ...]] = field(default_factory=list)
    keys: dict[str, set[str]] = field(default_factory=dict)
    links: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    provenance: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    protected: set[tuple[str, str]] = field(default_factory=set)
    # (place, parked id, authority) of each update the batch parked for review that
    # may be a hidden child's (migration 0020)
    pending_places: set[tuple[str, str, str | None]] = field(default_factory=set)
    # (postcode, date of birth, parked id) of each update parked for review
    # (migration 0029)
    pending_births: set[tuple[str, str, str]] = field(default_factory=set)
    parked: list[dict[str, Any]] = field(default_factory=list)
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[Notification] = field(default_factory=list)
    # message id, outcome, child, latency (ms), digest of what was processed, source
    processed: list[tuple[str, str, str | None, int | None, bytes | None, str | None]] = field(
        default_factory=list)
    # (child id, version, authority) of each record the batch shielded (restricted at
    # origin, an operator's placing): hub.shield_check.tell names to that authority
    # the open records still showing where she is
    shielded: list[tuple[str, int, str | None]] = field(default_factory=list)
    # (child id, version, authority) of each shielded record the batch gave a new
    # address: hub.shield_check.tell names the open records at her new house
    moved: list[tuple[str, int, str | None]] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    message_id: str
    action: str
    reason: str
    child_id: str | None = None
    parked_id: str | None = None
    touches_shielded: bool = False


class KeyIndex:
    """Blocking key -> the ids of the children a batch holds under it.

    A key that found one child holds its id itself, not a set of one: most keys
    find one child, and a bulk load holds every key of every record it has made (a
    set is 216 bytes; at 30,000 records the sets were half of what the load kept a
    record)."""

    def __init__(self) -> None:
        self._ids: dict[str, str | set[str]] = {}
        # How many keys of the kinds only shielded records carry it holds: while none,
        # looking those kinds up finds no one (a bulk load skips them: hub.bulk).
        self.guarded = 0

    def add(self, key: str, child_id: str) -> None:
        ids = self._ids
        got = ids.get(key)
        if got is None:
            ids[key] = child_id
            if key.startswith(SHIELDED_ONLY):
                self.guarded += 1
        elif isinstance(got, str):
            if got != child_id:
                ids[key] = {got, child_id}
        else:
            got.add(child_id)

    def ids(self, key: str) -> Collection[str]:
        """The children under `key` (for more than one, the index's own set: read it,
        never change it)."""
        got = self._ids.get(key)
        if got is None:
            return ()
        return (got,) if isinstance(got, str) else got

    def found(self, keys: frozenset[str] | set[str]) -> set[str]:
        """The children under any of `keys`."""
        out: set[str] = set()
        ids = self._ids
        for k in ids.keys() & keys:  # the few keys that found anyone
            got = ids[k]
            if isinstance(got, str):
                out.add(got)
            else:
                out |= got
        return out

    def items(self) -> Iterator[tuple[str, Collection[str]]]:
        for key, got in self._ids.items():
            yield key, ((got,) if isinstance(got, str) else got)

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def __len__(self) -> int:
        return len(self._ids)


def index_of(pairs: Iterable[tuple[str, str]]) -> KeyIndex:
    """A KeyIndex of (key, child id) pairs."""
    index = KeyIndex()
    for key, child_id in pairs:
        index.add(key, child_id)
    return index


def chunk_candidates(
    qkeys: list[tuple[str, ...]], ikeys: list[tuple[str, ...]], index: KeyIndex,
    children: dict[str, ChildRow],
) -> tuple[list[tuple[int, tuple[int, ...]]], list[ChildRow]]:
    """What each record of a bulk load's chunk is scored against (hub.bulk.load): record
    r is found by its query keys `qkeys[r]` and files itself under its index keys
    `ikeys[r]`. Targets 0..n-1 are the chunk's own records (earlier ones only, by
    their keys); n, n+1, ... the children `index` finds (returned in that order).
    Here, compiled, rather than in the loader (which is not): at 323,994 records the
    loader's candidates phase took 17-20 s instead of 50-58 s (its own CPU 14-15 s
    instead of 18-20 s; the rest was waiting for the interpreter lock)."""
    n = len(qkeys)
    rows: list[ChildRow] = []
    by_child: dict[str, int] = {}
    local: dict[str, list[int]] = {}
    tasks: list[tuple[int, tuple[int, ...]]] = []
    for r in range(n):
        cands: set[int] = set()
        ids: set[str] = set()
        for k in qkeys[r]:
            ids.update(index.ids(k))
            earlier = local.get(k)
            if earlier is not None:
                cands.update(earlier)
        for cid in ids:
            t = by_child.get(cid)
            if t is None:
                row = children.get(cid)
                if row is None:
                    continue
                t = by_child[cid] = n + len(rows)
                rows.append(row)
            cands.add(t)
        for k in ikeys[r]:
            mine = local.get(k)
            if mine is None:
                local[k] = [r]
            else:
                mine.append(r)
        tasks.append((r, tuple(sorted(cands))))
    return tasks, rows


@mypyc_attr(allow_interpreted_subclasses=True)  # a bulk load's LoadState (hub.native)
@dataclass
class BatchState:
    thresholds: Thresholds
    now: datetime
    children: dict[str, ChildRow] = field(default_factory=dict)
    key_index: KeyIndex = field(default_factory=KeyIndex)
    links: dict[tuple[str, str], SourceLink] = field(default_factory=dict)
    invalidated: dict[str, str] = field(default_factory=dict)
    # shielded children's protected places the batch read (hub.db.store) or wrote,
    # as (place key, child id) under what an update looks up: the key's postcode
    # (hub.places.postcode_of_key; any other key, itself)
    protected_in: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    # the parked updates among protected_in's holders (migration 0020), each with
    # its authority where one is known
    pending: dict[str, str | None] = field(default_factory=dict)
    # (postcode, date of birth) of the updates waiting in review there (migration
    # 0029): read with the batch's identities, and of those the batch parks
    pending_births: set[tuple[str, str]] = field(default_factory=set)
    # protected contacts counted in open records (hub.db.store.read_public_contacts),
    # and those of them that are shared lines (hub.places.PUBLIC_CONTACT): not hers
    contacts_counted: set[str] = field(default_factory=set)
    public_contacts: set[str] = field(default_factory=set)
    not_a_match: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # (source, record id) -> the highest version of it waiting in review
    waiting: dict[tuple[str, str], int] = field(default_factory=dict)
    writes: Writes = field(default_factory=Writes)
    actor: str = "pipeline"
    matcher: Matcher = DEFAULT_MATCHER
    published: dict[str, datetime] = field(default_factory=dict)  # message id -> publish time
    digests: dict[str, bytes] = field(default_factory=dict)  # message id -> hub.ingest.digest_of
    # ids of the updates read with only some candidates (Facts.partial)
    partial: set[int] = field(default_factory=set)
    # id(update) -> what is made of it once a batch (_View)
    _seen: dict[int, _View] = field(default_factory=dict, repr=False)
    # the updates that created a record with the facts they were decided on, and
    # every child read before the last forget_unwritten (with `children`, every
    # child this batch has read): what hub.db.store.guard_new_keys checks against
    created: list[tuple[CanonicalUpdate, Facts]] = field(default_factory=list)
    read_before: dict[str, int] = field(default_factory=dict)  # child id -> version read
    # the records this batch gave blocking keys they did not have (records it
    # created aside): each one's normal forms and its new keys' kinds ("d", "p"...)
    grown: dict[str, tuple[Prepared, frozenset[str]]] = field(default_factory=dict)

    def view(self, update: CanonicalUpdate) -> tuple[Record, frozenset[str]]:
        """The update's child as a dict and the blocking keys it looks up."""
        got = self._seen_of(update)
        return got.child, got.keys

    def places_of(self, update: CanonicalUpdate) -> frozenset[str]:
        """What rule 6 looks up for an update (hub.places): its address's postcode
        and houses, and the phone numbers and email addresses of its carers and
        services."""
        view = self._seen_of(update)
        return view.lookups | view.contacts

    def protect(self, key: str, child_id: str) -> None:
        """A protected place of a shielded child (hub.places.protected_places), read
        or written by the batch."""
        self.protected_in.setdefault(postcode_of_key(key), set()).add((key, child_id))

    def form_of(self, update: CanonicalUpdate) -> Prepared:
        """The update's normal forms (what it is scored with)."""
        return self._seen_of(update).form

    def _seen_of(self, update: CanonicalUpdate) -> _View:
        got = self._seen.get(id(update))
        if got is None or got.update is not update:  # the update is kept: its id is not reused
            child = update.child.model_dump(mode="json", exclude_none=True)
            form = self.matcher.prepare(child)
            got = _View(update, child, self.query_keys_of(child, form), form,
                        *self.places_of_child(child))
            self._seen[id(update)] = got
        return got

    # -- what a bulk load supplies, computed in parallel -----------------------
    def query_keys_of(self, child: Record, form: Prepared) -> frozenset[str]:
        return frozenset(query_keys(form))

    def places_of_child(self, child: Record) -> tuple[frozenset[str], frozenset[str]]:
        """What rule 6 looks up of the child's address, and its contacts."""
        return (frozenset(lookup_places(child.get("address"))),
                frozenset(contact_keys(child)))

    def new_child_id(self) -> str:
        return str(uuid.uuid4())

    def index_keys_of(self, record: Record) -> set[str]:
        return index_keys(record)

    def prepare_of(self, record: Record) -> Prepared:
        return prepare(record)

    def _latency_ms(self, message_id: str) -> int | None:
        at = self.published.get(message_id)
        # The publish time is the publisher's word (a clock in milliseconds where
        # seconds belong, a source paused for weeks): kept within the column's range.
        return None if at is None else min(
            max(0, int((self.now - at).total_seconds() * 1000)), 2**31 - 1)

    # -- what the decider sees -------------------------------------------------
    def facts(self, update: CanonicalUpdate, child: Record) -> Facts:
        view = self._seen_of(update)
        key = (update.source, update.source_record_id)
        ids = self.key_index.found(view.keys)
        link = self.links.get(key)
        if link:
            ids.add(link.child_id)
        nhs = child.get("nhs_number")
        invalidated = self.invalidated.get(nhs) if nhs else None
        if invalidated:
            ids.add(invalidated)
        children = self.children
        holders = close = _NONE
        authorities: dict[str, str | None] = {}
        contacts: dict[str, frozenset[str]] = {}
        protected_in = self.protected_in
        if protected_in:
            held = [(place, cid) for p in view.lookups for place, cid in
                    protected_in.get(p, ()) if _shielded(children.get(cid))]
            if held:
                at, by = near(child.get("address"),
                              [(p, c, _address_of(children.get(c))) for p, c in held])
                holders, close = frozenset(at), frozenset(at | by)
            for contact in view.contacts - self.public_contacts:
                holding = frozenset(cid for _, cid in protected_in.get(contact, ())
                                    if _shielded(children.get(cid)))
                if holding:
                    contacts[contact] = holding
            for c in close.union(*contacts.values()):
                if c in children:
                    authorities[c] = children[c].authority
                elif self.pending.get(c) is not None:
                    authorities[c] = self.pending[c]
        not_a_match = self.not_a_match.get(key)
        # The rows themselves are the candidates (hub.decide.CandidateLike), in no
        # particular order (decide orders those it scores).
        return Facts(
            link, tuple([children[c] for c in ids if c in children]), invalidated,
            frozenset(not_a_match) if not_a_match else _NONE, holders, authorities,
            id(update) in self.partial, close, contacts, self.waiting.get(key),
            bool(self.pending_births) and _birth(child) in self.pending_births,
        )

    def forget_unwritten(self) -> None:
        """Drop the children read but not written so far (a batch loaded in chunks
        reads them again if a later chunk needs them): a batch's memory then grows
        with its chunk's candidates, not with all of them."""
        self.read_before.update((cid, row.version) for cid, row in self.children.items())
        self.keep_only(self.writes.children.keys())

    def keep_only(self, ids: Collection[str]) -> None:
        """Forget every child but these, and the keys that found the others."""
        self.children = {cid: row for cid, row in self.children.items() if cid in ids}
        self.key_index = index_of((key, cid) for key, found in self.key_index.items()
                                  for cid in found if cid in ids)

    def records_wanted(self, updates: list[CanonicalUpdate]) -> list[str]:
        """Children loaded without their record that these updates will likely
        write: an update's source link, else the one child indexed under its NHS
        number, else (a demographic match) its candidates that score at least the
        review threshold (no other can be linked). A guess: `handle` fetches any
        other it needs."""
        wanted: set[str] = set()
        for update in updates:
            link = self.links.get((update.source, update.source_record_id))
            if link is not None:
                wanted.add(link.child_id)
                continue
            child = self.view(update)[0]
            nhs = child.get("nhs_number")
            same = self.key_index.ids(f"n:{nhs}") if nhs else ()
            if len(same) == 1:
                wanted.update(same)
                continue
            # A demographic match writes only a candidate that scores at least the
            # review threshold (shielded and severed ones come with their records).
            form, facts = self.form_of(update), self.facts(update, child)
            review = self.thresholds.review
            wanted.update(
                c.child_id for c in facts.candidates
                if c.child_id not in facts.not_a_match and _unread(c)
                and c.scored_by(form, self.matcher).probability >= review)
        return sorted(i for i in wanted if _unread(self.children.get(i)))

    def decide(self, update: CanonicalUpdate) -> tuple[Record, Decision, Facts]:
        view = self._seen_of(update)
        child, form = view.child, view.form
        facts = self.facts(update, child)
        decision = decide(child, update.source_version, facts, self.thresholds, self.matcher,
                          form)
        return child, decision, facts

    # -- applying --------------------------------------------------------------
    def handle(self, update: CanonicalUpdate, message_id: str, raw: str) -> Outcome:
        child, decision, facts = self.decide(update)
        if decision.action == MORE:
            raise CandidatesNeeded(update)
        touches = any(c.shielded for c in facts.candidates) or bool(facts.protected_near)
        if decision.action in (LINK, CREATE):
            cid = self.apply(update, child, decision.child_id, message_id, self.actor,
                             decision.reason)
            if decision.action == CREATE:
                self.created.append((update, facts))
            outcome = Outcome(message_id, decision.action, decision.reason, cid,
                              touches_shielded=touches or self.children[cid].shielded)
        elif decision.action == REVIEW:
            # A parked update rule 6 counts (a holder) is no child: not listed (`hub
            # review show` names it beside the update).
            pid = self.park("review", decision.reason, message_id, raw, update=update,
                            candidates=[_candidate_json(c) for c in decision.candidates
                                        if c.child_id not in self.pending],
                            hides=_may_be_hers(decision.candidates, self.children))
            outcome = Outcome(message_id, REVIEW, decision.reason, None, pid, touches)
        else:
            outcome = Outcome(message_id, NOOP, decision.reason, decision.child_id)
        self.writes.audit.append((
            self.actor, f"decision.{outcome.action}", outcome.child_id,
            f"{update.source}/{update.source_record_id}@{update.source_version}",
            {"reason": outcome.reason, "message_id": message_id,
             "model_version": decision.model_version, "parked_id": outcome.parked_id},
        ))
        self.writes.processed.append((message_id, f"{outcome.action}:{outcome.reason}",
                                      outcome.child_id, self._latency_ms(message_id),
                                      self.digests.get(message_id), update.source))
        return outcome

    def apply(
        self,
        update: CanonicalUpdate,
        child: Record,
        child_id: str | None,
        message_id: str | None,
        actor: str,
        reason: str,
        shield: Shield | None = None,
    ) -> str:
        """Write an update into a record (new when child_id is None); return its id.
        With `shield`, a record not shielded yet is shielded so (an operator wrote a
        shielded child's address into it: hub.operations.resolve)."""
        row = self.children.get(child_id) if child_id else None
        if row is None:
            row = ChildRow(self.new_child_id(), 0, {})
            before: Record | None = None
        else:
            before = dict(row.record)
        if (reason == "demographic_match" and before is not None
                and before.get("nhs_number") and not child.get("nhs_number")):
            # Linked on its details alone to a record its NHS number anchors: who she
            # is stays as the record has it (a nickname, a mistyped or swapped date
            # written over hers would make the next update miss her: found by an
            # independent probe); where she lives and who looks after her are taken.
            child = {k: v for k, v in child.items() if k not in _ANCHORED}
        after, changed = merge(before, child, formers=not row.severed)
        shield_changed = False
        if update.restricted and not row.shielded:
            # Restricted at origin: shielded on arrival until an authority decides, by
            # the council of the area it arrives in, which an open move would tell
            # anyway; the council it left would learn the new address only this way.
            row.shielded, row.restricted = True, True
            row.authority = row.authority or la_of(after) or la_of(before)
            shield_changed = True
        if shield is not None and shield.shielded and not row.shielded:
            row.shielded, row.authority = True, shield.authority
            shield_changed = True
        link_key = (update.source, update.source_record_id)
        self.links[link_key] = SourceLink(row.child_id, update.source_version)
        self.writes.links[link_key] = (
            update.source, update.source_record_id, row.child_id, update.source_version,
            "auto" if actor == "pipeline" else actor,
        )
        self.children[row.child_id] = row
        if not changed and not shield_changed and before is not None:
            return row.child_id
        row.version += 1
        row.record = after
        row.match = self.prepare_of(after)
        self.writes.children[row.child_id] = row
        self.writes.versions.append((row.child_id, row.version, after, actor, message_id))
        if shield_changed:
            self.writes.shielded.append((row.child_id, row.version, row.authority))
        elif row.shielded and before is not None and "address" in changed:
            # She moved: another refuge family's open record at her new house shows
            # where she is as plainly as hers would; her authority is told, as when
            # she was shielded.
            self.writes.moved.append((row.child_id, row.version, row.authority))
        for fld in changed if before is not None else (ALL_FIELDS,):
            self.writes.provenance[(row.child_id, fld)] = (
                row.child_id, fld, update.source, update.source_record_id, update.source_version
            )
        keys = self.index_keys_of(after)
        if row.shielded:
            keys = keys | shielded_keys(after)
        if before is not None and (shield_changed or not _KEYED.isdisjoint(changed)):
            grown = keys - self.index_keys_of(before)
            if grown:
                self.grown[row.child_id] = (row.match, frozenset(k[0] for k in grown))
        # What blocking.stored_keys gives (a bulk load supplies the index keys).
        self.writes.keys[row.child_id] = with_copies(keys, row.shielded, row.severed)
        for k in keys:
            self.key_index.add(k, row.child_id)
        if row.shielded:
            # Shielded now (restricted at origin, or by an operator's placing): the
            # address she is leaving is protected too, as `hub shield` protects every
            # address of the record's history (older ones than `before`'s are not read
            # here: README, rule 6).
            held = [after] + ([before] if shield_changed and before is not None else [])
            for place in sorted(set().union(*(protected_places(r) for r in held))):
                self.writes.protected.add((place, row.child_id))
                self.protect(place, row.child_id)
        self.writes.outbox.extend(
            for_change(row.child_id, row.version, self.now, before, after, row.shield)
        )
        return row.child_id

    def park(
        self,
        kind: str,
        reason: str,
        message_id: str,
        raw: str,
        *,
        update: CanonicalUpdate | None = None,
        candidates: list[dict[str, Any]] | None = None,
        error: str | None = None,
        source: str | None = None,
        source_record_id: str | None = None,
        routing_key: str | None = None,
        retry_of: str | None = None,
        reused: bytes | None = None,
        hides: set[str | None] | None = None,
    ) -> str:
        # The same message parked twice is one item; `reused`, the digest of another
        # message that reused an id already processed, tells it apart.
        name = f"{kind}:{message_id}" + (f":{reused.hex()}" if reused else "")
        pid = str(uuid.uuid5(PARK_NAMESPACE, name))
        if update is not None and kind == "review" and (update.restricted or hides):
            # Restricted at origin, or perhaps a shielded child's (`hides`: the
            # authorities of its shielded candidates), waiting for a person: a child
            # may be hidden at its places now, though no record there is shielded yet.
            # Rule 6 counts them (its id is no child's: a holder taken to be
            # shielded), for the rest of the batch as for later ones, so no other
            # update writes them open; an update into a record her authority shields
            # may.
            record = update.child.model_dump(mode="json", exclude_none=True)
            las = {la_of(record)} if update.restricted else hides or set()
            authority = next(iter(las)) if len(las) == 1 else None
            self.pending[pid] = authority
            for place in sorted(protected_places(record)):
                self.writes.pending_places.add((place, pid, authority))
                self.protect(place, pid)
        if update is not None and kind == "review":
            key = (update.source, update.source_record_id)
            self.waiting[key] = max(self.waiting.get(key, 0), update.source_version)
            birth = _birth(update.child.model_dump(mode="json", exclude_none=True))
            if birth is not None:
                self.pending_births.add(birth)
                self.writes.pending_births.add((*birth, pid))
        self.writes.parked.append({
            "id": pid,
            "kind": kind,
            "reason": reason,
            "source": update.source if update else source,
            "source_record_id": update.source_record_id if update else source_record_id,
            "source_version": update.source_version if update else None,
            "error": error,
            "raw": raw,
            "routing_key": routing_key,
            "message_id": message_id,
            "update": update.model_dump(mode="json") if update else None,
            "candidates": candidates or [],
            "retry_of": retry_of,
            "body_digest": reused,
        })
        return pid

    def dead(
        self, message_id: str, reason: str, error: str, raw: str,
        source: str | None, source_record_id: str | None, routing_key: str | None,
        retry_of: str | None = None, reused: bytes | None = None,
    ) -> Outcome:
        pid = self.park("dead", reason, message_id, raw, error=error, source=source,
                        source_record_id=source_record_id, routing_key=routing_key,
                        retry_of=retry_of, reused=reused)
        self.writes.audit.append((
            self.actor, "decision.dead", None, f"{source}/{source_record_id}",
            {"reason": reason, "message_id": message_id, "parked_id": pid},
        ))
        self.writes.processed.append((message_id, f"dead:{reason}", None,
                                      self._latency_ms(message_id),
                                      self.digests.get(message_id), source))
        return Outcome(message_id, "dead", reason, None, pid)


def _may_be_hers(candidates: Iterable[Any], children: Mapping[str, ChildRow]) -> set[str | None]:
    """The authorities of the shielded children a parked update may be about: its
    scored shielded candidates (rule 8 lists only those that could be its child). A
    child listed only because the update comes near her place (rule 6: no score) is
    not: her places are protected already, and the update's are a neighbour's."""
    return {children[c.child_id].authority for c in candidates
            if c.shielded and c.explanation is not None and c.child_id in children}


def _birth(child: Record) -> tuple[str, str] | None:
    """(postcode, date of birth) of an update's child (migration 0029); None with no
    postcode."""
    postcode = key_postcode(child.get("address"))
    return (postcode, str(child.get("date_of_birth"))) if postcode else None


def _shielded(row: ChildRow | None) -> bool:
    """A holder of a protected place still shielded (one not read: taken to be)."""
    return row is None or row.shielded


def _address_of(row: ChildRow | None) -> Any:
    """A holder's current address, None when not known (hub.places.near)."""
    if row is None or _unread(row):
        return None
    return row.record.get("address")


def _unread(row: Any) -> bool:
    # By type, not isinstance: StoredRecord is a Mapping, and an ABC's isinstance is
    # slow (thousands of calls a batch).
    return row is not None and type(row.record) is StoredRecord and row.record.unread


def _candidate_json(c: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"child_id": c.child_id, "score": round(c.probability, 4)}
    if c.explanation is not None:
        out["identity_score"] = round(c.identity_probability, 4)
        out["fields"] = [
            {"field": f.field, "level": f.level, "weight": round(f.weight, 3)}
            for f in c.explanation.fields
        ]
        out["model_version"] = c.explanation.model_version
    return out


__all__ = ["BatchState", "CandidatesNeeded", "ChildRow", "KeyIndex", "Outcome", "RecordNeeded",
           "StoredRecord",
           "CREATE", "LINK", "REVIEW", "NOOP"]
