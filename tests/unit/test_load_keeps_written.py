"""A bulk load keeps a committed chunk's records as the JSON text they were written as
(hub.bulk.state.LoadState.keep_written), never a record changed since."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hub.batch import ChildRow, StoredRecord, Writes
from hub.bulk.state import LoadState
from hub.bulk.write import snapshot
from hub.config import Thresholds
from hub.match.compare import prepare


def _row(cid: str, given: str) -> ChildRow:
    record = {"given_name": given, "family_name": "Quillby", "date_of_birth": "2015-04-02",
              "address": {"lines": ["3 Ash Row"], "postcode": "LS4 2AB", "la": "383"}}
    return ChildRow(cid, 1, record, match=prepare(record))


def test_a_committed_record_is_kept_as_its_text_unless_changed_since() -> None:
    state = LoadState(thresholds=Thresholds(), now=datetime.now(UTC))
    kept, changed, unformed = _row("a", "Odessa"), _row("b", "Brannoc"), _row("c", "Tamsy")
    unformed.match = None
    writes = Writes()
    for row in (kept, changed, unformed):
        state.children[row.child_id] = writes.children[row.child_id] = row
    snap = snapshot(writes, {}, state.thresholds)
    for cid, _v, record, *_ in snap.children:  # as the writer's flush fills it
        snap.texts[cid] = json.dumps(record)
    before = dict(kept.record)
    # Chunk k+1 links an update into "b" before chunk k is committed.
    changed.version, changed.record = 2, dict(changed.record, given_name="Brannock")

    state.keep_written(snap)

    # By type: compiled (hub.native), StoredRecord shares Mapping's ABC cache, so
    # isinstance() says a dict is one once a dict has been checked for a Mapping.
    assert type(kept.record) is StoredRecord and dict(kept.record) == before
    assert type(changed.record) is dict and changed.record["given_name"] == "Brannock"
    assert type(unformed.record) is dict  # the workers would be sent it
