"""Notification routing and the shielding policy, on pure data."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from hub.notify import EVENT_NAMESPACE, event_id_for, for_change
from hub.records import merge
from hub.shielding import (
    Shield,
    candidates_for_audience,
    for_audience,
    scores_for_audience,
    update_open_to,
)
from tests.factories import child

NOW = datetime(2026, 11, 25, tzinfo=UTC)
OPEN, SHIELDED = Shield(False, None), Shield(True, "383")
LEEDS = child()
BRUM = child(address={"lines": ["3 Harbour Lane"], "postcode": "B5 7QQ", "la": "330"})


def keys(notes: list) -> list[str]:
    return [n.routing_key for n in notes]


def test_created_updated_and_moves() -> None:
    assert keys(for_change("c", 1, NOW, None, LEEDS, OPEN)) == ["la.383.child.created"]
    assert keys(for_change("c", 2, NOW, LEEDS, LEEDS, OPEN)) == ["la.383.child.updated"]
    moves = for_change("c", 3, NOW, LEEDS, BRUM, OPEN)
    assert keys(moves) == ["la.383.child.moved_out", "la.330.child.moved_in"]
    assert "address" not in moves[0].body["child"]  # the old council is not told where


def test_shielded_child_is_told_only_to_its_authority_and_never_moves() -> None:
    notes = for_change("c", 3, NOW, LEEDS, BRUM, SHIELDED)
    assert keys(notes) == ["la.383.child.updated"]
    assert all("moved" not in k for k in keys(notes))


def test_event_ids_are_stable() -> None:
    a = for_change("c", 2, NOW, LEEDS, BRUM, OPEN)
    b = for_change("c", 2, NOW, LEEDS, BRUM, OPEN)
    assert [n.event_id for n in a] == [n.event_id for n in b]


def test_each_notification_carries_its_own_changes_time() -> None:
    """The time's text is made once for a batch's notifications: never another's."""
    later = datetime(2026, 11, 25, 10, 0, 1, 250000, tzinfo=UTC)
    stamps = [n.body["occurred_at"] for at in (NOW, NOW, later, NOW, later)
              for n in for_change("c", 1, at, None, LEEDS, OPEN)]
    first, second = "2026-11-25T00:00:00Z", "2026-11-25T10:00:01.250000Z"
    assert stamps == [first, first, second, first, second]


def test_uuid_text_is_what_the_uuid_module_writes() -> None:
    from hub.uuids import uuid_text

    rng = random.Random(7)
    for _ in range(2000):
        raw = rng.randbytes(16)
        for version in (4, 5):
            assert uuid_text(raw, version) == str(uuid.UUID(bytes=raw, version=version))


def test_audiences() -> None:
    assert "address" not in for_audience(LEEDS, SHIELDED, None)
    assert "address" not in for_audience(LEEDS, SHIELDED, "330")
    assert "address" in for_audience(LEEDS, SHIELDED, "383")
    assert "address" in for_audience(LEEDS, SHIELDED, None, break_glass=True)
    assert "address" in for_audience(LEEDS, OPEN, None)
    # A UPN names the council and school that issued it: hidden with the address.
    pupil = {**LEEDS, "upn": "H383200126001"}
    assert "upn" not in for_audience(pupil, SHIELDED, "330")
    assert for_audience(pupil, SHIELDED, "383")["upn"] == "H383200126001"
    assert "upn" in for_audience(pupil, OPEN, None)
    # Former family names join an adopted child's two identities: hidden too.
    adopted = {**LEEDS, "former_family_names": ["Birch"]}
    assert "former_family_names" not in for_audience(adopted, SHIELDED, None)
    assert for_audience(adopted, SHIELDED, "383")["former_family_names"] == ["Birch"]


def test_merge_keeps_what_a_source_does_not_know_and_former_names() -> None:
    after, changed = merge(LEEDS, {"family_name": "Ashdown", "address": None,
                                   "date_of_birth": LEEDS["date_of_birth"]})
    assert after["address"] == LEEDS["address"]
    assert after["former_family_names"] == ["Quenby"]
    assert changed == ["family_name", "former_family_names"]


def test_names_in_each_others_boxes_change_nothing() -> None:
    """Linked as `names_swapped`, such an update made her given name Quenby and
    Marigold a former family name (found by an independent probe)."""
    assert merge(LEEDS, {"given_name": "QUENBY", "family_name": " marigold",
                         "date_of_birth": LEEDS["date_of_birth"]}) == (LEEDS, [])
    after, changed = merge(LEEDS, {"given_name": "Quenby", "family_name": "Ashdown"})
    assert (after["given_name"], after["family_name"]) == ("Quenby", "Ashdown")
    assert changed == ["family_name", "former_family_names", "given_name"]


