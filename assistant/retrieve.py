"""Search: query -> ranked papers. Dense (Chroma chunks) and lexical (BM25) results fused into one list.

Results are papers, never a wall of chunks: each paper appears once, carrying its best-matching passage.
Filters (year range, author, venue, source, collection) are applied inside both searches, before the top-k cut.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from .corpus import Paper
from .corpus.zotero_db import COLLECTION_SEPARATOR
from .index import Embedder, LibraryState, PaperQuery, Store
from .index.lexical import query_terms

log = logging.getLogger("litassist.retrieve")

Mode = Literal["hybrid", "dense", "lexical"]
CHUNKS_PER_PAPER_CANDIDATE = 3  # dense asks Chroma for this many chunks per wanted paper


class Hit(BaseModel):
    """One result: a paper and the passage of it that matched best."""

    paper_id: str
    title: str
    score: float
    text: str
    paper: Paper
    similarity: float | None = None  # cosine of the best passage (absolute, unlike the fused score)
    location: dict[str, Any] = {}  # where the passage is in the paper's PDF (Chunk.location()); {} for abstract text

    def as_json(self) -> dict[str, Any]:
        where: dict[str, Any] = {key: self.location[key] for key in ("page", "section") if key in self.location}
        return {"paper_id": self.paper_id, "title": self.title, "score": round(self.score, 4), "text": self.text,
                "has_abstract": self.paper.has_abstract, **where}


def paper_row(paper: Paper) -> dict[str, Any]:
    """What filters look at in a paper."""
    return {
        "paper_id": paper.paper_id,
        "year": paper.year,
        "authors": paper.authors,
        "venue": paper.venue,
        "collections": paper.collections,
        "files": sorted({s.file for s in paper.sources}),
        "formats": sorted({s.format for s in paper.sources}),
    }


class Filters(BaseModel):
    """Restrict a search; every given condition must hold. Author and venue are case-insensitive substrings;
    source is exact: a format name ("json" is not "jsonl"), or a source file's full path or file name. A paper
    passes `collections` when it is in any of them (see `_in_collection`)."""

    year_min: int | None = None
    year_max: int | None = None
    author: str | None = None
    venue: str | None = None
    source: str | None = None  # a format name (e.g. "bibtex"), or a source file's path or name
    paper_ids: list[str] | None = None  # only these papers (e.g. one cluster's members)
    collections: list[str] | None = None  # Zotero collections: a name, or a path "Parent/Child"
    include_undated: bool | None = None  # with a year bound: papers without a year pass too (default: they do not)

    def active(self) -> bool:
        return any(v is not None for k, v in self.model_dump().items() if k != "include_undated")

    def bounds_years(self) -> bool:
        return self.year_min is not None or self.year_max is not None

    def matches(self, row: dict[str, Any]) -> bool:
        """`row` is a paper's filter row (see `paper_row`)."""
        if self.paper_ids is not None and row["paper_id"] not in self.paper_ids:
            return False
        year = row.get("year")
        if year is None and self.bounds_years() and not self.include_undated:
            return False
        if self.year_min is not None and year is not None and year < self.year_min:
            return False
        if self.year_max is not None and year is not None and year > self.year_max:
            return False
        if self.author and not any(self.author.lower() in a.lower() for a in row["authors"]):
            return False
        if self.venue and self.venue.lower() not in (row.get("venue") or "").lower():
            return False
        if self.collections is not None and not any(
            _in_collection(wanted, stored) for wanted in self.collections for stored in row.get("collections", ())
        ):
            return False
        return not self.source or _source_matches(self.source, row)

    def undated_left_out(self, papers: Sequence[Paper]) -> int:
        """How many of `papers` have no year and pass every other condition: what a year bound without
        `include_undated` leaves out, for the message that says so (0 when nothing is left out)."""
        if not self.bounds_years() or self.include_undated:
            return 0
        widened = self.model_copy(update={"include_undated": True})
        return sum(1 for p in papers if p.year is None and widened.admits(p))

    def admits(self, paper: Paper) -> bool:
        """Whether the paper passes every condition."""
        return self.matches(paper_row(paper))

    def narrowed(self, other: Filters) -> Filters:
        """These filters narrowed by `other`, never widened: the later year_min, the earlier year_max, the
        common paper ids, and for a text condition the longer of two nested substrings ("guo" and "yanan guo":
        "yanan guo"). Two text conditions that do not nest cannot be one substring, and two sources (exact names)
        that differ cannot both hold: these filters' is kept (so are their collections, when both name some), so the
        result still bounds the search, and a caller that must honour both also checks `other.admits`. Undated
        papers pass a year bound only when neither side shuts them out (`include_undated` False)."""
        def later(a: int | None, b: int | None, pick: Any) -> int | None:
            return b if a is None else a if b is None else pick(a, b)

        def text(mine: str | None, theirs: str | None) -> str | None:
            if not mine or not theirs:
                return mine or theirs
            return theirs if mine.lower() in theirs.lower() else mine

        bounded = [f for f in (self, other) if f.year_min is not None or f.year_max is not None]  # undated: if all say
        ids = self.paper_ids
        if other.paper_ids is not None:
            ids = other.paper_ids if ids is None else [p for p in ids if p in set(other.paper_ids)]
        return Filters(
            year_min=later(self.year_min, other.year_min, max), year_max=later(self.year_max, other.year_max, min),
            author=text(self.author, other.author), venue=text(self.venue, other.venue),
            source=self.source or other.source, paper_ids=ids,
            collections=self.collections if self.collections is not None else other.collections,
            include_undated=all(f.include_undated for f in bounded) or None if bounded else None,
        )

    def describe(self) -> str:
        """The conditions in words, for messages: "years 2020-2023, author 'guo', 5 chosen papers"."""
        parts = []
        if self.year_min is not None or self.year_max is not None:
            parts.append(f"years {self.year_min if self.year_min is not None else '…'}-"
                         f"{self.year_max if self.year_max is not None else '…'}"
                         + (" or undated" if self.include_undated else ""))
        parts += [f"{name} {value!r}" for name, value in
                  (("author", self.author), ("venue", self.venue), ("source", self.source)) if value]
        if self.collections is not None:
            parts.append(f"collection {' or '.join(repr(c) for c in self.collections) or '(none)'}")
        if self.paper_ids is not None:
            parts.append(f"{len(self.paper_ids)} chosen papers")
        return ", ".join(parts) or "the whole library"


