"""A deterministic stand-in for the embedding model, for unit tests of control flow (tests/conftest.py: no model,
no Chroma, no network in the unit tier). Texts that share words get close vectors, so rankings and thresholds
behave like the real model's on easy cases; nothing here says how well MiniLM ranks."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

WORD = re.compile(r"[a-z0-9]+")


class HashEmbedder:
    """Bag of lower-cased words hashed (CRC32) into `dimension` buckets, L2-normalized; the same text always gives
    the same vector, on every machine."""

    name = "hash-test"

    def __init__(self, dimension: int = 256) -> None:
        self.dimension = dimension

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                vectors[row, zlib.crc32(word.encode()) % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
