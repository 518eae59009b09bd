"""Named queries from queries.sql (each starts with a line `-- name: NAME`)."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files


@cache
def _all() -> dict[str, str]:
    text = files("hub.db").joinpath("queries.sql").read_text()
    out: dict[str, str] = {}
    for block in re.split(r"^-- name: ", text, flags=re.M)[1:]:
        name, _, body = block.partition("\n")
        out[name.strip()] = body.strip().rstrip(";")
    return out


def q(name: str) -> str:
    return _all()[name]
