"""Blocking keys go to PostgreSQL joined by chr(31); a key holding that character
goes on its own, never split or lost."""

from hub.db.store import packed


def test_keys_are_joined_and_an_odd_one_goes_apart() -> None:
    assert packed(["d:1", "n:2"]) == ("d:1\x1fn:2", [])
    assert packed(["d:1", "u:A\x1fB", "n:2"]) == ("d:1\x1fn:2", ["u:A\x1fB"])
    assert packed(["u:\x1f"]) == ("", ["u:\x1f"])
    assert packed([]) == ("", [])