def _in_collection(wanted: str, stored: str) -> bool:
    """A stored collection path ("Thesis/Chapter 2") is in the wanted collection when the wanted text, ignoring
    case, is the whole path, its last part or trailing parts (the collection's own name), or a leading part (a
    parent takes in its subcollections). Plain comparisons, no pattern: any character in a name is literal."""
    wanted, stored = wanted.strip().casefold(), stored.casefold()
    sep = COLLECTION_SEPARATOR
    return bool(wanted) and (wanted == stored or stored.endswith(sep + wanted) or stored.startswith(wanted + sep))


def _source_matches(wanted: str, row: dict[str, Any]) -> bool:
    """A format by name (any case), or a file by its stored path, its name, or a path naming the same file."""
    wanted = wanted.strip()
    if wanted.lower() in (fmt.lower() for fmt in row["formats"]):
        return True
    as_path = os.path.abspath(os.path.expanduser(wanted))
    return any(wanted in (file, Path(file).name) or as_path == file for file in row["files"])


# --- lexical search and filters ------------------------------------------------------------------------------


def paper_query(store: Store, filters: Filters) -> PaperQuery:
    """`filters` as conditions the catalog decides exactly, with `Filters.matches`'s meaning. A source or
    collection is matched here, by `_source_matches` and `_in_collection`, against the library's distinct formats,
    files and collection names (a few, read from indexes), and becomes the list of those it matches. Author names
    are one line (Paper), so an author holding a line break matches no paper."""
    formats = files = collections = None
    if filters.source:
        pairs = store.source_pairs()
        formats = sorted({fmt for _, fmt in pairs if _source_matches(filters.source, {"formats": [fmt], "files": []})})
        files = sorted({file for file, _ in pairs if _source_matches(filters.source, {"formats": [], "files": [file]})})
    if filters.collections is not None:
        collections = [name for name in store.collection_names()
                       if any(_in_collection(wanted, name) for wanted in filters.collections)]
    author = filters.author.lower() if filters.author else None
    return PaperQuery(
        year_min=filters.year_min, year_max=filters.year_max, undated=bool(filters.include_undated),
        paper_ids=[] if author and "\n" in author else filters.paper_ids, authors=author,
        venue=filters.venue.lower() if filters.venue else None, formats=formats, files=files, collections=collections)


