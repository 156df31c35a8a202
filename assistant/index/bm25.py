"""BM25 in the catalog, updated in place: immutable posting segments, merged in tiers, scored with numpy.

Why not SQLite's FTS5: it ranks SciFact as bm25s did (nDCG@10 0.684 vs 0.686, benchmarks/lexical_ranking.py) but
computes BM25 for every document an OR query matches, ~10x the CPU of bm25s at 5k papers, growing with the
library (beyond the 25 ms p50 target at 50k). bm25s scores from a sparse matrix and is fast, but its index cannot
change: each commit rebuilt it from every paper. Here each commit writes one *segment*: for each term of its
papers, their row ids, term frequencies and lengths (three arrays in one row of `postings`). Removed papers are
tombstones until their segment is merged. Segments of similar size (the same power-of-4 tier) are merged four at
a time, so a paper is rewritten O(log n) times over its life and a commit costs what it adds, amortized. A query
reads each term's arrays (cached per segment: segments never change) and scores with Lucene's BM25 as bm25s did
(k1=1.5, b=0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5))), over the same tokens.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np

K1, B = 1.5, 0.75
MERGE_FANIN = 4  # segments of one tier merged together
SEGMENT_DOCS = 20_000  # the most documents one new segment takes (bounds a big commit's memory)
CACHE_ENTRIES = 8_000_000  # postings held in memory per process (~80 MB), least recently used dropped first

# Postings live in a rowid table found through small indexes. They were a WITHOUT ROWID table keyed by (term,
# segment), whose b-tree holds the blobs themselves: SQLite reads a whole overflowing cell to compare keys while it
# seeks, so each lookup read megabytes of other terms' postings (1.2 ms per term at 1M papers, 11 ms a query).
SCHEMA = """
CREATE TABLE IF NOT EXISTS lexical_segments (id INTEGER PRIMARY KEY, docs INTEGER NOT NULL, tier INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS postings (term TEXT NOT NULL, segment INTEGER NOT NULL, docs BLOB NOT NULL,
                                     tfs BLOB NOT NULL, lengths BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS postings_term ON postings(term, segment);
CREATE INDEX IF NOT EXISTS postings_segment ON postings(segment);
CREATE TABLE IF NOT EXISTS lexical_docs (paper INTEGER PRIMARY KEY, segment INTEGER NOT NULL, length INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS lexical_docs_segment ON lexical_docs(segment);
CREATE TABLE IF NOT EXISTS lexical_deleted (paper INTEGER PRIMARY KEY, segment INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lexical_stats (id INTEGER PRIMARY KEY CHECK (id = 0), docs INTEGER NOT NULL,
                                          tokens INTEGER NOT NULL);
INSERT OR IGNORE INTO lexical_stats(id, docs, tokens) VALUES(0, 0, 0)
"""

Postings = tuple[np.ndarray, np.ndarray, np.ndarray]  # row ids (int64), term frequencies, document lengths


def _tier(docs: int) -> int:
    return int(math.log(max(docs, 1), MERGE_FANIN))


def _pack(rows: Sequence[int], tfs: Sequence[int], lengths: Sequence[int]) -> tuple[bytes, bytes, bytes]:
    return (np.asarray(rows, dtype=np.int64).tobytes(), np.asarray(tfs, dtype=np.int32).tobytes(),
            np.asarray(lengths, dtype=np.int32).tobytes())


def _unpack(docs: bytes, tfs: bytes, lengths: bytes) -> Postings:
    """A posting list as arrays; one whose parts disagree is a damaged database (reported as such, not a crash)."""
    try:
        unpacked = (np.frombuffer(docs, dtype=np.int64), np.frombuffer(tfs, dtype=np.int32),
                    np.frombuffer(lengths, dtype=np.int32))
    except (ValueError, TypeError) as error:
        raise sqlite3.DatabaseError(f"a posting list is malformed ({error})") from None
    if not unpacked[0].size == unpacked[1].size == unpacked[2].size:
        raise sqlite3.DatabaseError("a posting list is malformed (its parts differ in length)")
    return unpacked


def add(db: sqlite3.Connection, documents: Iterable[tuple[int, str]]) -> None:
    """Index documents (catalog row id, space-separated tokens): one new segment per SEGMENT_DOCS of them, so a
    commit of a million papers never holds more than one segment's postings; then merge tiers that filled."""
    batch: list[tuple[int, str]] = []
    for document in documents:
        batch.append(document)
        if len(batch) >= SEGMENT_DOCS:
            _add_segment(db, batch)
            batch = []
    if batch:
        _add_segment(db, batch)
    _merge_full_tiers(db)


def _add_segment(db: sqlite3.Connection, documents: list[tuple[int, str]]) -> None:
    by_term: dict[str, tuple[list[int], list[int], list[int]]] = {}
    lengths: list[tuple[int, int]] = []
    for row, text in documents:
        tokens = text.split()
        lengths.append((row, len(tokens)))
        for term, tf in Counter(tokens).items():
            postings = by_term.setdefault(term, ([], [], []))
            postings[0].append(row)
            postings[1].append(tf)
            postings[2].append(len(tokens))
    segment = db.execute("INSERT INTO lexical_segments(docs, tier) VALUES(?, ?)",
                         (len(lengths), _tier(len(lengths)))).lastrowid
    db.executemany("INSERT INTO postings(term, segment, docs, tfs, lengths) VALUES(?,?,?,?,?)",
                   [(term, segment, *_pack(*postings)) for term, postings in by_term.items()])
    db.executemany("INSERT INTO lexical_docs(paper, segment, length) VALUES(?,?,?)",
                   [(row, segment, length) for row, length in lengths])
    db.execute("UPDATE lexical_stats SET docs = docs + ?, tokens = tokens + ?",
               (len(lengths), sum(length for _, length in lengths)))


def delete(db: sqlite3.Connection, rows: Sequence[int]) -> None:
    """Tombstone documents (their postings go when their segment is merged)."""
    for start in range(0, len(rows), 500):
        batch = list(rows[start : start + 500])
        marks = ",".join("?" * len(batch))
        found = db.execute(
            f"SELECT paper, segment, length FROM lexical_docs WHERE paper IN ({marks})", batch
        ).fetchall()
        if not found:
            continue
        db.executemany("INSERT OR IGNORE INTO lexical_deleted(paper, segment) VALUES(?, ?)",
                       [(row, segment) for row, segment, _ in found])
        db.execute(f"DELETE FROM lexical_docs WHERE paper IN ({marks})", batch)
        db.execute("UPDATE lexical_stats SET docs = docs - ?, tokens = tokens - ?",
                   (len(found), sum(length for *_, length in found)))


def _merge_full_tiers(db: sqlite3.Connection) -> None:
    while True:
        full = db.execute("SELECT tier, group_concat(id) FROM lexical_segments GROUP BY tier HAVING count(*) >= ? "
                          "ORDER BY tier LIMIT 1", (MERGE_FANIN,)).fetchone()
        if full is None:
            return
        _merge(db, [int(part) for part in full[1].split(",")][:MERGE_FANIN])


def _merge(db: sqlite3.Connection, segments: list[int]) -> None:
    """Rewrite several segments as one, without their tombstoned documents."""
    marks = ",".join("?" * len(segments))
    dead = np.array([row for (row,) in db.execute(
        f"SELECT paper FROM lexical_deleted WHERE segment IN ({marks})", segments)], dtype=np.int64)
    docs = db.execute(f"SELECT count(*) FROM lexical_docs WHERE segment IN ({marks})", segments).fetchone()[0]
    merged = db.execute("INSERT INTO lexical_segments(docs, tier) VALUES(?, ?)", (docs, _tier(docs))).lastrowid
    current: str | None = None
    parts: list[Postings] = []
    rows = []

    def flush() -> None:
        ids, tfs, lengths = (np.concatenate([p[i] for p in parts]) for i in range(3))
        if dead.size:
            keep = ~np.isin(ids, dead)
            ids, tfs, lengths = ids[keep], tfs[keep], lengths[keep]
        if ids.size:
            rows.append((current, merged, ids.tobytes(), tfs.tobytes(), lengths.tobytes()))

    for term, blob_docs, blob_tfs, blob_lengths in db.execute(
            f"SELECT term, docs, tfs, lengths FROM postings WHERE segment IN ({marks}) ORDER BY term", segments):
        if term != current and parts:
            flush()
            parts = []
        current = term
        parts.append(_unpack(blob_docs, blob_tfs, blob_lengths))
        if len(rows) >= 10_000:
            db.executemany("INSERT INTO postings(term, segment, docs, tfs, lengths) VALUES(?,?,?,?,?)", rows)
            rows = []
    if parts:
        flush()
    db.executemany("INSERT INTO postings(term, segment, docs, tfs, lengths) VALUES(?,?,?,?,?)", rows)
    db.execute(f"DELETE FROM postings WHERE segment IN ({marks})", segments)
    db.execute(f"UPDATE lexical_docs SET segment=? WHERE segment IN ({marks})", [merged, *segments])
    db.execute(f"DELETE FROM lexical_deleted WHERE segment IN ({marks})", segments)
    db.execute(f"DELETE FROM lexical_segments WHERE id IN ({marks})", segments)


class PostingsCache:
    """Decoded postings by (term, segment), shared by a process's searches: a segment never changes once written."""

    def __init__(self, entries: int = CACHE_ENTRIES):
        self.entries = entries
        self._held = 0
        self._lru: OrderedDict[tuple[str, int], Postings] = OrderedDict()
        self._guard = threading.Lock()

    def postings(self, db: sqlite3.Connection, term: str) -> list[Postings]:
        """The term's postings in every segment. The segment list is read first and only uncached postings are
        fetched: a common term's blobs fill SQLite overflow pages that a cached segment need not read again."""
        found = []
        for (segment,) in db.execute("SELECT segment FROM postings WHERE term=?", (term,)).fetchall():
            key = (term, segment)
            with self._guard:
                cached = self._lru.get(key)
                if cached is not None:
                    self._lru.move_to_end(key)
            if cached is None:
                cached = _unpack(*db.execute("SELECT docs, tfs, lengths FROM postings WHERE term=? AND segment=?",
                                             (term, segment)).fetchone())
                self._keep(key, cached)
            found.append(cached)
        return found

    def _keep(self, key: tuple[str, int], postings: Postings) -> None:
        with self._guard:
            self._lru[key] = postings
            self._held += postings[0].size
            while self._held > self.entries and self._lru:
                _, dropped = self._lru.popitem(last=False)
                self._held -= dropped[0].size


def search(db: sqlite3.Connection, cache: PostingsCache, terms: Sequence[str], k: int,
           allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The `k` best documents for `terms` as (row id, BM25 score), best first; `allowed` (sorted row ids)
    restricts the candidates. Call inside a read transaction: segments, tombstones and statistics agree.

    Each segment's postings are added into one score array in place, and tombstoned rows are zeroed after: at 1M
    papers, concatenating a query's 940k postings and copying them past the tombstones took 14 ms, and
    `bincount` over them 10 ms; the scatter-add takes about 1 ms."""
    n_docs, n_tokens = db.execute("SELECT docs, tokens FROM lexical_stats").fetchone()
    if not n_docs or not terms:
        return []
    average = n_tokens / n_docs
    dead = np.array([row for (row,) in db.execute("SELECT paper FROM lexical_deleted")], dtype=np.int64)
    postings = []
    for term in dict.fromkeys(terms):
        parts = [(ids, tfs, lengths) for ids, tfs, lengths in cache.postings(db, term) if ids.size]
        holders = sum(ids.size for ids, _, _ in parts)
        if dead.size:  # most libraries have no tombstones: no mask over the term's postings then
            holders -= sum(int(np.isin(ids, dead).sum()) for ids, _, _ in parts)
        if holders:
            postings.append((math.log(1 + (n_docs - holders + 0.5) / (holders + 0.5)), parts))
    if not postings:
        return []
    scores = np.zeros(1 + max(int(ids.max()) for _, parts in postings for ids, _, _ in parts))
    for idf, parts in postings:
        for ids, tfs, lengths in parts:
            weights = _term_weights(idf, tfs, lengths, average)
            if allowed is not None:
                keep = np.isin(ids, allowed)
                ids, weights = ids[keep], weights[keep]
            np.add.at(scores, ids, weights.astype(np.float64))  # `add.at` is fast only when the dtypes match
    scores[dead[dead < scores.size]] = 0
    return [(int(row), float(scores[row])) for row in _top(scores, k)]


def _term_weights(idf: float, tfs: np.ndarray, lengths: np.ndarray, average: float) -> np.ndarray:
    """BM25's per-posting weight in float32, in place: the same formula written with int32 lengths divided by a
    float went through float64 temporaries and took 11 ms for a query's 940k postings at 1M papers (now 0.6 ms)."""
    tf = tfs.astype(np.float32)
    norm = lengths.astype(np.float32)
    norm *= np.float32(K1 * B / average)
    norm += np.float32(K1 * (1 - B))
    norm += tf
    tf *= np.float32(idf * (K1 + 1))
    tf /= norm
    return tf


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest non-zero scores, best first, ties by lower index. Exact, without partitioning
    the whole array (16 ms at 1M papers): the k-th best of every 64th score is a floor that at least k scores
    reach, and only the scores at or above it (about 64k) are ranked."""
    sample = scores[::64]
    if sample.size > k:
        floor = np.partition(sample, sample.size - k)[sample.size - k]
        candidates = np.flatnonzero(scores >= max(floor, np.nextafter(0, 1)))
    else:
        candidates = np.flatnonzero(scores)
    if candidates.size > k:  # keep the k-th best and every tie with it, then order only those
        kth = np.partition(scores[candidates], candidates.size - k)[candidates.size - k]
        candidates = candidates[scores[candidates] >= kth]
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    return candidates[order]
