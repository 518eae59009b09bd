"""Settings from the environment. Secrets may come from files (VAR_FILE)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/hub"


class ConfigError(Exception):
    pass


def _from_env(name: str, default: str) -> str:
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {name}_FILE: {exc.strerror}") from None
    return os.environ.get(name) or default


def _url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    """A service URL from the environment; one that names no such service is refused
    at once (a garbled one was read as a relative path: a database driver's traceback,
    a broker client retrying localhost for ever). The value is not echoed: it may
    carry a password."""
    url = _from_env(name, default)
    if not url.startswith(tuple(f"{s}://" for s in schemes)):
        raise ConfigError(f"{name} must be a URL starting with "
                          + " or ".join(f"{s}://" for s in schemes))
    return url


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None


@dataclass(frozen=True)
class Thresholds:
    """Match probability thresholds (see README, "Matching")."""

    link: float = 0.95  # at or above: link automatically
    # Between review and link a person decides. 0.02 (0.05 until form p3): a child
    # with both names right who moved and has one digit of the date of birth wrong
    # scores about 0.024, and below the threshold would be created again (README).
    review: float = 0.02
    ambiguous_margin: float = 0.10  # top two closer than this: too close to call
    # A shielded or severed record is a plausible candidate when its identity
    # (names, date of birth, sex; never address) scores at least this.
    shielded_plausible: float = 0.001


@dataclass(frozen=True)
class Settings:
    amqp_url: str = DEFAULT_AMQP_URL
    database_url: str = DEFAULT_DATABASE_URL
    batch_size: int = 200
    batch_wait: float = 0.05  # seconds to wait for a batch to fill
    # A clean stop waits this long for the batches in hand; then it stops anyway
    # (unacknowledged messages come back; nothing uncommitted was acknowledged).
    stop_grace: float = 30.0
    thresholds: Thresholds = field(default_factory=Thresholds)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            amqp_url=_url("HUB_AMQP_URL", DEFAULT_AMQP_URL, ("amqp", "amqps")),
            database_url=_url("HUB_DATABASE_URL", DEFAULT_DATABASE_URL,
                              ("postgresql", "postgres")),
            batch_size=int(_float("HUB_BATCH_SIZE", 200)),
            batch_wait=_float("HUB_BATCH_WAIT", 0.05),
            stop_grace=_float("HUB_STOP_GRACE", 30.0),
            thresholds=Thresholds(
                link=_float("HUB_LINK_THRESHOLD", Thresholds.link),
                review=_float("HUB_REVIEW_THRESHOLD", Thresholds.review),
            ),
        )
