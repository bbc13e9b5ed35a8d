"""Embedding vectors of the semantic cache: stored as unit-length float32 bytes, so cosine
similarity is a plain dot product (pure Python: the candidates are a few hundred at most)."""

from __future__ import annotations

import math
from array import array


def pack(vector: list[float]) -> bytes | None:
    """The unit vector as float32 bytes; None for an empty or zero vector."""
    norm = math.sqrt(sum(x * x for x in vector))
    if not vector or norm == 0 or not math.isfinite(norm):
        return None
    return array("f", (x / norm for x in vector)).tobytes()


def similarity(a: bytes, b: bytes) -> float:
    """Cosine similarity of two packed unit vectors; 0 when their dimensions differ."""
    if len(a) != len(b):
        return 0.0
    return sum(x * y for x, y in zip(array("f", a), array("f", b), strict=True))


def best_match(vector: bytes, candidates: list[tuple[str, bytes]], threshold: float) -> str | None:
    """The key of the most similar candidate at or above `threshold`."""
    best, best_score = None, threshold
    for key, other in candidates:
        score = similarity(vector, other)
        if score >= best_score:
            best, best_score = key, score
    return best
