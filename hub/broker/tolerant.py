"""Decode any message's properties without failing, whoever published it.

RabbitMQ passes AMQP properties through as the publisher wrote them, and pamqp
(under aio-pika) raises on some that the broker accepts: a timestamp past the
year 9999 (a clock in microseconds), a message id or header name that is not
UTF-8. The exception comes out of the connection's frame reader, so the
connection closes, the message is redelivered and the connection closes again,
for ever, and with it the pipeline and the parking of dead letters. Here those
values decode to something harmless instead: an unreadable timestamp to None,
a string to text with the bad bytes escaped, an unreadable header table to one
header saying so. The message then goes through the hub like any other (and is
dead-lettered if its body is bad).

Installed by hub.broker.connection on import; `install()` is idempotent.
"""

from __future__ import annotations

import struct
from typing import Any

from pamqp import decode

UNREADABLE = "x-hub-unreadable-headers"
_installed = False


def _timestamp(original: Any) -> Any:
    def timestamp(value: bytes) -> tuple[int, Any]:
        try:
            return original(value)  # type: ignore[no-any-return]
        except (ValueError, OverflowError, OSError):
            if len(value) < 8:
                raise  # truncated: the frame itself is broken
            return 8, None

    return timestamp


def _short_str(original: Any) -> Any:
    def short_str(value: bytes) -> tuple[int, str]:
        try:
            return original(value)  # type: ignore[no-any-return]
        except UnicodeDecodeError:
            length = value[0]
            return length + 1, value[1 : length + 1].decode("utf-8", "backslashreplace")

    return short_str


def _field_table(original: Any) -> Any:
    def field_table(value: bytes) -> tuple[int, dict[str, Any]]:
        try:
            return original(value)  # type: ignore[no-any-return]
        except ValueError:  # UnicodeDecodeError included
            if len(value) < 4:
                raise
            (length,) = struct.unpack(">I", value[:4])
            if 4 + length > len(value):
                raise
            return 4 + length, {UNREADABLE: True}

    return field_table


def install() -> None:
    """Make pamqp's decoders of timestamps, short strings and tables tolerant."""
    global _installed
    if _installed:
        return
    timestamp = _timestamp(decode.timestamp)
    short_str = _short_str(decode.short_str)
    field_table = _field_table(decode.field_table)
    decode.timestamp = timestamp  # type: ignore[assignment]
    decode.short_str = short_str  # type: ignore[assignment]
    decode.field_table = field_table  # type: ignore[assignment]
    decode.METHODS["timestamp"] = timestamp
    decode.METHODS["shortstr"] = short_str
    decode.METHODS["table"] = field_table
    decode.TABLE_MAPPING[b"T"] = timestamp
    decode.TABLE_MAPPING[b"F"] = field_table
    _installed = True
