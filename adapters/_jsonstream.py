"""A small streaming reader for big JSON documents, standard library only.

It walks the top-level object of each JSON document in a stream key by key,
and can hand the elements of one array member (a FHIR Bundle's "entry") over
one at a time, so a Bundle of a million entries never sits in memory: only one
entry (plus a read-ahead chunk) does. Each value is parsed with
json.JSONDecoder.raw_decode on a sliding text buffer.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from adapters._common import BOM, reject_constant

CHUNK = 1 << 16
MAX_VALUE = 64 << 20  # one value (an entry) may not exceed 64M characters
_WS = " \t\r\n"


class StreamError(Exception):
    """The document cannot be read any further."""

    def __init__(self, reason: str, error: str, line: int, raw: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error
        self.line = line
        self.raw = raw
        self.index: int | None = None  # the array element it broke in, if any


@dataclass
class Entry:
    """One element of the streamed array."""

    index: int
    value: Any
    raw: str


@dataclass
class Document:
    """A top-level object; `members` lacks the streamed array if there was one."""

    line: int
    members: dict[str, Any] = field(default_factory=dict)
    streamed: bool = False


class TextBuffer:
    def __init__(self, stream: BinaryIO, prefix: bytes = b"") -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._json = json.JSONDecoder(parse_constant=reject_constant)
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._base_line = 1  # line number at buf[0]
        self._first = True
        if prefix:
            self._feed(prefix)

    # -- reading -------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self._first:
            self._first = False
            if data.startswith(BOM):
                data = data[len(BOM) :]
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise StreamError(
                "invalid_encoding", "document is not valid UTF-8", self.line(), self._snippet()
            ) from exc
        if self.pos:
            self._base_line += self.buf.count("\n", 0, self.pos)
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += text

    def fill(self) -> bool:
        """Read more; False at end of stream."""
        if self.eof:
            return False
        want = max(CHUNK, len(self.buf) - self.pos)  # doubling keeps re-parsing linear
        data = self._stream.read(want)
        if not data:
            self.eof = True
            self._feed(b"")
            return False
        self._feed(data)
        return True

    def line(self) -> int:
        return self._base_line + self.buf.count("\n", 0, self.pos)

    def _snippet(self) -> str:
        return self.buf[self.pos : self.pos + 4096]

    def fail(self, reason: str, error: str) -> StreamError:
        return StreamError(reason, error, self.line(), self._snippet())

    def peek(self) -> str:
        """The next non-whitespace character, or "" at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail("invalid_json", f"expected {char!r} in the JSON document")
        self.pos += 1

    def value(self) -> tuple[Any, str]:
        """The next JSON value and its raw text."""
        self.peek()
        while True:
            start = self.pos
            try:
                value, end = self._json.raw_decode(self.buf, start)
            except json.JSONDecodeError as exc:
                # Incomplete (cut at the end of the buffer) or really broken?
                incomplete = exc.pos >= len(self.buf) - 16 or exc.msg.startswith(
                    "Unterminated string"
                )
                if incomplete and len(self.buf) - start > MAX_VALUE:
                    raise self.fail("too_large", "a JSON value is too large") from None
                if incomplete and self.fill():
                    continue
                raise self.fail("invalid_json", "the JSON document is not valid") from None
            except (ValueError, RecursionError):
                raise self.fail("invalid_json", "the JSON document is not valid") from None
            if end == len(self.buf) and not self.eof and self.fill():
                continue  # a number might go on in the next chunk
            self.pos = end
            return value, self.buf[start:end]


def documents(
    stream: BinaryIO,
    stream_member: Callable[[dict[str, Any], str], bool],
    prefix: bytes = b"",
) -> Iterator[Document | Entry]:
    """Walk each top-level object in the stream.

    `stream_member(members_so_far, key)` says whether the array under `key`
    should be streamed element by element (yielding Entry) instead of being
    kept in the Document. Raises StreamError when the text is broken.
    """
    buf = TextBuffer(stream, prefix)
    while True:
        char = buf.peek()
        if char == "":
            return
        line = buf.line()
        if char != "{":
            raise buf.fail("invalid_json", "expected a JSON object")
        buf.pos += 1
        doc = Document(line)
        if buf.peek() == "}":
            buf.pos += 1
            yield doc
            continue
        while True:
            key, _ = buf.value()
            if not isinstance(key, str):
                raise buf.fail("invalid_json", "expected a member name in the JSON document")
            buf.expect(":")
            if buf.peek() == "[" and stream_member(doc.members, key):
                doc.streamed = True
                buf.pos += 1
                index = 0
                if buf.peek() == "]":
                    buf.pos += 1
                else:
                    while True:
                        try:
                            value, raw = buf.value()
                        except StreamError as exc:
                            exc.index = index
                            raise
                        yield Entry(index, value, raw)
                        index += 1
                        char = buf.peek()
                        buf.pos += 1
                        if char == "]":
                            break
                        if char != ",":
                            buf.pos -= 1
                            broken = buf.fail("invalid_json", "expected ',' or ']' in an array")
                            broken.index = index
                            raise broken
            else:
                doc.members[key], _ = buf.value()
            char = buf.peek()
            buf.pos += 1
            if char == "}":
                break
            if char != ",":
                buf.pos -= 1
                raise buf.fail("invalid_json", "expected ',' or '}' in an object")
        yield doc