def allowed_ids(store: Store, filters: Filters | None) -> set[str] | None:
    """The ids of the papers passing `filters` (None: no filter)."""
    if not filters or not filters.active():
        return None
    return {pid for pid, _ in store.query_ids(paper_query(store, filters))}


# --- fusion ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidates:
    """One query's candidates: dense maps paper -> (best chunk cosine, that chunk's id), lexical paper -> BM25."""

    vector: np.ndarray | None
    dense: dict[str, tuple[float, str]]
    lexical: dict[str, float]


def _minmax(values: dict[str, float]) -> dict[str, float]:
    if not values:
        return {}
    low, high = min(values.values()), max(values.values())
    span = high - low
    return {key: (v - low) / span if span > 0 else 1.0 for key, v in values.items()}


def fuse(dense: dict[str, float], lexical: dict[str, float], dense_weight: float) -> dict[str, float]:
    """Min-max normalize each list over its own candidates, then mix linearly; absent means 0.

    Tuned on SciFact train (benchmarks/tune_fusion.py); it beat reciprocal rank fusion there.
    """
    d, lx = _minmax(dense), _minmax(lexical)
    return {pid: dense_weight * d.get(pid, 0.0) + (1 - dense_weight) * lx.get(pid, 0.0) for pid in set(d) | set(lx)}


Reranker = Callable[[str, list[Hit]], list[Hit]]
SEARCH_BATCH = 64  # queries per embedding pass of a streamed batch search (the local model's batch is 32)


