"""The Chroma store: chunks (passages + vectors), papers (records + paper-level vectors) and sources (file hashes).

Chroma holds everything the library knows: `chunks` (passages + vectors), `papers` (one entry per paper,
its full record and a paper-level vector for clustering and similar-paper search) and `sources` (the hash
of each ingested file, so unchanged files cost nothing).

Writes follow one protocol (see locks.py): a writer holds the write lock, marks the library `pending` with a
transaction token before its first change, writes new papers (their chunks and entries carry the token, so
searches leave them out until the commit), then publishes in-place changes, derived indexes and a new
`version` inside the exclusive commit window. A writer killed before its commit leaves `pending` set; the next
reader or writer that finds no live writer publishes what it stored ("heals").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from ..corpus import Paper
from .chunking import Chunk
from .embedders import StoreError
from .locks import LibraryLocks

if TYPE_CHECKING:
    import chromadb

log = logging.getLogger("litassist.index")

PAPERS, CHUNKS, SOURCES = "papers", "chunks", "sources"
SQLITE_FILE = "chroma.sqlite3"
SQLITE_HEADER = b"SQLite format 3\x00"
MANIFEST = "sources.json"
WHAT_TO_DO = (
    "restore the home from a backup (`litassist backup DIR` makes one; see the README's Reliability section), "
    "or move it aside and ingest your sources again into a new home (`litassist sources` lists them)"
)


LOCATION_FIELDS = ("page", "page_end", "start", "end", "section", "body_start")  # Chunk.location()'s keys


@dataclass(frozen=True)
class StoredPaper:
    paper: Paper
    content_key: str
    n_chunks: int


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: str
    paper_id: str
    score: float


@dataclass(frozen=True)
class LibraryState:
    """The committed `version` and, while a write is under way, its transaction token (`pending`)."""

    version: str
    pending: str | None = None


@dataclass(frozen=True)
class SourceRecord:
    file: str
    sha256: str
    format: str
    papers: int


def _filter_metadata(paper: Paper) -> dict[str, Any]:
    """Scalar fields Chroma can filter on (it stores no None values)."""
    meta: dict[str, Any] = {"paper_id": paper.paper_id, "title": paper.title}
    if paper.year is not None:
        meta["year"] = paper.year
    if paper.venue:
        meta["venue"] = paper.venue
    return meta


def _visible(where: dict[str, Any] | None, exclude_txn: str | None) -> dict[str, Any] | None:
    """`where`, leaving out entries written by the uncommitted transaction `exclude_txn`."""
    if not exclude_txn:
        return where
    hidden = {"txn": {"$ne": exclude_txn}}
    return {"$and": [where, hidden]} if where else hidden


def check_store_file(chroma_dir: Path) -> None:
    """Refuse a damaged or emptied chroma.sqlite3 with one line, before Chroma opens (or silently recreates) it."""
    db = chroma_dir / SQLITE_FILE
    if not db.exists():
        if chroma_dir.is_dir() and any(chroma_dir.iterdir()):
            raise StoreError(f"{db} is missing but {chroma_dir} holds index files: the store is damaged; {WHAT_TO_DO}")
        return
    if db.stat().st_size == 0:
        raise StoreError(f"{db} is empty (0 bytes): the library it held is gone; {WHAT_TO_DO}")
    with db.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise StoreError(f"{db} is not a SQLite database (its header is damaged); {WHAT_TO_DO}")


# What Chroma says when the database under it is damaged (it raises InternalError or InvalidArgumentError).
_DAMAGE_WORDS = re.compile(r"malformed|not a database|no such table|log store|backfill|corrupt|disk I/O", re.IGNORECASE)


def _damage(error: BaseException) -> bool:
    """An error that means the database on disk is damaged (not a mistake in a request)."""
    return isinstance(error, sqlite3.DatabaseError) or (
        type(error).__module__.startswith("chromadb") and bool(_DAMAGE_WORDS.search(str(error)))
    )


def damaged_store(chroma_dir: Path, error: BaseException) -> StoreError:
    detail = " ".join(str(error).split())[:200]
    return StoreError(f"{chroma_dir / SQLITE_FILE} cannot be read ({detail}); {WHAT_TO_DO}")


def read_manifest(home: Path) -> list[SourceRecord]:
    """The source files as of the last commit, from HOME/sources.json (readable when Chroma is not)."""
    data = json.loads((home / MANIFEST).read_text(encoding="utf-8"))
    return [SourceRecord(**row) for row in data["sources"]]


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file under a unique temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise


@dataclass
class _Handles:
    """One open Chroma client and its collections; retired handles close when their last user is done."""

    client: Any
    papers: Any
    chunks: Any
    sources: Any
    identifier: str
    users: int = 0
    retired: bool = False


# Chroma keeps one client per path per process, and its in-memory vector index does not see what another
# process wrote later. A Store that must see such writes reopens under another spelling of the same path
# ("DIR/.", "DIR/./.", ...): a fresh client that reloads the index from disk.
_IDENTIFIERS: Counter[str] = Counter()
_IDENTIFIERS_GUARD = threading.Lock()


def _claim_identifier(path: Path) -> str:
    with _IDENTIFIERS_GUARD:
        spelling = str(path)
        while _IDENTIFIERS[spelling]:
            spelling += "/."
        _IDENTIFIERS[spelling] += 1
        return spelling


def _release_identifier(spelling: str) -> None:
    with _IDENTIFIERS_GUARD:
        _IDENTIFIERS[spelling] -= 1
        if _IDENTIFIERS[spelling] <= 0:
            del _IDENTIFIERS[spelling]


class Store:
    """The library: an embedded Chroma PersistentClient under the home directory, or a Chroma server.

    Safe to share between threads: each call works on the client that was current when it started, and a
    client replaced by a fresher one (see `_reopen`) is closed once its last call returns.
    """

    def __init__(self, path: Path, embedding_model: str, url: str | None = None, *, chunk_tokens: int | None = None,
                 lock_timeout: float = 600.0):
        self.path = path
        self.home = path.parent
        self.url = url
        self.embedding_model = embedding_model
        self.chunk_tokens = chunk_tokens
        self.locks = LibraryLocks(self.home, lock_timeout)
        self.commit_hooks: list[Callable[[Store, str], None]] = []  # derived indexes, rebuilt inside a commit
        self._swap = threading.Lock()
        self._catching = threading.Lock()
        self._txn: str | None = None  # this Store's transaction token while it writes
        self._box: list[_Handles] = []  # open clients, closed when the Store is garbage-collected
        if not url:
            check_store_file(path)
        self._handles = self._open()
        self._finalizer = weakref.finalize(self, _close_all, self._box)
        self.max_batch = self._handles.client.get_max_batch_size()
        state = self.state()
        self._seen = (state.version, state.pending)

    # --- opening, and reopening when another process has written ------------------------------------------
    def _open(self) -> _Handles:
        import chromadb

        settings = chromadb.Settings(anonymized_telemetry=False)
        identifier = "" if self.url else _claim_identifier(self.path)
        try:
            with contextlib.nullcontext() if self.url else self.locks.opening():
                if self.url:
                    parsed = urlparse(self.url)
                    client = chromadb.HttpClient(
                        host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000, ssl=parsed.scheme == "https",
                        settings=settings,
                    )
                else:
                    self.path.mkdir(parents=True, exist_ok=True)
                    client = chromadb.PersistentClient(path=identifier, settings=settings)
                vector_config = {"hnsw": {"space": "cosine"}}
                meta = {"embedding_model": self.embedding_model}
                handles = _Handles(
                    client, self._collection(client, PAPERS, vector_config, meta),
                    self._collection(client, CHUNKS, vector_config, {"embedding_model": self.embedding_model}),
                    self._collection(client, SOURCES, None, None), identifier,
                )
        except StoreError:
            if identifier:
                _release_identifier(identifier)
            raise
        except Exception as error:  # noqa: BLE001 - Chroma and SQLite raise many types; each becomes one line
            if identifier:
                _release_identifier(identifier)
            if self.url:
                raise StoreError(f"cannot use the Chroma server at {self.url}: {' '.join(str(error).split())}") from None
            raise damaged_store(self.path, error) from None
        self._box.append(handles)
        return handles

    def _collection(self, client: Any, name: str, config: dict | None, meta: dict | None) -> chromadb.Collection:
        collection = client.get_or_create_collection(name, embedding_function=None, configuration=config, metadata=meta)
        built_with = (collection.metadata or {}).get("embedding_model")
        if meta and built_with and built_with != self.embedding_model:
            raise StoreError(
                f"this library was indexed with embedding model {built_with!r}, not {self.embedding_model!r}: "
                f"set LITASSIST_EMBEDDING_MODEL={built_with} or use another --home"
            )
        return collection

    def _reopen(self) -> None:
        """A fresh client, so Chroma's in-memory vector index includes what other processes wrote since."""
        if self.url:
            return
        fresh = self._open()
        with self._swap:
            old, self._handles = self._handles, fresh
            old.retired = True
            idle = old.users == 0
        if idle:
            _close(old, self._box)

    @contextlib.contextmanager
    def _use(self) -> Iterator[_Handles]:
        """The current client for one operation; a store found damaged while in use is one StoreError line."""
        with self._swap:
            handles = self._handles
            handles.users += 1
        try:
            yield handles
        except Exception as error:
            if self.url or not _damage(error):
                raise
            raise damaged_store(self.path, error) from error
        finally:
            with self._swap:
                handles.users -= 1
                idle = handles.retired and handles.users == 0
            if idle:
                _close(handles, self._box)

    @property
    def papers(self) -> chromadb.Collection:
        return self._handles.papers

    @property
    def chunks(self) -> chromadb.Collection:
        return self._handles.chunks

    # --- library state, writing and committing --------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        with self._use() as h:
            return dict(h.client.get_collection(PAPERS).metadata or {})

    def _set_meta(self, **changes: Any) -> None:
        meta = {**self._meta(), **changes}
        with self._use() as h:
            h.papers.modify(metadata={key: value for key, value in meta.items() if value is not None})

    def state(self) -> LibraryState:
        """Re-read from the store each time: another process (a CLI ingest beside the app) may have changed it."""
        meta = self._meta()
        return LibraryState(str(meta.get("version", "empty")), meta.get("pending") or None)

    def version(self) -> str:
        """The committed version: it changes when a write is published, so derived indexes know to rebuild."""
        return self.state().version

    def _catch_up(self, state: LibraryState) -> None:
        """Reopen when the library changed since this Store last looked (another process wrote)."""
        with self._catching:
            if (state.version, state.pending) != self._seen:
                self._reopen()
                self._seen = (state.version, state.pending)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the library's write lock for a whole ingest or removal (one writer at a time)."""
        with self.locks.writer():
            state = self.state()
            if state.pending:  # a writer that died before its commit: publish what it stored first
                self._heal()
            else:
                self._catch_up(state)  # a stale vector index would drop other processes' vectors when saved
            try:
                yield
            finally:
                self._txn = None

    def begin(self) -> str:
        """Mark the library as being written, before the first change; returns the transaction token."""
        if not self.locks.held_here():
            raise RuntimeError("the library is changed only inside Store.writing()")
        if self._txn is None:
            self._txn = uuid.uuid4().hex
            self._set_meta(pending=self._txn)
            self._seen = (self._seen[0], self._txn)
        return self._txn

    @contextlib.contextmanager
    def committing(self) -> Iterator[None]:
        """The exclusive window: make in-place changes, rebuild derived indexes, publish a new version."""
        self.begin()
        with self.locks.commit(exclusive=True):
            yield
            version = uuid.uuid4().hex
            for hook in self.commit_hooks:
                hook(self, version)
            self._set_meta(version=version, pending=None)
            self._seen = (version, None)
            self._txn = None
            self._write_manifest()

    def discard(self) -> None:
        """Undo this writer's uncommitted work: the new papers it wrote (hidden under its token) are deleted and the
        library is no longer marked pending. In-place changes are only made in the commit window, so there are none."""
        if self._txn is None:
            return
        with self._use() as h:
            h.chunks.delete(where={"txn": self._txn})
            h.papers.delete(where={"txn": self._txn})
        self._set_meta(pending=None)
        self._seen = (self._seen[0], None)
        self._txn = None

    def _heal(self) -> None:
        log.warning("the last change to %s did not finish (the process was killed?): publishing what it stored",
                    self.home)
        self._reopen()  # the dead writer's last vectors are on disk, not in this process's index
        with self.committing():
            pass

    @contextlib.contextmanager
    def reading(self) -> Iterator[LibraryState]:
        """A consistent view for one search: no commit can start until it ends. `pending` entries are hidden."""
        if not self.url and self.state().pending and not self.locks.held_here():
            with self.locks.writer(wait=False) as free:
                if free and self.state().pending:  # nobody is writing: the writer died
                    self._heal()
        with self.locks.commit(exclusive=False):
            state = self.state()
            self._catch_up(state)
            yield state

    def check_chunk_tokens(self) -> None:
        """Refuse to add chunks of another size to a library (like another embedding model)."""
        built_with = self._meta().get("chunk_tokens")
        if self.chunk_tokens and built_with and built_with != self.chunk_tokens and self.paper_count():
            raise StoreError(
                f"this library was chunked at {built_with} tokens, not {self.chunk_tokens}: "
                f"set LITASSIST_CHUNK_TOKENS={built_with} or use another --home"
            )

    def _batches(self, items: Sequence[Any]) -> Iterator[Sequence[Any]]:
        for start in range(0, len(items), self.max_batch):
            yield items[start : start + self.max_batch]

    def _pages(self, collection: str, include: list[str], where: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
        with self._use() as h:
            target = getattr(h, collection)
            offset = 0
            while True:
                page = target.get(limit=self.max_batch, offset=offset, where=where, include=include)
                if not page["ids"]:
                    return
                yield page
                offset += len(page["ids"])

    # papers
    def all_papers(self, exclude_txn: str | None = None) -> list[StoredPaper]:
        """Every stored paper; `exclude_txn` leaves out those an unfinished write added."""
        return [
            self._stored(meta)
            for page in self._pages("papers", ["metadatas"], _visible(None, exclude_txn))
            for meta in page["metadatas"]
        ]

    def paper_vectors(self, exclude_txn: str | None = None) -> tuple[list[StoredPaper], np.ndarray]:
        """Every paper with its paper-level vector (rows aligned), for clustering and the topic map."""
        stored: list[StoredPaper] = []
        vectors: list[np.ndarray] = []
        for page in self._pages("papers", ["metadatas", "embeddings"], _visible(None, exclude_txn)):
            stored.extend(self._stored(meta) for meta in page["metadatas"])
            vectors.extend(np.asarray(vector, dtype=np.float32) for vector in page["embeddings"])
        return stored, np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)

    def get_papers(self, paper_ids: Sequence[str]) -> dict[str, Paper]:
        return {pid: stored.paper for pid, stored in self.stored_papers(paper_ids).items()}

    def stored_papers(self, paper_ids: Sequence[str]) -> dict[str, StoredPaper]:
        """These papers with their content keys and chunk counts (what a writer needs to update them)."""
        if not paper_ids:
            return {}
        with self._use() as h:
            found = h.papers.get(ids=list(dict.fromkeys(paper_ids)), include=["metadatas"])
        return {pid: self._stored(meta) for pid, meta in zip(found["ids"], found["metadatas"])}

    def paper_count(self) -> int:
        with self._use() as h:
            return h.papers.count()

    def chunk_count(self) -> int:
        with self._use() as h:
            return h.chunks.count()

    @staticmethod
    def _stored(meta: dict[str, Any]) -> StoredPaper:
        return StoredPaper(Paper.model_validate_json(meta["record"]), meta["content_key"], int(meta["n_chunks"]))

    def _paper_metadata(self, paper: Paper, n_chunks: int) -> dict[str, Any]:
        meta = {
            **_filter_metadata(paper),
            "record": paper.model_dump_json(),
            "content_key": paper.content_key(),
            "n_chunks": n_chunks,
        }
        if self._txn:
            meta["txn"] = self._txn
        return meta

    def write_papers(self, items: Sequence[tuple[Paper, list[Chunk], np.ndarray, int]]) -> None:
        """Store papers with their chunk vectors; `int` is the paper's previous chunk count (stale ids go).

        Chunks are written before their paper's entry, so a killed write never leaves an entry without chunks.
        The chunk size is recorded here, where chunks are written (after `check_chunk_tokens`), not by every write:
        a removal by a process with another LITASSIST_CHUNK_TOKENS must not relabel the library."""
        txn = {"txn": self.begin()}
        if self.chunk_tokens and self._meta().get("chunk_tokens") != self.chunk_tokens:
            self._set_meta(chunk_tokens=self.chunk_tokens)
        ids, vectors, documents, metadatas, stale = [], [], [], [], []
        for paper, chunks, chunk_vectors, old_n in items:
            ids += [c.chunk_id for c in chunks]
            vectors += list(chunk_vectors)
            documents += [c.text for c in chunks]
            metadatas += [{**_filter_metadata(paper), "position": c.position, **c.location(), **txn} for c in chunks]
            stale += [f"{paper.paper_id}::{i}" for i in range(len(chunks), old_n)]
        paper_vectors = []
        for _, _, chunk_vectors, _ in items:
            mean = np.asarray(chunk_vectors).mean(axis=0)
            paper_vectors.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        with self._use() as h:
            for start in range(0, len(ids), self.max_batch):
                end = start + self.max_batch
                h.chunks.upsert(
                    ids=ids[start:end], embeddings=vectors[start:end], documents=documents[start:end],
                    metadatas=metadatas[start:end],
                )
            if stale:
                h.chunks.delete(ids=stale)
            for batch in self._batches(list(zip(items, paper_vectors))):
                h.papers.upsert(
                    ids=[paper.paper_id for (paper, *_), _ in batch],
                    embeddings=[vector for _, vector in batch],
                    documents=[paper.abstract for (paper, *_), _ in batch],
                    metadatas=[self._paper_metadata(paper, len(chunks)) for (paper, chunks, *_), _ in batch],
                )

    def update_records(self, papers: Sequence[tuple[Paper, int]]) -> None:
        """Metadata-only update (e.g. merged sources) for papers whose embedded content is unchanged."""
        if papers:
            self.begin()
        with self._use() as h:
            for batch in self._batches(papers):
                h.papers.update(
                    ids=[p.paper_id for p, _ in batch], metadatas=[self._paper_metadata(p, n) for p, n in batch]
                )

    def delete_papers(self, paper_ids: Sequence[str]) -> None:
        if paper_ids:
            self.begin()
        with self._use() as h:
            for batch in self._batches(list(paper_ids)):
                h.chunks.delete(where={"paper_id": {"$in": list(batch)}})
                h.papers.delete(ids=list(batch))

    def best_passages(self, paper_ids: Sequence[str], vector: np.ndarray | None) -> dict[str, str]:
        """Each paper's chunk closest to `vector` (its first chunk when there is no vector)."""
        with self._use() as h:
            found = h.chunks.get(
                where={"paper_id": {"$in": list(paper_ids)}}, include=["documents", "metadatas", "embeddings"]
            )
        best: dict[str, tuple[float, str]] = {}
        for doc, meta, emb in zip(found["documents"], found["metadatas"], found["embeddings"]):
            score = float(np.dot(emb, vector)) if vector is not None else -float(meta["position"])
            if meta["paper_id"] not in best or score > best[meta["paper_id"]][0]:
                best[meta["paper_id"]] = (score, doc)
        return {pid: text for pid, (_, text) in best.items()}

    def similar_papers(self, paper_id: str, k: int) -> list[tuple[Paper, float]]:
        """Nearest papers by paper-level vector (the paper itself excluded)."""
        with self._use() as h:
            found = h.papers.get(ids=[paper_id], include=["embeddings"])
            if not found["ids"]:
                return []
            result = h.papers.query(
                query_embeddings=[found["embeddings"][0]], n_results=min(k + 1, h.papers.count()),
                include=["metadatas", "distances"],
            )
        return [
            (self._stored(meta).paper, 1.0 - float(dist))
            for pid, meta, dist in zip(result["ids"][0], result["metadatas"][0], result["distances"][0])
            if pid != paper_id
        ][:k]

    # sources
    def source_records(self) -> list[SourceRecord]:
        return [
            SourceRecord(file=file, sha256=meta["sha256"], format=meta["format"], papers=int(meta["papers"]))
            for page in self._pages("sources", ["metadatas"], None)
            for file, meta in zip(page["ids"], page["metadatas"])
        ]

    def source_files(self) -> list[str]:
        with self._use() as h:
            return h.sources.get(include=[])["ids"]

    def delete_sources(self, files: Sequence[str]) -> None:
        if files:  # Chroma rejects an empty id list
            self.begin()
            with self._use() as h:
                h.sources.delete(ids=list(files))

    def source_hash(self, file: str) -> str | None:
        with self._use() as h:
            found = h.sources.get(ids=[file], include=["metadatas"])
        return found["metadatas"][0]["sha256"] if found["ids"] else None

    def set_sources(self, records: Sequence[SourceRecord]) -> None:
        if not records:
            return
        self.begin()
        with self._use() as h:
            for batch in self._batches(list(records)):
                h.sources.upsert(
                    ids=[r.file for r in batch], embeddings=[[0.0]] * len(batch),
                    metadatas=[{"sha256": r.sha256, "format": r.format, "papers": r.papers} for r in batch],
                )

    def source_count(self) -> int:
        with self._use() as h:
            return h.sources.count()

    def _write_manifest(self) -> None:
        """HOME/sources.json: the source files as of this commit, for `litassist sources` when Chroma is damaged."""
        if self.url:
            return
        rows = [record.__dict__ for record in sorted(self.source_records(), key=lambda r: r.file)]
        write_atomic(self.home / MANIFEST, json.dumps({"sources": rows}, ensure_ascii=False, indent=1))

    # search
    def query_chunks(
        self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None, exclude_txn: str | None = None
    ) -> list[ChunkHit]:
        """The `n` chunks nearest to `vector`, ids and scores only: reading their records is most of a query's
        time, so passages are fetched afterwards for the few chunks shown (`chunk_texts`)."""
        with self._use() as h:
            total = h.chunks.count()
            if total == 0:
                return []
            result = h.chunks.query(
                query_embeddings=[vector.tolist()], n_results=min(n, total), where=_visible(where, exclude_txn),
                include=["distances"],
            )
        return [
            ChunkHit(chunk_id, chunk_id.rsplit("::", 1)[0], 1.0 - float(dist))  # chunk ids are "{paper_id}::{i}"
            for chunk_id, dist in zip(result["ids"][0], result["distances"][0])
        ]

    def chunk_texts(self, chunk_ids: Sequence[str]) -> dict[str, str]:
        """Chunk id -> its passage."""
        if not chunk_ids:
            return {}
        with self._use() as h:
            found = h.chunks.get(ids=list(chunk_ids), include=["documents"])
        return dict(zip(found["ids"], found["documents"]))

    def chunk_locations(self, chunk_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Chunk id -> where its passage is in its PDF (`Chunk.location()`); {} for abstract passages."""
        if not chunk_ids:
            return {}
        with self._use() as h:
            found = h.chunks.get(ids=list(chunk_ids), include=["metadatas"])
        return {cid: {key: meta[key] for key in LOCATION_FIELDS if key in meta}
                for cid, meta in zip(found["ids"], found["metadatas"])}

    # backup
    def backup(self, target: Path, databases: Sequence[str] = ()) -> list[str]:
        """A consistent copy of the home (store, uploads, source list, and the home's other SQLite `databases`,
        such as the saved conversations) taken under the write lock."""
        if self.url:
            raise StoreError("backup copies an embedded store; with LITASSIST_CHROMA_URL, back up the server's --path")
        target = target.expanduser().resolve()
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise StoreError(f"{target} already exists and is not empty: give a new folder for the backup")
        if target == self.home.resolve() or self.home.resolve() in target.parents:
            raise StoreError(f"{target} is inside the home {self.home}: give a folder outside it")
        with self.locks.writer():
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
            try:
                self._copy_home(staging, databases)
                if target.exists():
                    target.rmdir()
                staging.rename(target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())

    def _copy_home(self, staging: Path, databases: Sequence[str]) -> None:
        chroma = staging / self.path.name
        shutil.copytree(self.path, chroma, ignore=shutil.ignore_patterns(SQLITE_FILE, f"{SQLITE_FILE}-*"))
        _copy_database(self.path / SQLITE_FILE, chroma / SQLITE_FILE)
        for name in databases:
            if (self.home / name).is_file():
                _copy_database(self.home / name, staging / name)
        for extra in ("uploads", MANIFEST):
            if (self.home / extra).is_dir():
                shutil.copytree(self.home / extra, staging / extra)
            elif (self.home / extra).is_file():
                shutil.copy2(self.home / extra, staging / extra)


def _copy_database(source_file: Path, copy_file: Path) -> None:
    """SQLite's online backup: a consistent snapshot even while another process writes the database."""
    with contextlib.closing(sqlite3.connect(source_file)) as source, \
            contextlib.closing(sqlite3.connect(copy_file)) as copy:
        source.backup(copy)


def _close(handles: _Handles, box: list[_Handles]) -> None:
    with contextlib.suppress(ValueError):
        box.remove(handles)
    with contextlib.suppress(Exception):  # closing a client that failed must not mask anything
        handles.client.close()
    if handles.identifier:
        _release_identifier(handles.identifier)


def _close_all(box: list[_Handles]) -> None:
    for handles in list(box):
        _close(handles, box)
