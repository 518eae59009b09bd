"""hub.batch.KeyIndex: the children a batch (or a bulk load) holds under each key."""

from __future__ import annotations

import random

from hub.batch import ChildRow, KeyIndex, chunk_candidates, index_of


def test_a_key_finds_every_child_added_under_it_once() -> None:
    index = KeyIndex()
    index.add("d:2014-03-07:H634", "a")
    index.add("d:2014-03-07:H634", "a")  # again: still one child
    assert list(index.ids("d:2014-03-07:H634")) == ["a"]
    index.add("d:2014-03-07:H634", "b")
    index.add("d:2014-03-07:H634", "a")
    assert sorted(index.ids("d:2014-03-07:H634")) == ["a", "b"]
    assert list(index.ids("n:9990000018")) == []
    assert "d:2014-03-07:H634" in index and "n:9990000018" not in index
    assert len(index) == 1


def test_found_and_items_agree_with_a_dict_of_sets() -> None:
    rng = random.Random(7)
    pairs = [(f"k{rng.randrange(300)}", f"c{rng.randrange(200)}") for _ in range(2000)]
    plain: dict[str, set[str]] = {}
    for key, cid in pairs:
        plain.setdefault(key, set()).add(cid)
    index = index_of(pairs)
    assert {k: set(ids) for k, ids in index.items()} == plain
    for _ in range(200):
        keys = {f"k{rng.randrange(400)}" for _ in range(rng.randrange(12))}
        expected = set().union(*(plain.get(k, set()) for k in keys))
        assert index.found(keys) == expected
        assert index.found(frozenset(keys)) == expected


def test_a_key_of_one_child_costs_no_set() -> None:
    # Why the class exists: a bulk load holds every key of every record it made.
    index = index_of((f"k{i % 1000}", f"c{i % 1000}") for i in range(2000))  # each twice
    held = index._ids  # noqa: SLF001 (what it holds, not how it answers)
    assert all(isinstance(v, str) for v in held.values())


def test_a_chunk_record_meets_earlier_records_and_indexed_children_once_each() -> None:
    index = index_of([("d:2014-03-07", "held"), ("p:LS42AB", "held"), ("p:LS42AB", "gone")])
    children = {"held": ChildRow("held", 1, {})}  # "gone": keyed, no longer held
    qkeys = [("d:2014-03-07", "p:LS42AB"), ("d:2014-03-07", "p:LS42AB"), ("n:9990000018",),
             ("p:LS42AB",)]
    ikeys = [("d:2014-03-07",), ("p:LS42AB",), ("n:9990000018",), ()]
    tasks, rows = chunk_candidates(qkeys, ikeys, index, children)
    # Targets 0-3 are the chunk's records, 4 the one indexed child held: a record
    # meets only records before it (never itself), each target once.
    assert tasks == [(0, (4,)), (1, (0, 4)), (2, ()), (3, (1, 4))]
    assert rows == [children["held"]]
