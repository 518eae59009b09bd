"""hub.bulk.work: what a load's workers send back arrives as it was made."""

from __future__ import annotations

import pickle

from hub.bulk.work import Valid


def _valid(ikeys: tuple[str, ...], qkeys: tuple[str, ...]) -> Valid:
    return Valid("line 2", "m-1", "{}", "la", "LA-1", 1, False,
                 {"given_name": "Ada", "date_of_birth": "2015-03-07"}, ("ada", 2015),
                 ikeys, qkeys)


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
