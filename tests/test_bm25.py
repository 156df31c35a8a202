"""The lexical index's ranking against a plain BM25 written out in Python: the fast paths (float32 weights, the
sampled floor for the top k) must give the same documents in the same order, ties included."""

from __future__ import annotations

import math
import random
import sqlite3
from collections import Counter

import numpy as np
import pytest

from assistant.index import bm25

pytestmark = pytest.mark.unit


def plain_bm25(documents: dict[int, list[str]], terms: list[str], k: int) -> list[tuple[int, float]]:
    average = sum(map(len, documents.values())) / len(documents)
    scores: Counter[int] = Counter()
    for term in dict.fromkeys(terms):
        holders = [row for row, tokens in documents.items() if term in tokens]
        idf = math.log(1 + (len(documents) - len(holders) + 0.5) / (len(holders) + 0.5))
        for row in holders:
            tf, length = documents[row].count(term), len(documents[row])
            scores[row] += idf * tf * (bm25.K1 + 1) / (tf + bm25.K1 * (1 - bm25.B + bm25.B * length / average))
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


def index(documents: dict[int, list[str]]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(bm25.SCHEMA)
    bm25.add(db, [(row, " ".join(tokens)) for row, tokens in documents.items()])
    return db


@pytest.mark.parametrize("seed", range(5))
def test_search_ranks_as_plain_bm25_ties_by_row(seed: int) -> None:
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(40)]  # few words: many documents tie on the same score
    documents = {row: rng.choices(vocabulary, k=rng.randint(1, 12)) for row in range(1, 3000)}
    db = index(documents)
    for k in (1, 10, 100, 500):
        terms = rng.sample(vocabulary, 3)
        found = bm25.search(db, bm25.PostingsCache(), terms, k)
        expected = plain_bm25(documents, terms, k)
        assert [row for row, _ in found] == [row for row, _ in expected], (terms, k)
        assert np.allclose([score for _, score in found], [score for _, score in expected], rtol=1e-5)


def test_removed_and_filtered_documents_rank_as_if_absent() -> None:
    """Tombstoned rows are zeroed after the scatter-add and leave the document frequencies; `allowed` only restricts
    which documents rank (frequencies stay the library's, as in plain BM25 over the library)."""
    rng = random.Random(11)
    vocabulary = [f"w{i}" for i in range(30)]
    documents = {row: rng.choices(vocabulary, k=rng.randint(1, 10)) for row in range(1, 2000)}
    db = index(documents)
    removed = rng.sample(sorted(documents), 300)
    bm25.delete(db, removed)
    remaining = {row: tokens for row, tokens in documents.items() if row not in removed}
    terms = ["w1", "w2", "w3"]
    expected = plain_bm25(remaining, terms, 50)
    assert [row for row, _ in bm25.search(db, bm25.PostingsCache(), terms, 50)] == [row for row, _ in expected]
    allowed = np.array(sorted(rng.sample(sorted(documents), 400)), dtype=np.int64)
    within = [row for row, _ in plain_bm25(remaining, terms, len(remaining)) if row in set(allowed.tolist())][:20]
    assert [row for row, _ in bm25.search(db, bm25.PostingsCache(), terms, 20, allowed)] == within


def test_top_is_exact_where_the_sampled_floor_is_tight() -> None:
    """Scores spread so that most of the k best fall outside the every-64th sample."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        scores = np.where(rng.random(5000) < 0.3, rng.integers(0, 9, 5000), 0).astype(np.float64)
        k = int(rng.integers(1, 300))
        nonzero = np.flatnonzero(scores)
        expected = nonzero[np.lexsort((nonzero, -scores[nonzero]))][:k]
        assert bm25._top(scores, k).tolist() == expected.tolist()
