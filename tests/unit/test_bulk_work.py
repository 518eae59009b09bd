"""hub.bulk.work: what a load's workers send back arrives as it was made."""

from __future__ import annotations

import io
import pickle
import uuid
from datetime import UTC, datetime
from pathlib import Path

from adapters import csv as csv_adapter
from adapters.base import Record
from hub.batch import BatchState
from hub.bulk.state import LoadState, RandomIds
from hub.bulk.work import Valid, pack, read_items, unpack
from hub.bulk.write import keys_as_copy_text
from hub.config import Thresholds
from hub.match.blocking import SHIELDED_ONLY, index_keys, query_keys, shielded_keys
from hub.match.compare import Prepared, prepare


def _valid(ikeys: tuple[str, ...], qkeys: tuple[str, ...]) -> Valid:
    return Valid("line 2", "m-1", "{}", "la", "LA-1", 1, False,
                 {"given_name": "Ada", "date_of_birth": "2015-03-07"}, ("ada", 2015),
                 ikeys, qkeys, len(qkeys), ("LS42AB",), ("tel:01134960000",))


def test_a_valid_record_survives_the_trip_back_to_the_loader() -> None:
    for ikeys, qkeys in [
        (("d:20150307", "n:9990000018"), ("d:20150307", "m:0307", "n:9990000018")),
        ((), ()),  # no keys at all
        (("only",), ()),
        (("",), ("", "a")),  # an empty key (none is made today) is still a key
        (("a\x1fb", "c"), ("x",)),  # a key holding the separator: sent as it is
    ]:
        v = _valid(ikeys, qkeys)
        back = pickle.loads(pickle.dumps(v))
        assert back == v
        assert type(back.ikeys) is tuple and type(back.qkeys) is tuple
        assert type(back.places) is tuple and type(back.contacts) is tuple


def _update(n: int, **child: object) -> dict[str, object]:
    return {"source": "la", "source_record_id": f"LA-{n}", "source_version": 1,
            "kind": "upsert", "child": {"date_of_birth": "2015-03-07", **child}}


def test_what_a_worker_finds_of_places_is_what_the_pipeline_finds() -> None:
    """The loader takes each record's places and contacts from its worker: they must
    be what BatchState itself makes of the record (rule 6 looks them up)."""
    children = [
        {"given_name": "Ada", "family_name": "Quill",
         "address": {"lines": ["Flat 2", "8 Stanley Street"], "town": "Leeds",
                     "postcode": "LS4 2AB", "la": "383"},
         "carers": [{"name": "Bea Quill", "relationship": "mother",
                     "phone": "0113 496 0000"}],
         "services": [{"name": "Health visiting", "contact": "hv@example.org"}]},
        {"given_name": "Cy", "address": {"lines": ["12 Mill Lane"], "la": "383"}},
        {"family_name": "Dunn"},
    ]
    out, _ = read_items("la", [Record(f"line {n}", _update(n, **c))
                               for n, c in enumerate(children)], lookup=False)
    state = LoadState(thresholds=Thresholds(), now=datetime.now(UTC))
    seen = []
    for v in out:
        assert isinstance(v, Valid)
        state.current_child = v.child
        state.current_places = (frozenset(v.places), frozenset(v.contacts))
        mine = state.places_of_child(v.child)
        assert mine == BatchState.places_of_child(state, dict(v.child))
        seen.append(mine)
    assert seen[0][0] and seen[0][1] and seen[1][0]  # the cases are not empty
    assert seen[2] == (frozenset(), frozenset())


def test_new_child_ids_are_version_4_uuids_each_new() -> None:
    ids = RandomIds()
    made = [ids() for _ in range(1000)]  # past one read of 4 KiB (256 ids)
    assert len(set(made)) == 1000
    for text in made:
        u = uuid.UUID(text)
        assert str(u) == text
        assert u.version == 4 and u.variant == uuid.RFC_4122


CSV_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "csv"


