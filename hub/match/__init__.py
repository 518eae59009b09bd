"""The pure matching engine: normalisation, blocking keys and Fellegi-Sunter scoring.

No database, no broker: records are canonical child dicts (or their Prepared forms).
"""

from hub.match.blocking import index_keys, query_keys
from hub.match.compare import Prepared, prepare
from hub.match.model import DEFAULT_MODEL, FieldResult, Model, TermFrequencies
from hub.match.score import MatchScore, score, score_prepared

__all__ = [
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
