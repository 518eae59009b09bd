"""UUID text made without the UUID object (a bulk load makes millions of ids)."""

from __future__ import annotations


def uuid_text(raw: bytes, version: int) -> str:
    """str(uuid.UUID(bytes=raw[:16], version=version)): the version and the RFC 4122
    variant set in 16 bytes, as hex with dashes."""
    n = int.from_bytes(raw[:16])
    n = (n & ~(0xF000 << 64)) | (version << 76)
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)
    x = f"{n:032x}"
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