class Retriever:
    """Hybrid search over one library: dense (Chroma) and lexical (the catalog's BM25) candidates, fused.

    With a `reranker`, the top `rerank_candidates` of each search are re-ordered by it before the top-k cut.
    """

    def __init__(self, store: Store, embedder: Embedder, dense_weight: float,
                 reranker: Reranker | None = None, rerank_candidates: int = 20):
        self.store = store
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.reranker = reranker
        self.rerank_candidates = rerank_candidates

    def search(self, query: str, k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid") -> list[Hit]:
        return self.search_many([query], k, filters, mode)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid"
    ) -> list[list[Hit]]:
        """Batch search (query vectors computed in one pass), for scripts and evaluation.

        Everything that reads the library happens inside one `store.reading()` view (a read transaction of the
        catalog), so a search that runs during an ingest sees the library before the ingest or after it."""
        cut = max(k, self.rerank_candidates) if self.reranker else k
        vectors = self._vectors(queries, mode)
        ranked_hits = []
        with self.store.reading() as state:
            for query, candidates in zip(
                queries, self._candidates(state, queries, vectors, max(k, 100), filters, mode)
            ):
                dense_scores = {pid: score for pid, (score, _) in candidates.dense.items()}
                if mode == "hybrid":
                    scores = fuse(dense_scores, candidates.lexical, self.dense_weight)
                else:
                    scores = dense_scores if mode == "dense" else candidates.lexical
                ranked = sorted(scores, key=lambda pid: (-scores[pid], pid))[:cut]
                ranked_hits.append((query, self._hits(ranked, scores, candidates.dense, candidates.vector)))
        # the re-ranker calls a model (seconds): outside the view, so it never holds up a writer's commit
        return [(self.reranker(query, hits) if self.reranker else hits)[:k] for query, hits in ranked_hits]

    def search_stream(
        self, queries: Iterable[str], k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid",
        batch_size: int = SEARCH_BATCH,
    ) -> Iterator[list[Hit]]:
        """`search_many` over any number of queries: read `batch_size` at a time, each query's hits yielded as soon
        as its batch is searched, so the first results come before the last query is read and memory does not grow
        with the number of queries. Each batch is one reading view: a library changed meanwhile is seen whole by
        each batch, before or after the change."""
        pending = iter(queries)
        while batch := list(itertools.islice(pending, batch_size)):
            yield from self.search_many(batch, k, filters, mode)

    def candidates(
        self, queries: Sequence[str], pool: int, filters: Filters | None = None, mode: Mode = "hybrid"
    ) -> list[Candidates]:
        """Up to `pool` papers per query from each retriever the mode uses, with their raw scores."""
        vectors = self._vectors(queries, mode)
        with self.store.reading() as state:
            return self._candidates(state, queries, vectors, pool, filters, mode)

    def _vectors(self, queries: Sequence[str], mode: Mode) -> np.ndarray | Sequence[np.ndarray | None]:
        return self.embedder.embed_documents(list(queries)) if mode != "lexical" else [None] * len(queries)

    def _candidates(
        self, state: LibraryState, queries: Sequence[str], vectors: np.ndarray | Sequence[np.ndarray | None], pool: int,
        filters: Filters | None, mode: Mode,
    ) -> list[Candidates]:
        allowed = allowed_ids(self.store, filters)
        return [
            Candidates(
                vector=vector,
                dense=self._dense(vector, pool, allowed) if mode != "lexical" and vector is not None else {},
                lexical=self._lexical(query, pool, allowed) if mode != "dense" else {},
            )
            for query, vector in zip(queries, vectors)
        ]

    def _lexical(self, query: str, pool: int, allowed: set[str] | None) -> dict[str, float]:
        terms = query_terms(query)
        if not terms or (allowed is not None and not allowed):
            return {}
        return dict(self.store.lexical_search(terms, pool, allowed))

    def _dense(self, vector: np.ndarray, pool: int, allowed: set[str] | None) -> dict[str, tuple[float, str]]:
        """Best chunk per paper: paper -> (cosine, chunk id)."""
        best: dict[str, tuple[float, str]] = {}
        for paper_id, score, chunk_id, _ in self.store.dense(vector, pool * CHUNKS_PER_PAPER_CANDIDATE, allowed):
            if paper_id not in best or score > best[paper_id][0]:
                best[paper_id] = (score, chunk_id)
        return best

    def _hits(
        self, ranked: list[str], scores: dict[str, float], dense: dict[str, tuple[float, str]], vector: Any
    ) -> list[Hit]:
        papers = self.store.get_papers(ranked)
        missing = [pid for pid in ranked if pid in papers and pid not in dense]
        passages = self.store.best_passages(missing, vector) if missing else {}
        chunks = self.store.chunk_texts([dense[pid][1] for pid in ranked if pid in papers and pid in dense])
        # only papers with a PDF have passages with a place (an abstract-only library reads nothing more)
        locations = self.store.chunk_locations(
            [dense[pid][1] for pid in ranked if pid in papers and pid in dense and papers[pid].pdf is not None])
        hits = []
        for pid in ranked:
            if pid not in papers:
                continue
            text = (
                chunks.get(dense[pid][1], papers[pid].abstract)
                if pid in dense
                else passages.get(pid, papers[pid].abstract)
            )
            similarity = dense[pid][0] if pid in dense else None
            location = locations.get(dense[pid][1], {}) if pid in dense else {}
            hits.append(
                Hit(paper_id=pid, title=papers[pid].title, score=scores[pid], text=text, paper=papers[pid],
                    similarity=similarity, location=location)
            )
        return hits