def test_a_severed_record_keeps_no_former_name() -> None:
    """Adopted: her new family name does not keep her birth name beside it, nor take
    one an update lists (an independent probe saw the birth name come back)."""
    after, changed = merge(LEEDS, {"family_name": "Ashdown",
                                   "former_family_names": ["Thornbury"]}, formers=False)
    assert after["family_name"] == "Ashdown" and "former_family_names" not in after
    assert changed == ["family_name"]


def test_unknown_says_less_than_known() -> None:
    """Sex "unknown" and a 1 January date of birth (an unknown day and month, as
    recorded) do not overwrite what the record knows; a real change still does."""
    assert merge(LEEDS, {"sex": "unknown", "date_of_birth": "2014-01-01"}) == (LEEDS, [])
    after, changed = merge(LEEDS, {"sex": "male", "date_of_birth": "2015-01-01"})
    assert (after["sex"], after["date_of_birth"], changed) == (
        "male", "2015-01-01", ["date_of_birth", "sex"])
    unknown = {**LEEDS, "sex": "unknown", "date_of_birth": "2014-01-01"}
    after, changed = merge(unknown, {"sex": "female", "date_of_birth": "2014-03-09"})
    assert (after["sex"], after["date_of_birth"]) == ("female", "2014-03-09")
    assert merge(None, {"sex": "unknown"})[0]["sex"] == "unknown"


def test_a_part_with_nothing_in_it_erases_nothing() -> None:
    known = {**LEEDS, "education_setting": {"urn": "107942", "name": "Larch Primary"},
             "gp_practice": {"ods_code": "B86001", "name": None}}
    for empty in ({"education_setting": {}}, {"gp_practice": {"name": None}},
                  {"education_setting": {"urn": "", "name": None}}):
        assert merge(known, empty) == (known, []), empty
    after, changed = merge(known, {"gp_practice": {"ods_code": "B86002"}})
    assert after["gp_practice"] == {"ods_code": "B86002"} and changed == ["gp_practice"]


def test_an_address_naming_no_dwelling_erases_none() -> None:
    for nothing in ({"lines": []}, {"lines": [], "town": "Leeds"}, {"lines": [], "la": "383"},
                    {"lines": [], "la": "330", "la_inferred": True}):
        assert merge(LEEDS, {"address": nothing}) == (LEEDS, []), nothing
    # Another LA with no dwelling: the child has moved there, address not known yet.
    after, changed = merge(LEEDS, {"address": {"lines": [], "la": "330"}})
    assert after["address"] == {"lines": [], "la": "330"} and changed == ["address"]
    assert keys(for_change("c", 2, NOW, LEEDS, after, OPEN)) == [
        "la.383.child.moved_out", "la.330.child.moved_in"]
    # With no address known, whatever there is is taken.
    assert merge(None, {"address": {"lines": [], "la": "383"}})[0]["address"]["la"] == "383"


def test_a_guessed_la_does_not_move_a_child_whose_postcode_has_a_known_la() -> None:
    """A CTF names its school's LA (la_inferred): the pupil of a school across the
    border stays with the council the hub knows for that postcode."""
    at_school = {"address": {**LEEDS["address"], "postcode": "ls6  1aa", "la": "330",
                             "la_inferred": True}, "upn": "A383200112345"}
    after, changed = merge(LEEDS, at_school)
    assert after["address"] == {**LEEDS["address"], "postcode": "ls6  1aa"}  # la kept, no flag
    assert changed == ["address", "upn"]
    assert keys(for_change("c", 2, NOW, LEEDS, after, OPEN)) == ["la.383.child.updated"]
    # The same address again changes nothing.
    assert merge(after, at_school) == (after, [])

    # Another postcode: the child has moved and the guess is all there is.
    moved = {"address": {"lines": ["9 Elm Row"], "postcode": "B5 7QQ", "la": "330",
                         "la_inferred": True}}
    after, _ = merge(LEEDS, moved)
    assert after["address"]["la"] == "330" and after["address"]["la_inferred"] is True
    assert keys(for_change("c", 2, NOW, LEEDS, after, OPEN)) == [
        "la.383.child.moved_out", "la.330.child.moved_in"]
    # A source that knows the LA replaces a guess; a guess then keeps it.
    known = {"address": {"lines": ["9 Elm Row"], "postcode": "B5 7QQ", "la": "331"}}
    after, _ = merge(after, known)
    assert after["address"] == known["address"]
    assert merge(after, moved)[0]["address"]["la"] == "331"
    # No LA known yet (a new child, or one without): the guess is taken.
    assert merge(None, moved)[0]["address"]["la"] == "330"
    unknown = {**LEEDS, "address": {**LEEDS["address"], "la": None}}
    assert merge(unknown, at_school)[0]["address"]["la"] == "330"


