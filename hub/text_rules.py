"""What text an update may hold: visible, one script to a word, bounded, storable.

An update's strings are stored, matched and shown to operators, and some
characters break one of those:

- NUL and lone surrogates cannot be stored in PostgreSQL at all: a valid-looking
  update holding one would fail on every delivery (a poison message) instead of
  being dead-lettered once.
- Control characters (tab and line breaks aside), invisible formatting
  (zero-width spaces, bidi overrides), unassigned and private-use code points
  hide from an operator what a value is.
- A lookalike compatibility form (fullwidth "Ｌ", mathematical "𝐋", the "ﬁ"
  ligature) or a word mixing Latin with Cyrillic or Greek letters ("Оrchard"
  with a Cyrillic O) looks like another value but does not match it: a shielded
  child's refuge address written that way would pass the guard that keeps it
  out of open records, and a shielded child's name that way would not find its
  record.
- A string of megabytes is no name and would make matching slow for everyone.

Errors name the field path and the kind of problem, never the value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

MAX_TEXT = 1000  # characters in one string: no name, address line or id is longer
MAX_ITEMS = 100  # items in one list (carers, services, address lines, former names)

# Format characters a real name needs: zero-width non-joiner and joiner (Persian, Indic).
_ALLOWED_FORMAT = frozenset({"\u200c", "\u200d"})
# Tab and line breaks are whitespace, not control: a quoted CSV field may hold
# an address line broken over two lines.
_WHITESPACE_CONTROL = frozenset("\t\n\r")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Scripts whose letters pass for Latin ones (and for each other).
_CONFUSABLE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC"})
_WORD = re.compile(r"[^\W\d_]+")


def storable(text: str) -> str:
    """Text PostgreSQL can hold, nothing dropped: lone surrogates and NUL escaped."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")


def _bad_character(ch: str) -> str | None:
    category = unicodedata.category(ch)
    if category[0] == "C" and ch not in _ALLOWED_FORMAT and ch not in _WHITESPACE_CONTROL:
        return {
            "Cc": "a control character",
            "Cf": "an invisible formatting character",
            "Cs": "a lone surrogate",
            "Co": "a private-use character",
        }.get(category, "an unassigned code point")
    if category in ("Zl", "Zp"):
        return "a line or paragraph separator"
    folded = unicodedata.normalize("NFKC", ch)
    if folded != ch and folded.isascii() and folded.isalnum():
        return "a lookalike of an ASCII letter or digit"
    return None


def _script(ch: str) -> str | None:
    if unicodedata.category(ch) == "Lm":  # modifier letters go with any script
        return None
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else None


def _mixed_script(text: str) -> bool:
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        scripts = {s for s in map(_script, word) if s}
        if len(scripts) > 1 and scripts & _CONFUSABLE_SCRIPTS:
            return True
    return False


def text_problem(text: str) -> str | None:
    """What is wrong with one string, or None."""
    if len(text) > MAX_TEXT:
        return f"longer than {MAX_TEXT} characters"
    if text.isascii():  # the common case, fast: only control characters can be wrong
        return "holds a control character" if _ASCII_CONTROL.search(text) else None
    for ch in text:
        kind = _bad_character(ch)
        if kind:
            return f"holds {kind}"
    if _mixed_script(text):
        return "mixes Latin with Cyrillic or Greek letters in one word"
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str | None, int]]:
    """(path, string or None, list length) for every string and list in a JSON value."""
    if isinstance(value, str):
        yield path, value, 0
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        yield path, None, len(value)
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def problem(update: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, error) for the first unacceptable string or list in a canonical
    update's JSON form (whose keys the schema has already checked), or None."""
    for path, text, items in _strings(update, ""):
        if text is None:
            if items > MAX_ITEMS:
                return "too_large", f"{path} has more than {MAX_ITEMS} items"
            continue
        found = text_problem(text)
        if found:
            reason = "too_large" if found.startswith("longer") else "invalid_character"
            return reason, f"{path} {found}"
    return None