def test_rows_mapped_in_a_worker_come_out_as_the_adapter_reads_them() -> None:
    """A load's workers map CSV rows the deciding process only read (csv.Row, sent
    pickled): every record and every bad record as `hub publish` reads the file."""
    files = {p.name: p.read_bytes() for p in sorted(CSV_FIXTURES.glob("*.csv"))}
    files["quoted"] = (b'source_record_id,source_version,given_name,date_of_birth,postcode\r\n'
                       b'R1,1,"Ada\nLine",2015-03-07,LS4 2AB\r\n\r\n'
                       b'R2,x,Bo,2015-03-07,\r\nR3,1,"Cy ""C""",07/03/2015,\r\nR4,1\r\n'
                       b'R5,1,Di,2015-03-07,"unterminated\n')
    deferred = 0
    for name, data in files.items():
        rows = list(csv_adapter.rows(io.BytesIO(data), "dwp"))
        deferred += sum(isinstance(r, csv_adapter.Row) for r in rows)
        sent = pickle.loads(pickle.dumps(rows))
        mapped = read_items("dwp", sent)
        assert mapped == read_items("dwp", list(csv_adapter.read(io.BytesIO(data), "dwp"))), name
        assert [m.where for m in mapped[0]] == [r.where for r in rows], name
    assert deferred > 10


def test_the_kinds_only_shielded_records_carry_are_looked_up_once_the_index_holds_one() -> None:
    """A load leaves out of a record's lookups the kinds of key only shielded records
    carry while its key index holds none of them (they would find no one), and looks
    them up again as soon as it holds one: Amelia Zedd, born a day after the shielded
    Amelia Quorn and living elsewhere, is found by those kinds alone."""
    her = {"given_name": "Amelia", "family_name": "Quorn", "date_of_birth": "2015-03-07",
           "sex": "female", "address": {"postcode": "LS4 2AB", "la": "383"}}
    other = {"given_name": "Amelia", "family_name": "Zedd", "date_of_birth": "2015-03-08",
             "sex": "female", "address": {"postcode": "B5 7QQ", "la": "330"}}
    out, _ = read_items("la", [Record("line 2", _update(2, **other))], lookup=False)
    v = out[0]
    assert isinstance(v, Valid)
    plain, guarded = v.qkeys[:v.nplain], v.qkeys[v.nplain:]
    assert guarded and all(k.startswith(SHIELDED_ONLY) for k in guarded)
    assert plain and not any(k.startswith(SHIELDED_ONLY) for k in plain)
    assert set(v.qkeys) == query_keys(prepare(v.child))

    state = LoadState(thresholds=Thresholds(), now=datetime.now(UTC))
    for k in index_keys(her):  # open: plain keys only
        state.key_index.add(k, "her-id")
    assert state.key_index.guarded == 0
    state.current_child, state.current_qkeys, state.current_nplain = v.child, v.qkeys, v.nplain
    form = prepare(v.child)
    assert state.query_keys_of(v.child, form) == frozenset(plain)
    assert "her-id" not in state.key_index.found(state.query_keys_of(v.child, form))

    for k in shielded_keys(her):  # shielded now: the kinds only she carries
        state.key_index.add(k, "her-id")
    assert state.key_index.guarded > 0
    assert state.query_keys_of(v.child, form) == frozenset(v.qkeys)
    assert "her-id" in state.key_index.found(state.query_keys_of(v.child, form))


def test_normal_forms_arrive_as_they_were_made() -> None:
    """A record's normal forms cross between the load's processes as a tuple of
    Prepared.FIELDS: unpacked, every field is as prepare made it."""
    children = [
        {"given_name": "Mary-Jane", "middle_names": "Ada", "family_name": "Smith-Jones",
         "former_family_names": ["Quill"], "date_of_birth": "2015-03-07", "sex": "female",
         "nhs_number": "9990000018", "upn": "A123456789012",
         "address": {"lines": ["Flat 2", "8 Stanley Street"], "postcode": "LS4 2AB",
                     "la": "383"}},
        {"family_name": "Dunn", "date_of_birth": "2019-12-31"},
    ]
    for child in children:
        made = prepare(child)
        back = unpack(pack(made))
        for name in Prepared.FIELDS:
            assert getattr(back, name) == getattr(made, name), name
        assert back.dob == made.dob


def test_block_keys_go_as_copy_text_unless_a_key_would_be_read_otherwise() -> None:
    keys = {"c-1": {"d:2015-03-07:A540", "p:LS42AB"}, "c-2": set(), "c-3": {"n:9990000018"}}
    text = keys_as_copy_text(keys)
    assert text is not None
    rows = sorted(tuple(line.split("\t")) for line in text.decode().splitlines())
    assert rows == sorted((k, cid) for cid, ks in keys.items() for k in ks)
    for odd in ("a\\b", "a\tb", "a\nb", "a\rb", "\\N"):
        assert keys_as_copy_text({"c-1": {"p:LS42AB", odd}}) is None, odd
    assert keys_as_copy_text({}) == b""
