"""The parallel half of a bulk load, run in worker processes. Pure: no database.

read_items   per record: the same validation as `hub publish` (hub.validate.check),
             the message id `hub publish` would give it, the child as the pipeline
             dumps it, its normal forms (hub.match.compare.prepare) and its index
             and query blocking keys; per part, if asked, what its records look
             up in the index, ready to send (Lookups).
score_pairs  per record: its scores against the candidates the parent found for it,
             with the same scorer the pipeline uses (Matcher.score).

Prepared forms travel between processes as tuples of their slots: pickling the
slotted class itself costs four times as much.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any, cast

from adapters.base import BadRecord, Deferred, Record
from hub.broker.connection import message_id_for
from hub.db.store import SEP, packed
from hub.decide import Matcher
from hub.ingest import raw_text
from hub.match.blocking import SHIELDED_ONLY, index_keys, query_keys
from hub.match.compare import Prepared, prepare, unpacked
from hub.match.score import MatchScore
from hub.places import contact_keys, lookup_places
from hub.publishing import canonical_body
from hub.validate import Rejection, check

_SLOTS = Prepared.FIELDS  # the address line as made, not the address it is made from


_PACK = attrgetter(*_SLOTS)


def pack(p: Prepared) -> tuple[Any, ...]:
    return cast(tuple[Any, ...], _PACK(p))


unpack = unpacked  # compiled (hub.match.compare)


@dataclass(slots=True)
class Valid:
    """One valid update, ready for the sequential half."""

    where: str
    message_id: str
    raw: str
    source: str
    source_record_id: str
    source_version: int
    restricted: bool
    child: dict[str, Any]
    packed: tuple[Any, ...]
    ikeys: tuple[str, ...]
    qkeys: tuple[str, ...]  # the plain kinds first, then those only shielded records carry
    nplain: int  # how many of qkeys are of the plain kinds
    places: tuple[str, ...]  # what rule 6 looks up of its address (hub.places)
    contacts: tuple[str, ...]  # and of its carers' and services' contacts

    def __reduce__(self) -> tuple[Any, ...]:
        # Its fifty-odd keys sent as two strings: pickled one by one they were two
        # thirds of the cost of sending a record back to the loader (38 -> 14 us).
        return (_valid, (self.where, self.message_id, self.raw, self.source,
                         self.source_record_id, self.source_version, self.restricted,
                         self.child, self.packed, _joined(self.ikeys), _joined(self.qkeys),
                         self.nplain, _joined(self.places), _joined(self.contacts)))


def _joined(keys: tuple[str, ...]) -> str | tuple[str, ...]:
    """Keys as one string, unless one holds the separator (none does: validation
    refuses control characters; hub.db.store.packed) or the string would be empty
    (no keys, or one empty key: told apart by sending them as they are)."""
    joined = SEP.join(keys)
    return joined if joined and joined.count(SEP) == len(keys) - 1 else keys


def _split(keys: str | tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(keys, tuple):
        return keys
    return tuple(keys.split(SEP))


def _valid(where: str, message_id: str, raw: str, source: str, source_record_id: str,
           source_version: int, restricted: bool, child: dict[str, Any],
           packed: tuple[Any, ...], ikeys: str | tuple[str, ...],
           qkeys: str | tuple[str, ...], nplain: int, places: str | tuple[str, ...],
           contacts: str | tuple[str, ...]) -> Valid:
    return Valid(where, message_id, raw, source, source_record_id, source_version,
                 restricted, child, packed, _split(ikeys), _split(qkeys), nplain,
                 _split(places), _split(contacts))


@dataclass(slots=True)
class Bad:
    """A record that becomes a dead letter, exactly as `hub publish` would send it."""

    where: str
    reason: str
    error: str
    raw: str
    source_record_id: str | None


@dataclass(slots=True)
class Lookups:
    """What a part's valid records look up in the index (hub.bulk.load._lookup), made
    here because the loader's one process spent 10 s a chunk of 50,000 on it: their
    blocking keys, sorted and packed as hub.db.store.packed packs them, those of the
    kinds only shielded records carry apart; and their places (hub.places)."""

    plain: str
    odd: list[str]
    guarded: str
    odd_guarded: list[str]
    places: list[str]


def lookups(valid: list[Valid]) -> Lookups:
    plain = {k for v in valid for k in v.qkeys[:v.nplain]}
    guarded = {k for v in valid for k in v.qkeys[v.nplain:]}
    places = {p for v in valid for p in (*v.places, *v.contacts)}
    return Lookups(*packed(sorted(plain)), *packed(sorted(guarded)), sorted(places))


def read_items(source: str, items: list[Record | BadRecord | Deferred], lookup: bool = True
               ) -> tuple[list[Valid | Bad], Lookups | None]:
    routing_key = f"source.{source}"
    out: list[Valid | Bad] = []
    for got in items:
        item = got if isinstance(got, (Record, BadRecord)) else got.record()
        if isinstance(item, BadRecord):
            out.append(Bad(item.where, item.reason, item.error, item.raw, item.source_record_id))
            continue
        result = check(item.update, expected_source=source)
        body = canonical_body(item.update)
        if isinstance(result, Rejection):
            out.append(Bad(item.where, result.reason, result.error, body.decode(),
                           result.source_record_id))
            continue
        child = result.child.model_dump(mode="json", exclude_none=True)
        p = prepare(child)
        keys = query_keys(p)
        guarded = sorted(k for k in keys if k.startswith(SHIELDED_ONLY))
        plain = sorted(keys.difference(guarded))
        out.append(Valid(
            item.where, message_id_for(routing_key, body), raw_text(body), result.source,
            result.source_record_id, result.source_version, result.restricted, child,
            pack(p), tuple(sorted(index_keys(p))), (*plain, *guarded), len(plain),
            # The deciding process looked these up itself: about a fifth of its
            # time deciding a record (py-spy, 324,182 records).
            tuple(sorted(lookup_places(child.get("address")))),
            tuple(sorted(contact_keys(child))),
        ))
    return out, lookups([v for v in out if isinstance(v, Valid)]) if lookup else None


# -- scoring ------------------------------------------------------------------------
# The matcher is set before the workers are forked; each task carries the normal
# forms (or records) it needs, so that no worker shares the loader's large heap
# (forking it per chunk cost more than the scoring: every page a worker touched
# was copied).
_MATCHER: Matcher = Matcher()


def set_matcher(matcher: Matcher) -> None:
    global _MATCHER
    _MATCHER = matcher


def score_part(job: tuple[dict[int, Any], list[tuple[int, tuple[int, ...]]]]
               ) -> list[list[MatchScore]]:
    """score_pairs of one part of a chunk (Pool.imap passes one argument)."""
    return score_pairs(*job)


def score_pairs(targets: dict[int, Any], tasks: list[tuple[int, tuple[int, ...]]]
                ) -> list[list[MatchScore]]:
    """For each (update target, candidate targets): the update scored against each.
    `targets` holds packed normal forms, or records to normalise here."""
    cache: dict[int, Prepared] = {}

    def get(t: int) -> Prepared:
        p = cache.get(t)
        if p is None:
            v = targets[t]
            p = unpack(v) if isinstance(v, tuple) else prepare(v)
            cache[t] = p
        return p

    out = []
    score = _MATCHER.score
    for u, cands in tasks:
        pu = get(u)
        out.append([score(pu, get(c)) for c in cands])
    return out