def test_notifications_follow_the_published_model() -> None:
    from schemas.notification import Notification

    for n in [*for_change("c", 1, NOW, None, LEEDS, OPEN), *for_change("c", 3, NOW, LEEDS, BRUM,
                                                                       OPEN)]:
        assert Notification.model_validate(n.body).event_id == n.event_id


def test_a_shielded_candidates_scores_say_nothing_of_her_address() -> None:
    stored = {"child_id": "c1", "score": 0.91, "identity_score": 0.12, "model_version": "m1",
              "fields": [{"field": f, "level": "exact", "weight": 1.0} for f in
                         ("given_name", "nhs_number", "postcode", "address_line", "la",
                          "household")]}
    refuge = Shield(True, "383")
    for viewer in (None, "330"):
        seen = scores_for_audience(stored, refuge, viewer)
        assert seen["score"] == 0.12 and seen["address_withheld"] is True
        assert [f["field"] for f in seen["fields"]] == ["given_name", "nhs_number"]
    # Her authority, and anyone looking at an open record, see it all.
    assert scores_for_audience(stored, refuge, "383") == stored
    assert scores_for_audience(stored, OPEN, None) == stored
    # A holder of a shielded address, listed without scores, stays at 0; a score
    # without an identity score to put in its place is not shown.
    assert scores_for_audience({"child_id": "c2", "score": 0.0}, refuge)["score"] == 0.0
    assert scores_for_audience({"child_id": "c3", "score": 0.7}, refuge)["score"] is None
    assert stored["score"] == 0.91  # the stored candidate is left as it was


def test_a_shielded_candidates_place_among_the_others_follows_what_is_shown() -> None:
    # Stored best first by match probability: hers, with the address's part in it,
    # first. Listed so to anyone else, her place would say her address agrees.
    her = {"child_id": "c1", "score": 0.9, "identity_score": 0.1}
    other = {"child_id": "c2", "score": 0.5, "identity_score": 0.5}
    shields = {"c1": Shield(True, "383")}
    assert [c["child_id"] for c in candidates_for_audience([her, other], shields)] == [
        "c2", "c1"]
    assert candidates_for_audience([her, other], shields, "383") == [her, other]
    assert candidates_for_audience([her, other], {}) == [her, other]


def test_a_holder_listed_beside_a_neighbour_is_shown_only_to_her_authority() -> None:
    # Rule 6 lists a shielded child holding a place near the update's (no identity
    # score: she could not be its child). Beside a neighbour's open record, her id
    # would tell anyone which street she lives in.
    holder = {"child_id": "c9", "score": 0.0}
    other = {"child_id": "c2", "score": 0.5, "identity_score": 0.5}
    shields = {"c9": Shield(True, "383")}
    assert candidates_for_audience([other, holder], shields) == [other]
    assert candidates_for_audience([other, holder], shields, "330") == [other]
    assert candidates_for_audience([other, holder], shields, "383") == [other, holder]


def test_a_parked_update_is_open_only_to_the_authority_of_everyone_beside_it() -> None:
    a, b = Shield(True, "383"), Shield(True, "330")
    assert update_open_to(None, []) and update_open_to("383", [])
    assert update_open_to("383", [a, a]) and not update_open_to(None, [a])
    # One authority's user would see where the other's child may now be.
    assert not update_open_to("383", [a, b]) and not update_open_to("330", [a, b])
    # A shield with no authority yet (restricted at origin): nobody.
    assert not update_open_to("383", [Shield(True, None)])


def test_event_ids_are_the_uuid5_they_always_were() -> None:
    # Councils drop repeats by event id: a change must keep the id it had.
    rng = random.Random(3)
    names = ["3f2c1a4e-1111-2222-3333-444455556666:3:child.updated:383", "", "Zoë:1:x:202"]
    names += [f"{uuid.UUID(int=rng.getrandbits(128))}:{rng.randrange(1, 99)}:child.moved_in:"
              f"{rng.randrange(100, 999)}" for _ in range(2000)]
    for name in names:
        assert event_id_for(name) == str(uuid.uuid5(EVENT_NAMESPACE, name))


def test_an_address_without_an_la_keeps_the_postcodes() -> None:
    """A FHIR address names no local authority: at the record's postcode, the record's
    LA stays (dropped, her council heard nothing more of her: an independent probe
    saw 36% of records lose theirs to PDS updates). At another postcode it is not
    known, and not guessed."""
    pds = {"address": {"lines": ["12 Orchard Row", "Headingley"], "town": "Leeds",
                       "postcode": "LS6 1AA"}}
    after, changed = merge(LEEDS, pds)
    assert after["address"] == {**pds["address"], "la": "383"} and changed == ["address"]
    assert keys(for_change("c", 2, NOW, LEEDS, after, OPEN)) == ["la.383.child.updated"]
    moved = {"address": {"lines": ["9 Kirk Lane"], "town": "York", "postcode": "YO1 7HH"}}
    assert "la" not in merge(LEEDS, moved)[0]["address"]
