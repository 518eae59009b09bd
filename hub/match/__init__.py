"""The pure matching engine: normalisation, blocking keys and Fellegi-Sunter scoring.

No database, no broker: records are canonical child dicts (or their Prepared forms).
"""

# ruff: noqa: E402 (the search path is extended before any of its modules is imported)
from hub import native as _native

_native.extend_path(__name__, __path__)

from hub.match import compare
from hub.match.blocking import index_keys, query_keys
from hub.match.compare import Prepared, prepare
from hub.match.model import DEFAULT_MODEL, FieldResult, Model, TermFrequencies
from hub.match.score import MatchScore, score, score_prepared


def forget_prepared() -> None:
    """Empty the cache of recently prepared records (compare.prepared). A pipeline
    empties it after each batch, in which blocking and scoring share it: kept, it
    held about 2 KB an update for the last 100,000 updates (some 200 MB a worker)."""
    compare._prepare_fp.cache_clear()


__all__ = [
    "forget_prepared",
    "DEFAULT_MODEL",
    "FieldResult",
    "MatchScore",
    "Model",
    "Prepared",
    "TermFrequencies",
    "index_keys",
    "prepare",
    "query_keys",
    "score",
    "score_prepared",
]
