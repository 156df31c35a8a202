"""Search: query -> ranked papers. Dense (Chroma chunks) and lexical (BM25) results fused into one list.

Results are papers, never a wall of chunks: each paper appears once, carrying its best-matching passage.
Filters (year range, author, venue, source, collection) are applied inside both searches, before the top-k cut.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from .corpus import Paper
from .corpus.zotero_db import COLLECTION_SEPARATOR
from .index import Embedder, LibraryState, Store

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

    def as_json(self) -> dict[str, Any]:
        return {"paper_id": self.paper_id, "title": self.title, "score": round(self.score, 4), "text": self.text,
                "has_abstract": self.paper.has_abstract}


def paper_row(paper: Paper) -> dict[str, Any]:
    """What filters look at in a paper: the lexical index keeps one such row per paper."""
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
        """`row` is a lexical-index metadata row (see `paper_row`)."""
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
        that differ cannot both hold: these filters' is kept (so are their collections, when both name some), so the result still bounds the search, and a caller
        that must honour both also checks `other.admits`. Undated papers pass a year bound only when neither side
        shuts them out (`include_undated` False)."""
        def later(a: int | None, b: int | None, pick: Any) -> int | None:
            return b if a is None else a if b is None else pick(a, b)

        def text(mine: str | None, theirs: str | None) -> str | None:
            if not mine or not theirs:
                return mine or theirs
            return theirs if mine.lower() in theirs.lower() else mine

        ids = self.paper_ids
        if other.paper_ids is not None:
            ids = other.paper_ids if ids is None else [p for p in ids if p in set(other.paper_ids)]
        return Filters(
            year_min=later(self.year_min, other.year_min, max), year_max=later(self.year_max, other.year_max, min),
            author=text(self.author, other.author), venue=text(self.venue, other.venue),
            source=self.source or other.source, paper_ids=ids,
            collections=self.collections if self.collections is not None else other.collections,
            include_undated=self.include_undated if other.include_undated is None else other.include_undated
            if self.include_undated is None and not self.bounds_years() else
            bool(self.include_undated) and other.include_undated,
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


# --- lexical index -----------------------------------------------------------------------------------------


def _lexical_text(paper: Paper) -> str:
    """Title, authors, venue, year, keywords and abstract: an entry stored without an abstract is found by its
    metadata (a derived title is the abstract's own opening words, so it is not indexed twice)."""
    title = "" if paper.title_derived else paper.title
    metadata = [title, ", ".join(paper.authors), paper.venue or "", str(paper.year or ""), ", ".join(paper.keywords)]
    return "\n".join([*(part for part in metadata if part), paper.abstract])


@functools.cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def stem(word: str) -> str:
    """A word as the lexical index stems it (English Snowball)."""
    return _stemmer().stemWord(word)


def content_terms(text: str) -> set[str]:
    """Stemmed words minus a broad English stopword list (question words like "what" and "how" included)."""
    import bm25s
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    tokens = bm25s.tokenize(
        [text], stopwords=list(STOPWORDS_EN_PLUS), stemmer=_stemmer(), return_ids=False, show_progress=False
    )
    return set(tokens[0])


def coverage(wanted: set[str], text: str) -> float:
    """Share of the stemmed terms `wanted` that occur in `text` (1.0 when every term is there; 0.0 for none wanted)."""
    return len(wanted & content_terms(text)) / len(wanted) if wanted else 0.0


def term_coverage(query: str, text: str) -> float:
    """Share of the query's content terms that occur in `text` (1.0 when every term is there)."""
    return coverage(content_terms(query), text)


LEXICAL_LAYOUT = 3  # rows.json layout (3: metadata indexed with the abstract); another layout is rebuilt


@dataclass(frozen=True)
class LexicalSnapshot:
    """BM25 over one committed version of the library; never changed once built (swapped whole)."""

    version: str
    rows: list[dict[str, Any]]
    bm25: Any
    position: dict[str, int]

    @classmethod
    def build(cls, papers: Sequence[Paper], version: str) -> LexicalSnapshot:
        import bm25s

        papers = sorted(papers, key=lambda p: p.paper_id)
        rows = [paper_row(p) for p in papers]
        bm25 = None
        if papers:
            tokens = bm25s.tokenize([_lexical_text(p) for p in papers], stemmer=_stemmer(), show_progress=False)
            bm25 = bm25s.BM25()
            bm25.index(tokens, show_progress=False)
        return cls(version, rows, bm25, {row["paper_id"]: i for i, row in enumerate(rows)})

    def allowed(self, filters: Filters | None) -> list[str] | None:
        """Paper ids passing the filters, or None when there is no filter."""
        if not filters or not filters.active():
            return None
        return [row["paper_id"] for row in self.rows if filters.matches(row)]

    def search(self, query: str, k: int, allowed: Sequence[str] | None = None) -> list[tuple[str, float]]:
        import bm25s

        if self.bm25 is None or not self.rows or (allowed is not None and not allowed):
            return []
        mask = None
        if allowed is not None:
            mask = np.zeros(len(self.rows), dtype=np.float32)
            mask[[self.position[pid] for pid in allowed if pid in self.position]] = 1.0
        tokens = bm25s.tokenize([query], stemmer=_stemmer(), show_progress=False)
        if not tokens.vocab:
            return []
        docs, scores = self.bm25.retrieve(
            tokens, k=min(k, len(self.rows)), show_progress=False, weight_mask=mask, n_threads=1
        )
        return [(self.rows[int(d)]["paper_id"], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


class LexicalIndex:
    """BM25 (bm25s, English stemming) over one document per paper, persisted under HOME/lexical.

    Derived from the Chroma store and stamped with its committed version. Writers rebuild it inside their
    commit (`publish`, a Store commit hook), so it always describes a committed library; a reader rebuilds
    only when the files are missing, damaged or from another version, and then leaves out what an unfinished
    write added. Files are written under a unique staging folder and swapped in; the in-memory snapshot is
    replaced in one assignment, after the new one is complete, so concurrent searches never see half of it.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.current: LexicalSnapshot | None = None
        self._lock = threading.Lock()

    @property
    def version(self) -> str | None:
        return self.current.version if self.current else None

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.current.rows if self.current else []

    def ensure(self, store: Store, state: LibraryState) -> LexicalSnapshot:
        """The snapshot of `state.version` (call inside `store.reading()`, which gives `state`)."""
        snapshot = self.current
        if snapshot is not None and snapshot.version == state.version:
            return snapshot
        with self._lock:
            snapshot = self.current
            if snapshot is None or snapshot.version != state.version:
                snapshot = self._load(state.version)
                if snapshot is None:
                    snapshot = LexicalSnapshot.build(
                        [sp.paper for sp in store.all_papers(exclude_txn=state.pending)], state.version
                    )
                    self._save(snapshot)
                    log.info("lexical index rebuilt: %d papers", len(snapshot.rows))
                self.current = snapshot
            return snapshot

    def publish(self, store: Store, version: str) -> None:
        """Commit hook: the index of the library as the writer leaves it, stamped with the version it publishes."""
        snapshot = LexicalSnapshot.build([sp.paper for sp in store.all_papers()], version)
        self._save(snapshot)
        with self._lock:
            self.current = snapshot
        log.info("lexical index rebuilt: %d papers", len(snapshot.rows))

    def _load(self, version: str) -> LexicalSnapshot | None:
        """The saved index if it is whole and of `version`; anything damaged is logged (one line) and rebuilt."""
        import bm25s

        meta = self.folder / "rows.json"
        try:
            saved = json.loads(meta.read_text(encoding="utf-8"))
            if not isinstance(saved, dict) or saved.get("layout") != LEXICAL_LAYOUT:
                log.info("%s: another layout; rebuilding the lexical index", meta)
                return None
            if saved.get("version") != version:
                return None
            rows = saved["rows"]
            if _digests(self.folder / "bm25") != saved["bm25_sha256"]:
                raise ValueError("bm25 files do not match their checksums")
            if hashlib.sha256(json.dumps(rows).encode()).hexdigest() != saved["rows_sha256"]:
                raise ValueError("rows do not match their checksum")
            bm25 = bm25s.BM25.load(str(self.folder / "bm25"), show_progress=False) if rows else None
            return LexicalSnapshot(version, rows, bm25, {row["paper_id"]: i for i, row in enumerate(rows)})
        except FileNotFoundError:
            return None
        except Exception as error:  # noqa: BLE001 - a derived file in any state of damage is rebuilt, never fatal
            log.warning("lexical index at %s is damaged (%s); rebuilding it", self.folder,
                        " ".join(f"{type(error).__name__}: {error}".split())[:160])
            return None

    def _save(self, snapshot: LexicalSnapshot) -> None:
        """Write under a unique staging folder, then swap it in; a failed save only costs a rebuild later."""
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=f".{self.folder.name}.staging-"))
        except OSError as error:
            log.warning("could not save the lexical index under %s: %s", self.folder.parent, error)
            return
        try:
            (staging / "bm25").mkdir()
            if snapshot.bm25 is not None:
                snapshot.bm25.save(str(staging / "bm25"), show_progress=False)
            saved = {
                "layout": LEXICAL_LAYOUT, "version": snapshot.version, "rows": snapshot.rows,
                "rows_sha256": hashlib.sha256(json.dumps(snapshot.rows).encode()).hexdigest(),
                "bm25_sha256": _digests(staging / "bm25"),
            }
            (staging / "rows.json").write_text(json.dumps(saved), encoding="utf-8")
            retired = self.folder.with_name(f".{self.folder.name}.old-{uuid.uuid4().hex}")
            with contextlib.suppress(FileNotFoundError):
                self.folder.rename(retired)
            staging.rename(self.folder)  # fails if another process swapped its own index in meanwhile: fine
        except OSError as error:
            log.info("lexical index not saved (%s); it stays in memory", error)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            for old in self.folder.parent.glob(f".{self.folder.name}.old-*"):
                shutil.rmtree(old, ignore_errors=True)


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


class Retriever:
    """Hybrid search over one library. Holds the lexical index in memory between queries.

    With a `reranker`, the top `rerank_candidates` of each search are re-ordered by it before the top-k cut.
    """

    def __init__(self, store: Store, embedder: Embedder, lexical: LexicalIndex, dense_weight: float,
                 reranker: Reranker | None = None, rerank_candidates: int = 20):
        self.store = store
        self.embedder = embedder
        self.lexical = lexical
        self.dense_weight = dense_weight
        self.reranker = reranker
        self.rerank_candidates = rerank_candidates

    def search(self, query: str, k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid") -> list[Hit]:
        return self.search_many([query], k, filters, mode)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid"
    ) -> list[list[Hit]]:
        """Batch search (query vectors computed in one pass), for scripts and evaluation.

        Everything that reads the library happens inside one `store.reading()` view, so a search that runs
        during an ingest sees the library as it was before the ingest, or after it, never a mix."""
        cut = max(k, self.rerank_candidates) if self.reranker else k
        vectors = self._vectors(queries, mode)
        ranked_hits = []
        with self.store.reading() as state:
            for query, candidates in zip(queries, self._candidates(state, queries, vectors, max(k, 100), filters, mode)):
                dense_scores = {pid: score for pid, (score, _) in candidates.dense.items()}
                if mode == "hybrid":
                    scores = fuse(dense_scores, candidates.lexical, self.dense_weight)
                else:
                    scores = dense_scores if mode == "dense" else candidates.lexical
                ranked = sorted(scores, key=lambda pid: (-scores[pid], pid))[:cut]
                ranked_hits.append((query, self._hits(ranked, scores, candidates.dense, candidates.vector)))
        # the re-ranker calls a model (seconds): outside the view, so it never holds up a writer's commit
        return [(self.reranker(query, hits) if self.reranker else hits)[:k] for query, hits in ranked_hits]

    def candidates(
        self, queries: Sequence[str], pool: int, filters: Filters | None = None, mode: Mode = "hybrid"
    ) -> list[Candidates]:
        """Up to `pool` papers per query from each retriever the mode uses, with their raw scores."""
        vectors = self._vectors(queries, mode)
        with self.store.reading() as state:
            return self._candidates(state, queries, vectors, pool, filters, mode)

    def _vectors(self, queries: Sequence[str], mode: Mode) -> Sequence[np.ndarray | None]:
        return self.embedder.embed_documents(list(queries)) if mode != "lexical" else [None] * len(queries)

    def _candidates(
        self, state: LibraryState, queries: Sequence[str], vectors: Sequence[np.ndarray | None], pool: int,
        filters: Filters | None, mode: Mode,
    ) -> list[Candidates]:
        lexical = self.lexical.ensure(self.store, state)
        allowed = lexical.allowed(filters)
        return [
            Candidates(
                vector=vector,
                dense=self._dense(vector, pool, allowed, state.pending) if mode != "lexical" else {},
                lexical=dict(lexical.search(query, pool, allowed)) if mode != "dense" else {},
            )
            for query, vector in zip(queries, vectors)
        ]

    def _dense(
        self, vector: np.ndarray, pool: int, allowed: list[str] | None, pending: str | None
    ) -> dict[str, tuple[float, str]]:
        """Best chunk per paper: paper -> (cosine, chunk id); chunks of an unfinished write are left out."""
        if allowed is not None and not allowed:
            return {}
        where = {"paper_id": {"$in": allowed}} if allowed is not None else None
        best: dict[str, tuple[float, str]] = {}
        for hit in self.store.query_chunks(vector, pool * CHUNKS_PER_PAPER_CANDIDATE, where, exclude_txn=pending):
            if hit.paper_id not in best or hit.score > best[hit.paper_id][0]:
                best[hit.paper_id] = (hit.score, hit.chunk_id)
        return best

    def _hits(
        self, ranked: list[str], scores: dict[str, float], dense: dict[str, tuple[float, str]], vector: Any
    ) -> list[Hit]:
        papers = self.store.get_papers(ranked)
        missing = [pid for pid in ranked if pid in papers and pid not in dense]
        passages = self.store.best_passages(missing, vector) if missing else {}
        chunks = self.store.chunk_texts([dense[pid][1] for pid in ranked if pid in papers and pid in dense])
        hits = []
        for pid in ranked:
            if pid not in papers:  # a chunk whose paper entry is not written yet (killed ingest)
                continue
            text = chunks.get(dense[pid][1], papers[pid].abstract) if pid in dense else passages.get(pid, papers[pid].abstract)
            similarity = dense[pid][0] if pid in dense else None
            hits.append(
                Hit(paper_id=pid, title=papers[pid].title, score=scores[pid], text=text, paper=papers[pid],
                    similarity=similarity)
            )
        return hits
