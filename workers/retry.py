"""The retry policy, in one place: which errors are transient and how to wait."""

from __future__ import annotations

import aiormq
import asyncpg
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from hub.db.store import IndexMoved

TRANSIENT_PG = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # Out of memory or of lock table ("out of shared memory": other transactions
    # hold many locks), disk full: the server's state, not the message's. Retried,
    # never taken for a poison message and dead-lettered.
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.AdminShutdownError,
)


# A cut or restarted broker: the robust connection reconnects and these pass.
TRANSIENT_AMQP = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.ConnectionClosed,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(
        exc, (*TRANSIENT_PG, *TRANSIENT_AMQP, ConnectionError, OSError, TimeoutError,
              IndexMoved)
    )


def transient(max_seconds: float = 600.0) -> AsyncRetrying:
    """Retry transient failures with capped, jittered backoff, for at most `max_seconds`.

    The messages stay unacknowledged meanwhile, so a long outage loses nothing:
    if the worker gives up or dies, the broker delivers them again.
    """
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        # 0.2 s doubling to 10 s, plus up to 1 s of jitter (wait_exponential_jitter's
        # `initial` is deprecated in tenacity 9 and its replacement absent from 8).
        wait=wait_exponential(multiplier=0.2, max=10) + wait_random(0, 1),
        stop=stop_after_delay(max_seconds),
        reraise=True,
    )
