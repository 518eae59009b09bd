"""One batch of received messages: parse, decide, write, in one transaction.

Knows nothing of RabbitMQ: the worker hands it plain `Incoming` values and acks
them once this returns (that is, once the transaction has committed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from hub import shield_check
from hub.batch import Outcome
from hub.config import Thresholds
from hub.db import store
from hub.decide import DEFAULT_MATCHER, Matcher
from hub.log import get
from hub.match import forget_prepared
from hub.validate import Rejection, claims, parse
from schemas.canonical import CanonicalUpdate

log = get(__name__)

TRUSTED_USERS = frozenset({"guest", "hub"})


@dataclass(frozen=True)
class Incoming:
    message_id: str
    routing_key: str
    body: bytes
    user_id: str | None = None
    retry_of: str | None = None
    published_at: datetime | None = None


def raw_text(body: bytes) -> str:
    """The body as storable text: invalid bytes and NULs escaped, nothing dropped."""
    return body.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def source_of(routing_key: str) -> str | None:
    prefix, _, name = routing_key.partition(".")
    return name if prefix == "source" and name and "." not in name else None


def authenticated(item: Incoming, trusted: frozenset[str] = TRUSTED_USERS) -> bool:
    """RabbitMQ validates user-id against the connection's user: a source's own
    broker user may publish only its own updates (guest and the hub's user, any;
    the running hub adds its own broker user to `trusted`)."""
    if not item.user_id or item.user_id in trusted:
        return True
    source = source_of(item.routing_key)
    return source is not None and item.user_id in (source, f"source-{source}")


def check(item: Incoming, trusted: frozenset[str] = TRUSTED_USERS) -> CanonicalUpdate | Rejection:
    source = source_of(item.routing_key)
    if source is None:
        # No source published it by name: the letter is labelled with what it claims.
        return Rejection("invalid_routing_key", "routing key must be source.<NAME>",
                         *claims(item.body))
    result = parse(item.body, expected_source=source)
    if isinstance(result, CanonicalUpdate) and not authenticated(item, trusted):
        return Rejection("unauthenticated_source",
                         "the publishing broker user may not publish for this source",
                         result.source, result.source_record_id)
    return result


#: Updates whose candidates are read at once (see `process`). Each chunk is a few
#: more round trips while the batch holds its locks; 250 kept a pipeline process
#: at 76 -> 78 MiB from 100,000 to 1,000,000 children (`hub bench`, batches of 500).
LOAD_CHUNK = 250


def digest_of(item: Incoming, result: CanonicalUpdate | Rejection) -> bytes:
    """What identifies a message's content: its update in canonical form (a source
    re-sending it with other whitespace or key order sends the same update), else its
    body. Kept with its message id in processed_messages."""
    return _blake(result.model_dump_json().encode() if isinstance(result, CanonicalUpdate)
                  else item.body)


def digests_of(item: Incoming) -> list[bytes]:
    """Every digest `digest_of` could have kept for this message's content, whoever
    published it (an unauthenticated copy is digested by its body); first, the one
    it keeps for an authenticated publisher."""
    parsed = parse(item.body, expected_source=source_of(item.routing_key))
    return [digest_of(item, parsed), _blake(item.body)]


def _blake(content: bytes) -> bytes:
    return hashlib.blake2b(content, digest_size=16).digest()


#: Times a batch is done again at once when another committed a child beside one
#: it creates (store.IndexMoved) before the worker backs off (workers.retry).
REDO = 3


async def process(
    conn: asyncpg.Connection, items: list[Incoming], thresholds: Thresholds,
    matcher: Matcher = DEFAULT_MATCHER, trusted: frozenset[str] = TRUSTED_USERS,
    locks: bool = True,
) -> list[Outcome]:
    """Decide and write a batch in one transaction (a savepoint inside the caller's).
    Without `locks` (a preview, rolled back: hub.preview) it takes none of the advisory
    locks that keep concurrent batches apart, which a transaction holds to its end."""
    for attempt in range(1, REDO + 1):
        try:
            return await _process(conn, items, thresholds, matcher, trusted, locks)
        except store.IndexMoved:
            log.info("batch_redone", reason="child_created_beside", attempt=attempt,
                     size=len(items))
            if attempt == REDO:
                raise
    raise AssertionError("unreachable")


async def _process(
    conn: asyncpg.Connection, items: list[Incoming], thresholds: Thresholds,
    matcher: Matcher, trusted: frozenset[str], locks: bool,
) -> list[Outcome]:
    checked = [(item, check(item, trusted)) for item in items]
    updates = [r for _, r in checked if isinstance(r, CanonicalUpdate)]
    outcomes: list[Outcome] = []
    state = store.new_state(thresholds, matcher)
    # Each update's own normal forms and blocking keys depend on nothing stored, so
    # they are made before the locks: batches wait for each other's locks, and what
    # is done while holding them is what limits the pipeline.
    for u in updates:
        state.view(u)
    async with conn.transaction():
        # Locks first, then the processed check: a second delivery of a message that
        # another transaction is processing waits for it and then finds it done,
        # instead of being decided again.
        if locks:
            await store.lock(conn, updates, [i.message_id for i in items])
        done = await store.processed(conn, [i.message_id for i in items])
        state.published = {i.message_id: i.published_at for i in items if i.published_at}
        state.digests = {}
        # Candidates are read a chunk of the batch at a time, under the batch's locks
        # and in its transaction: memory grows with a chunk's candidates, whatever
        # the batch size, and a later chunk sees what an earlier one wrote.
        for start in range(0, len(checked), LOAD_CHUNK):
            chunk = checked[start:start + LOAD_CHUNK]
            state.forget_unwritten()
            await store.load_into(
                conn, state, [r for _, r in chunk if isinstance(r, CanonicalUpdate)], slim=True)
            for item, result in chunk:
                digest = digest_of(item, result)
                if item.message_id in done:
                    if done[item.message_id] in (None, digest):  # a redelivery, a republish
                        outcomes.append(
                            Outcome(item.message_id, "duplicate", "already_processed"))
                    else:  # another message under an id already used: kept, not dropped
                        outcomes.append(state.dead(
                            item.message_id, "message_id_reused",
                            "a different message was already processed under this message id",
                            raw_text(item.body), result.source or source_of(item.routing_key),
                            result.source_record_id,
                            item.routing_key, item.retry_of, reused=digest))
                    continue
                done[item.message_id] = state.digests[item.message_id] = digest
                if isinstance(result, Rejection):
                    outcomes.append(state.dead(
                        item.message_id, result.reason, result.error, raw_text(item.body),
                        result.source or source_of(item.routing_key), result.source_record_id,
                        item.routing_key, item.retry_of,
                    ))
                else:
                    outcomes.append(await store.handle(
                        conn, state, result, item.message_id, raw_text(item.body)))
        # Before anything is written: a child committed meanwhile beside a record
        # this batch creates means doing the batch again (IndexMoved rolls it back).
        if locks:
            await store.guard_new_keys(conn, state)
        await store.flush(conn, state.writes)
        # Written, so a record this batch created at her house is found too.
        await shield_check.tell(conn, state.writes.shielded, thresholds, state.writes.moved)
    forget_prepared()
    return outcomes
