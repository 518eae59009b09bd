"""What rule 6 protects of a shielded record: its address key (the postcode is its
part before "|") and its carers' phone numbers, however written."""

from __future__ import annotations

from hub.records import address_key, phone_key, postcode_of_key, protected_places


def test_a_phone_number_is_one_key_however_it_is_written() -> None:
    keys = {phone_key(p) for p in ("07700 900111", "+44 7700 900111", "+44 (0)7700-900111",
                                   "0044 7700 900111", "(07700) 900 111")}
    assert keys == {"tel:07700900111"}
    assert phone_key("0121 496 0000") == "tel:01214960000"
    assert phone_key("07700 900112") != phone_key("07700 900111")
    for nothing in (None, "", "unknown", "999", "+44"):
        assert phone_key(nothing) is None


def test_a_postcode_alone_is_a_place() -> None:
    assert address_key({"postcode": "b5 7qq"}) == "B57QQ|"
    assert address_key({"lines": ["3 Harbour Lane"], "postcode": "B5 7QQ"}) == \
        "B57QQ|3 harbour lane"
    assert address_key({"lines": ["3 Harbour Lane"]}) is None
    assert postcode_of_key("B57QQ|3 harbour lane") == "B57QQ"


def test_a_shielded_record_protects_its_address_and_carers_phones() -> None:
    record = {"address": {"lines": ["3 Harbour Lane"], "postcode": "B5 7QQ"},
              "carers": [{"name": "Rowan Quenby", "phone": "07700 900111"},
                         {"name": "Ash Quenby"}, "not a carer"]}
    assert protected_places(record) == {"B57QQ|3 harbour lane", "tel:07700900111"}
    assert protected_places({"carers": None, "address": None}) == set()
