"""The library store: the catalog (SQLite, the source of truth) and the vector index (Chroma), kept in step.

Every change costs what it changes (measured by benchmarks/scale.py; see docs/scaling.md):
- A writer holds the write lock (locks.py) for a whole ingest or removal. New papers, and new versions of stored
  ones, are *staged*: their catalog rows are written hidden under the writer's token, then their vectors go to
  Chroma under ids that name the paper's content (`{paper_id}::{content}::{i}`), then the rows are marked ready.
- `committing()` publishes in ONE SQLite transaction: staged rows replace the published ones, record updates,
  removals, source hashes, the lexical (FTS5) rows and a new version. A search is a read transaction, and Chroma's
  hits count only when the catalog lists them, so a search sees the library before a commit or after it.
- Vectors a commit made obsolete are listed in the catalog's trash in that same transaction and deleted from
  Chroma after it; a writer killed at any moment leaves either the old library (plus staged rows and vectors that
  nobody lists) or the new one (plus trash). The next writer finishes both: it reuses a dead writer's ready rows
  for papers it would embed again (a killed ingest resumes without the model) and drops the rest.

Small writes to a large library do not load Chroma's index (at 300k papers loading it cost a writing process
about 3 s of its 5 s, and it grows with the library): below FRESH_WRITE_MAX vectors, a writer keeps them in the
catalog's `fresh` table, in the same transaction as its rows, and searches scan them exactly beside Chroma's hits;
vectors it drops wait in the trash (searches fetch that many more hits). The first writer that loads the index
anyway (a larger write, a full fresh table, a large trash) hands the fresh vectors to Chroma and empties the trash.

With a Chroma server (LITASSIST_CHROMA_URL) the vectors and a change log live on the server (serverlog.py); each
client's catalog is a replica under HOME/replicas that catches up by applying the log entries it has not seen.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..corpus import Paper, duplicate_keys
from ..errors import StoreError
from . import bm25
from .catalog import (
    FILE_NAME,
    Catalog,
    Facets,
    PaperColumns,
    PaperQuery,
    PaperText,
    SourceRecord,
    StagedChunk,
    StagedPaper,
    StoredPaper,
)
from .chunking import Chunk
from .lexical import lexical_tokens
from .locks import LibraryLocks
from .vectors import CHUNKS, PAPERS, SQLITE_FILE, VectorIndex, check_sqlite_file

if TYPE_CHECKING:
    from .serverlog import ServerLog

log = logging.getLogger("litassist.index")

MANIFEST = "sources.json"
WHAT_TO_DO = (
    "restore the home from a backup (`litassist backup DIR` makes one; see docs/storage.md), "
    "or move it aside and ingest your sources again into a new home (`litassist sources` lists them)"
)
DENSE_FILTER_IDS = 20_000  # a filter admitting at most this many papers is sent to Chroma; a wider one post-filters
BUFFER_FROM_PAPERS = 100_000  # libraries this large keep small writes out of Chroma (at 50k a whole add took 2.3 s)
FRESH_WRITE_MAX = 2_000  # vectors of one writer that may stay fresh (a larger write loads Chroma's index anyway)
FRESH_CAP = 20_000  # fresh vectors at most: 29 MB, scanned exactly in a few ms per search
TRASH_DEFER = 512  # trashed vectors that may wait for the next writer that loads Chroma (searches fetch more)
TRASH_BATCH = 4_096
__all__ = ["ChunkHit", "LibraryState", "SourceRecord", "Store", "StoredPaper", "read_manifest", "write_atomic"]


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: str
    paper_id: str
    score: float


@dataclass(frozen=True)
class LibraryState:
    """The committed version a reader sees (it changes with every commit, so derived files know to rebuild)."""

    version: str


@dataclass
class _Change:
    """What a commit applies besides the staged papers, gathered while the writer works (proportional to it)."""

    records: list[Paper] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    sources: list[SourceRecord] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)


MANIFEST_VERSION = 1  # sources.json: {"schema_version": 1, "sources": [...]}; a file without it (version 0) is alike


def read_manifest(home: Path) -> list[SourceRecord]:
    """The source files as of the last commit, from HOME/sources.json (readable when the catalog is not)."""
    data = json.loads((home / MANIFEST).read_text(encoding="utf-8"))
    if int(data.get("schema_version", 0)) > MANIFEST_VERSION:
        raise StoreError(f"{home / MANIFEST} was written by a newer litassist (schema {data['schema_version']}); "
                         "upgrade litassist to read it")
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


def check_catalog_file(db: Path) -> None:
    """Refuse a damaged library.sqlite3 with one line before SQLite opens it."""
    if db.is_dir():
        raise StoreError(f"{db} is a folder, not the library's database: move it aside ({WHAT_TO_DO})")
    check_sqlite_file(db, "the library it held is gone", WHAT_TO_DO, read_header=False)  # SQLite says NOTADB


def describe_failure(error: BaseException, home: Path) -> StoreError | None:
    """One line for an error that escaped while the home was in use, naming the file and the right remedy;
    None when the error is not about the home (a bug: let its traceback show)."""
    detail = " ".join(f"{type(error).__name__}: {error}".split())[:200]
    if isinstance(error, OSError) and error.errno == errno.ENOSPC or "database or disk is full" in str(error):
        return StoreError(f"the disk holding {home} is full ({detail}); free some space and run again: "
                          "nothing that was stored is lost")
    if isinstance(error, (IsADirectoryError, NotADirectoryError, FileExistsError)) and error.filename:
        return StoreError(f"{error.filename} is in the way ({error.strerror}): litassist keeps a file or folder of "
                          "its own there; move it aside and run again")
    if isinstance(error, PermissionError) and error.filename:
        return StoreError(f"{error.filename}: permission denied; give this user access to {home}")
    if isinstance(error, sqlite3.DatabaseError):
        return StoreError(f"a database under {home} cannot be read ({detail}); run `litassist doctor` to see which")
    if type(error).__name__ == "PanicException" or type(error).__module__.split(".")[0] in (
            "chromadb", "chromadb_rust_bindings"):
        return StoreError(f"{home / 'chroma' / SQLITE_FILE} cannot be read ({detail}); the papers are safe in "
                          f"{home / FILE_NAME}: move the chroma folder aside and run `litassist reindex`")
    return None


T = TypeVar("T")


def _catalog_errors(method: Callable[..., T]) -> Callable[..., T]:
    """A damaged or full catalog while in use is one StoreError line naming library.sqlite3."""

    @functools.wraps(method)
    def guarded(self: Store, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            raise self._catalog_failure(error) from error

    return guarded


def _vector_ids(paper: Paper, n_chunks: int) -> tuple[str, list[str]]:
    """Ids of a paper version's vectors: they name its content, so a new version never overwrites the old one's
    vectors (searches keep seeing the old one until the commit), and the same version always gets the same ids."""
    gen = paper.content_key()[:12]
    return f"{paper.paper_id}::{gen}", [f"{paper.paper_id}::{gen}::{i}" for i in range(n_chunks)]


class Store:
    """The library under one home: catalog + vector index + locks. Safe to share between threads."""

    def __init__(self, path: Path, embedding_model: str, url: str | None = None, *, chunk_tokens: int | None = None,
                 lock_timeout: float = 600.0, buffer_from_papers: int = BUFFER_FROM_PAPERS):
        self.path = path  # HOME/chroma: the embedded vector index
        self.home = path.parent
        self.url = url
        self.embedding_model = embedding_model
        self.chunk_tokens = chunk_tokens
        self.locks = LibraryLocks(self.home, lock_timeout)
        self.commit_hooks: list[Callable[[Store, str], None]] = []  # derived files refreshed inside a commit
        self.buffer_from_papers = buffer_from_papers
        self._txn: str | None = None
        self._change: _Change | None = None
        self._session = _WriterSession()
        self._fresh: dict[str, _FreshVectors] = {}
        self._postings = bm25.PostingsCache()
        self._opening_vectors = threading.Lock()
        db_path = self.home / FILE_NAME
        if url:
            db_path = self.home / "replicas" / f"{hashlib.sha1(url.encode()).hexdigest()[:16]}.sqlite3"
        self.catalog = Catalog(db_path)
        with self.locks.opening():  # another process may be creating this home: look at its files only after it
            check_catalog_file(db_path)
            try:
                db_path.parent.mkdir(parents=True, exist_ok=True)
                new = self.catalog.create()
            except sqlite3.DatabaseError as error:
                raise self._catalog_failure(error) from None
            self._vectors: VectorIndex | None = None  # opened when first needed: the catalog alone lists papers
            self.log: ServerLog | None = None
            if url:
                from .serverlog import ServerLog

                self._vectors = VectorIndex(path, embedding_model, url)
                self.log = ServerLog(self)
            elif new and path.exists():
                self._vectors = VectorIndex(path, embedding_model, url)
                self._adopt_old_home()
        self._check_model()
        self._seen = self._state_key()

    @property
    def vectors(self) -> VectorIndex:
        """The vector index, opened on first use (under the open lock: Chroma creates its tables then), so that
        commands that only read the catalog (`papers`, `sources`, `stats`) work while it is damaged."""
        if self._vectors is None:
            with self._opening_vectors:
                if self._vectors is None:
                    with self.locks.opening():
                        self._vectors = VectorIndex(self.path, self.embedding_model, self.url)
        return self._vectors

    def _adopt_old_home(self) -> None:
        """A new catalog beside an existing vector index: a home of the layout before the catalog (migrated), or
        a home whose catalog was lost (refused: an empty library would silently replace it)."""
        from .migrate import migrate_chroma_home

        if migrate_chroma_home(self) or not self.vectors.count(PAPERS):
            return
        self.catalog.close()
        for leftover in self.catalog.path.parent.glob(f"{self.catalog.path.name}*"):
            leftover.unlink(missing_ok=True)
        raise StoreError(f"{self.catalog.path} is missing but {self.path} holds the library's vectors: the catalog "
                         f"was deleted or moved; {WHAT_TO_DO}")

    def _catalog_failure(self, error: sqlite3.DatabaseError) -> StoreError:
        detail = " ".join(str(error).split())[:200]
        if "full" in detail:
            return StoreError(f"the disk holding {self.catalog.path} is full ({detail}); free some space and run "
                              "again: nothing that was stored is lost")
        if isinstance(error, sqlite3.OperationalError) and "locked" in detail:
            return StoreError(f"{self.catalog.path} is busy ({detail}); run again when the other litassist "
                              "process is done")
        if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            return StoreError(f"{self.catalog.path} is not a SQLite database (its header is damaged); {WHAT_TO_DO}")
        return StoreError(f"{self.catalog.path} cannot be read ({detail}); {WHAT_TO_DO}")

    @_catalog_errors
    def _check_model(self) -> None:
        built_with = self.catalog.meta("embedding_model")
        if built_with and built_with != self.embedding_model:
            raise StoreError(
                f"this library was indexed with embedding model {built_with!r}, not {self.embedding_model!r}: "
                f"set LITASSIST_EMBEDDING_MODEL={built_with} or use another --home"
            )

    # --- state ---------------------------------------------------------------------------------------------
    @_catalog_errors
    def version(self) -> str:
        """The committed version: it changes when a write is published, so derived indexes know to rebuild."""
        return self.catalog.meta("version") or "empty"

    def state(self) -> LibraryState:
        return LibraryState(self.version())

    @_catalog_errors
    def _state_key(self) -> tuple[str, str]:
        """The committed version and the epoch of Chroma's contents (it changes when fresh vectors move there)."""
        meta = dict(self.catalog.connection().execute(
            "SELECT key, value FROM meta WHERE key IN ('version', 'vectors')").fetchall())
        return meta.get("version") or "empty", meta.get("vectors") or ""

    def _catch_up(self) -> None:
        """See what other processes (or, with a server, other clients) committed since this Store last looked."""
        if self.log is not None:
            self.log.catch_up()
        key = self._state_key()
        if key != self._seen:
            if self._vectors is not None:
                self._vectors.reopen()  # Chroma's in-memory index does not see another process's writes
            self._seen = key

    @contextlib.contextmanager
    def reading(self) -> Iterator[LibraryState]:
        """A consistent view for one search: one read transaction of the catalog."""
        self._catch_up()
        try:
            with self.catalog.snapshot():
                yield self.state()
        except sqlite3.DatabaseError as error:
            raise self._catalog_failure(error) from error

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the write lock for a whole ingest or removal (one writer at a time)."""
        with self.locks.writer():
            try:
                self._catch_up()
                self._session = _WriterSession(lazy=not self.url and self.paper_count() >= self.buffer_from_papers)
                self._empty_trash()  # a commit killed before it deleted the vectors it dropped
                self._txn = uuid.uuid4().hex
                yield
            except sqlite3.DatabaseError as error:
                raise self._catalog_failure(error) from error
            finally:
                with contextlib.suppress(StoreError, sqlite3.Error):
                    self._drop_dead_rows()
                self._txn = None
                self._change = None

    def _writer_token(self) -> str:
        if self._txn is None or not self.locks.held_here():
            raise RuntimeError("the library is changed only inside Store.writing()")
        return self._txn

    def _drop_dead_rows(self) -> None:
        """Staged rows of writers that died (and of this one, when it did not commit), with their vectors."""
        with self.catalog.transaction() as db:
            dropped = self.catalog.dead_rows(db, None)
            self.catalog.trash(db, dropped)
        if dropped:
            log.info("dropped %d vectors of an unfinished write", len(dropped))
        self._empty_trash()

    def _empty_trash(self) -> None:
        """Delete trashed vectors from Chroma: always in a small library; in a large one only once the trash is
        large or this writer has loaded Chroma's index anyway (it then takes the fresh vectors too)."""
        if (self._session.lazy and not self._session.loaded
                and self.catalog.trash_count(limit=TRASH_DEFER) < TRASH_DEFER):
            return
        self._flush_fresh()  # also after the library shrank below the threshold: nothing stays fresh for good
        while batch := self.catalog.trashed(TRASH_BATCH):
            for collection in (CHUNKS, PAPERS):
                self.vectors.delete(collection, [vid for _, vid, where in batch if where == collection])
            self.catalog.empty_trash([rowid for rowid, _, _ in batch])

    def _flush_fresh(self) -> None:
        """Hand every fresh vector to Chroma, then forget it here, and mark Chroma's contents changed so that other
        processes reload its index (a vector in both places meanwhile is found once: searches merge by id)."""
        self._session.loaded = True
        rows = self.catalog.fresh_vectors()
        if not rows:
            return
        for collection in (CHUNKS, PAPERS):
            part = [row for row in rows if row[1] == collection]
            self.vectors.upsert(collection, [vid for vid, *_ in part], [vector for *_, vector in part],
                                [pid for _, _, pid, _ in part])
        with self.catalog.transaction() as db:
            self.catalog.forget_fresh(db, [vid for vid, *_ in rows])
            self.catalog.set_meta(db, vectors=uuid.uuid4().hex)
        self._seen = self._state_key()
        log.info("moved %d fresh vectors from the catalog into Chroma", len(rows))

    def discard(self) -> None:
        """Undo this writer's staged papers (their rows and vectors); nothing was published."""
        if self._txn is not None:
            self._drop_dead_rows()

    @contextlib.contextmanager
    def committing(self) -> Iterator[None]:
        """Gather the writer's in-place changes, then publish them with its staged papers in one transaction."""
        txn = self._writer_token()
        self._change = _Change()
        yield
        change, self._change = self._change, None
        version = uuid.uuid4().hex
        seq = None
        if self.log is not None:  # the server's log is the commit point of a shared library
            seq = self.log.append(txn, change, version)
        try:
            with self.catalog.transaction() as db:
                self._apply(db, txn, change, version)
                if seq is not None:
                    self.catalog.set_meta(db, seq=str(seq))
        except sqlite3.DatabaseError as error:
            raise self._catalog_failure(error) from error
        self._seen = self._state_key()
        self._empty_trash()
        for hook in self.commit_hooks:
            hook(self, version)
        self._write_manifest()

    def _apply(self, db: sqlite3.Connection, txn: str, change: _Change, version: str) -> None:
        self.catalog.update_records(db, change.records)
        self.catalog.delete_papers(db, change.deleted)
        published = self.catalog.publish(db, txn)
        self.catalog.set_sources(db, change.sources)
        self.catalog.delete_sources(db, change.forgotten)
        meta = {"version": version, "embedding_model": self.embedding_model}
        if published and self.chunk_tokens:
            meta["chunk_tokens"] = str(self.chunk_tokens)
        self.catalog.set_meta(db, **meta)

    def _pending(self) -> _Change:
        if self._change is None:
            raise RuntimeError("in-place changes are made inside Store.committing()")
        return self._change

    @_catalog_errors
    def check_chunk_tokens(self) -> None:
        """Refuse to add chunks of another size to a library (like another embedding model)."""
        built_with = self.catalog.meta("chunk_tokens")
        if self.chunk_tokens and built_with and int(built_with) != self.chunk_tokens and self.paper_count():
            raise StoreError(
                f"this library was chunked at {built_with} tokens, not {self.chunk_tokens}: "
                f"set LITASSIST_CHUNK_TOKENS={built_with} or use another --home"
            )

    # --- papers --------------------------------------------------------------------------------------------
    @_catalog_errors
    def all_papers(self) -> list[StoredPaper]:
        return list(self.catalog.all_papers())

    def iter_papers(self) -> Iterator[Paper]:
        """Every paper in id order, streamed in one read transaction: a million records are never one list."""
        with self.reading():
            for stored in self.catalog.all_papers():
                yield stored.paper

    @_catalog_errors
    def paper_vectors(self) -> tuple[list[StoredPaper], np.ndarray]:
        """Every paper with its paper-level vector (rows aligned), for clustering and the topic map."""
        return self.catalog.paper_vectors()

    @_catalog_errors
    def paper_columns(self, paper_ids: Sequence[str] | None = None, vectors: bool = True) -> PaperColumns:
        """Ids, content keys, years and paper-level vectors of every paper (or of `paper_ids`), no records: the
        topic map at a million papers reads 1.5 GB of vectors, not 4 GB of JSON records."""
        return self.catalog.paper_columns(paper_ids, vectors)

    @_catalog_errors
    def paper_texts(self, paper_ids: Sequence[str]) -> dict[str, PaperText]:
        """Titles and abstracts, no records built (catalog.paper_texts): what the topic map reads."""
        return self.catalog.paper_texts(paper_ids)

    def get_papers(self, paper_ids: Sequence[str]) -> dict[str, Paper]:
        return {pid: stored.paper for pid, stored in self.stored_papers(paper_ids).items()}

    @_catalog_errors
    def stored_papers(self, paper_ids: Sequence[str]) -> dict[str, StoredPaper]:
        return self.catalog.stored_papers(paper_ids)

    @_catalog_errors
    def papers_of_files(self, files: Sequence[str]) -> dict[str, StoredPaper]:
        return self.catalog.papers_of_files(files)

    @_catalog_errors
    def key_owners(self, keys: Sequence[str]) -> dict[str, str]:
        return self.catalog.key_owners(keys)

    @_catalog_errors
    def known_ids(self, paper_ids: Sequence[str]) -> set[str]:
        return self.catalog.known_ids(paper_ids)

    @_catalog_errors
    def paper_count(self) -> int:
        return self.catalog.paper_count()

    @_catalog_errors
    def chunk_count(self) -> int:
        return self.catalog.chunk_count()

    @_catalog_errors
    def resumable(self) -> bool:
        """Whether a killed write left papers whose vectors are stored, for `adopt` to take over."""
        return self.catalog.has_reusable_rows(self._writer_token())

    @_catalog_errors
    def adopt(self, paper: Paper, n_chunks: int) -> bool:
        """Reuse a dead writer's ready row for this exact paper version (its vectors are stored): no embedding."""
        txn = self._writer_token()
        paper_vid, _ = _vector_ids(paper, n_chunks)
        with self.catalog.transaction() as db:
            return self.catalog.adopt(db, txn, paper.paper_id, paper_vid)

    @_catalog_errors
    def write_papers(self, items: Sequence[tuple[Paper, list[Chunk], np.ndarray]]) -> None:
        """Stage papers with their chunk vectors (new papers, or new versions of stored ones: a new version's rows
        replace the old one's at the commit)."""
        txn = self._writer_token()
        staged = []
        tokens = lexical_tokens([paper for paper, _, _ in items])
        for (paper, chunks, chunk_vectors), paper_tokens in zip(items, tokens):
            paper_vid, chunk_vids = _vector_ids(paper, len(chunks))
            mean = np.asarray(chunk_vectors, dtype=np.float32).mean(axis=0)
            staged.append(StagedPaper(
                paper, paper_vid, mean / max(float(np.linalg.norm(mean)), 1e-12),
                [StagedChunk(vid, c.position, c.text, _location(c)) for vid, c in zip(chunk_vids, chunks)],
                list(duplicate_keys(paper)), paper_tokens,
            ))
        if not staged:
            return
        chunk_ids = [c.vector_id for s in staged for c in s.chunks]
        owners = [s.paper.paper_id for s in staged for _ in s.chunks]
        all_chunk_vectors = [v for _, _, vectors in items for v in vectors]
        ready = [s.paper.paper_id for s in staged]
        self._session.vectors += len(chunk_ids) + len(staged)
        if self._keep_fresh(len(chunk_ids) + len(staged)):
            with self.catalog.transaction() as db:  # rows and vectors in one step: no Chroma index to load
                self.catalog.stage(db, txn, staged)
                self.catalog.add_fresh(db, [*zip(chunk_ids, [CHUNKS] * len(chunk_ids), owners, all_chunk_vectors),
                                            *((s.vector_id, PAPERS, s.paper.paper_id, s.vector) for s in staged)])
                self.catalog.mark_ready(db, txn, ready)
            return
        with self.catalog.transaction() as db:
            self.catalog.stage(db, txn, staged)
        self._flush_fresh()
        self.vectors.upsert(CHUNKS, chunk_ids, all_chunk_vectors, owners)
        self.vectors.upsert(PAPERS, [s.vector_id for s in staged], [s.vector for s in staged], ready)
        with self.catalog.transaction() as db:
            self.catalog.mark_ready(db, txn, ready)

    def _keep_fresh(self, count: int) -> bool:
        """Whether `count` new vectors stay in the catalog: a small write (so far) to a large library, while the
        fresh table has room."""
        return (self._session.lazy and not self._session.loaded and self._session.vectors <= FRESH_WRITE_MAX
                and self.catalog.fresh_count() + count <= FRESH_CAP)

    @_catalog_errors
    def restore_vectors(self, items: Sequence[tuple[Paper, list[Chunk], np.ndarray]]) -> int:
        """Write published papers' vectors again under the ids the catalog lists (`litassist reindex`, after the
        vector index was lost); returns how many papers were skipped because their chunks no longer match."""
        self._writer_token()
        owned = self.catalog.vector_ids_of([paper.paper_id for paper, _, _ in items])
        papers = self.catalog.paper_vector_rows([paper.paper_id for paper, _, _ in items])
        ids, vectors, owners, skipped = [], [], [], 0
        for paper, chunks, chunk_vectors in items:
            listed = owned.get(paper.paper_id, [])
            if len(listed) != len(chunks) or paper.paper_id not in papers:
                skipped += 1
                continue
            ids += listed
            vectors += list(chunk_vectors)
            owners += [paper.paper_id] * len(listed)
        self.vectors.upsert(CHUNKS, ids, vectors, owners)
        kept = [pid for pid in dict.fromkeys(owners)]
        self.vectors.upsert(PAPERS, [papers[pid][0] for pid in kept], [papers[pid][1] for pid in kept], kept)
        return skipped

    def update_records(self, papers: Sequence[Paper]) -> None:
        """Metadata-only update (e.g. merged sources) of papers whose embedded content is unchanged (at the commit)."""
        self._pending().records.extend(papers)

    def delete_papers(self, paper_ids: Sequence[str]) -> None:
        self._pending().deleted.extend(paper_ids)

    def set_sources(self, records: Sequence[SourceRecord]) -> None:
        self._pending().sources.extend(records)

    def delete_sources(self, files: Sequence[str]) -> None:
        self._pending().forgotten.extend(files)

    # --- sources -------------------------------------------------------------------------------------------
    @_catalog_errors
    def source_records(self) -> list[SourceRecord]:
        return self.catalog.source_records()

    def source_files(self) -> list[str]:
        return [record.file for record in self.source_records()]

    @_catalog_errors
    def source_hash(self, file: str) -> str | None:
        return self.catalog.source_hash(file)

    @_catalog_errors
    def source_count(self) -> int:
        return self.catalog.source_count()

    def _write_manifest(self) -> None:
        """HOME/sources.json: the source files as of this commit, for `litassist sources` when the catalog is
        damaged. Rewritten only when a source changed (its size is the number of files, not papers)."""
        if self.url:
            return
        rows = [record.__dict__ for record in self.source_records()]
        with contextlib.suppress(OSError):  # a copy for emergencies: never a reason to fail a commit
            write_atomic(self.home / MANIFEST, json.dumps({"schema_version": MANIFEST_VERSION, "sources": rows},
                                                            ensure_ascii=False, indent=1))

    # --- search --------------------------------------------------------------------------------------------
    @_catalog_errors
    def dense(self, vector: np.ndarray, n: int, allowed: set[str] | None = None
              ) -> list[tuple[str, float, str, str]]:
        """The `n` published chunks nearest to `vector`: (paper id, cosine, chunk id, passage), best first.
        Vectors the catalog does not list (a write under way, or killed) are skipped."""
        if allowed is not None and not allowed:
            return []
        restrict = sorted(allowed) if allowed is not None and len(allowed) <= DENSE_FILTER_IDS else None
        fetch = (n if allowed is None or restrict is not None else n * 4) + self._trashed(CHUNKS)
        for _ in range(3):
            hits, exhausted = self._nearest(CHUNKS, vector, fetch, restrict, allowed)
            listed = self.catalog.published_chunks([vid for vid, _ in hits])
            found = [(listed[vid][0], score, vid, listed[vid][1]) for vid, score in hits
                     if vid in listed and (allowed is None or listed[vid][0] in allowed)]
            if len(found) >= n or exhausted:
                return found[:n]
            fetch *= 4
        return found[:n]

    def _nearest(self, collection: str, vector: np.ndarray, n: int, restrict: Sequence[str] | None = None,
                 allowed: set[str] | None = None) -> tuple[list[tuple[str, float]], bool]:
        """Chroma's `n` nearest vectors merged with the fresh ones (exact), best first, each id once; and whether
        Chroma has no more to give."""
        hits = self.vectors.query(collection, vector, n, restrict)
        merged = dict(hits)
        for vid, score in self._fresh_vectors(collection).nearest(vector, n, allowed):
            merged[vid] = max(score, merged.get(vid, score))
        return sorted(merged.items(), key=lambda hit: -hit[1])[:n], len(hits) < n

    def _trashed(self, collection: str) -> int:
        """How many more hits to ask Chroma for: trashed vectors it may still return (a trash larger than
        TRASH_DEFER is being emptied right now; the callers' retries cover that moment)."""
        return self.catalog.trash_count(collection, limit=TRASH_DEFER)

    def _fresh_vectors(self, collection: str) -> _FreshVectors:
        """The fresh vectors of a collection, read once per state of the library."""
        cached = self._fresh.get(collection)
        if cached is None or cached.key != self._seen:
            rows = self.catalog.fresh_vectors(collection)
            cached = _FreshVectors(self._seen, [vid for vid, *_ in rows], [pid for _, _, pid, _ in rows],
                                   np.vstack([vector for *_, vector in rows]) if rows else None)
            self._fresh[collection] = cached
        return cached

    def _embeddings(self, collection: str, vector_ids: Sequence[str]) -> dict[str, np.ndarray]:
        found = self.catalog.fresh_embeddings(vector_ids)
        rest = [vid for vid in vector_ids if vid not in found]
        return found | (self.vectors.embeddings(collection, rest) if rest else {})

    def query_chunks(self, vector: np.ndarray, n: int) -> list[ChunkHit]:
        return [ChunkHit(vid, pid, score) for pid, score, vid, _ in self.dense(vector, n)]

    @_catalog_errors
    def chunk_texts(self, chunk_ids: Sequence[str]) -> dict[str, str]:
        return {vid: text for vid, (_, text, _) in self.catalog.published_chunks(chunk_ids).items()}

    @_catalog_errors
    def chunk_locations(self, chunk_ids: Sequence[str]) -> dict[str, dict]:
        """Chunk id -> where its passage is in the paper's full text (page, offsets); abstract chunks have none."""
        return {vid: loc for vid, (_, _, loc) in self.catalog.published_chunks(chunk_ids).items() if loc}

    @_catalog_errors
    def lexical_search(self, terms: Sequence[str], k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Papers best matching `terms` (stems: see lexical.query_terms) by BM25, best first."""
        return self.catalog.lexical_search(terms, k, allowed, self._postings)

    @_catalog_errors
    def query_ids(self, query: PaperQuery) -> list[tuple[str, int | None]]:
        return self.catalog.query_ids(query)

    @_catalog_errors
    def id_page(self, offset: int, limit: int) -> list[str]:
        return self.catalog.id_page(offset, limit)

    @_catalog_errors
    def source_pairs(self) -> list[tuple[str, str]]:
        return self.catalog.source_pairs()

    @_catalog_errors
    def collection_names(self) -> list[str]:
        return self.catalog.collection_names()

    @_catalog_errors
    def facets(self) -> Facets:
        return self.catalog.facets()

    @_catalog_errors
    def best_passages(self, paper_ids: Sequence[str], vector: np.ndarray | None) -> dict[str, str]:
        """Each paper's chunk closest to `vector` (its first chunk when there is no vector)."""
        if vector is None:
            return self.catalog.first_chunks(paper_ids)
        owned = self.catalog.vector_ids_of(paper_ids)
        embeddings = self._embeddings(CHUNKS, [vid for vids in owned.values() for vid in vids])
        texts = self.catalog.published_chunks([vid for vids in owned.values() for vid in vids])
        best = {}
        for pid, vids in owned.items():
            scored = [(float(np.dot(embeddings[vid], vector)), vid) for vid in vids if vid in embeddings]
            if scored:
                best[pid] = texts[max(scored)[1]][1]
        return best

    @_catalog_errors
    def similar_papers(self, paper_id: str, k: int) -> list[tuple[Paper, float]]:
        """Nearest papers by paper-level vector (the paper itself excluded)."""
        row = self.catalog.paper_vector_rows([paper_id]).get(paper_id)
        if row is None:
            return []
        hits, _ = self._nearest(PAPERS, row[1], k + 8 + self._trashed(PAPERS))
        listed = self.catalog.papers_by_vector_ids([h for h, _ in hits])
        return [(listed[h].paper, score) for h, score in hits if h in listed and listed[h].paper.paper_id != paper_id][
            :k
        ]

    # --- maintenance ---------------------------------------------------------------------------------------
    def backup(self, target: Path, databases: Sequence[str] = ()) -> list[str]:
        from .backup import backup_home

        return backup_home(self, target, databases)


@dataclass
class _WriterSession:
    """What one writer (one `writing()`) has done to the vectors: whether its library is large enough to keep small
    writes fresh (`lazy`), how many vectors it wrote, and whether it has loaded Chroma's index (`loaded`)."""

    lazy: bool = False
    vectors: int = 0
    loaded: bool = False


@dataclass(frozen=True)
class _FreshVectors:
    """One collection's fresh vectors as a matrix, for an exact search beside Chroma's."""

    key: tuple[str, str]
    ids: list[str]
    paper_ids: list[str]
    matrix: np.ndarray | None

    def nearest(self, vector: np.ndarray, n: int, allowed: set[str] | None) -> list[tuple[str, float]]:
        if self.matrix is None:
            return []
        query = np.asarray(vector, dtype=np.float32)
        norms = np.linalg.norm(self.matrix, axis=1) * max(float(np.linalg.norm(query)), 1e-12)
        scores = (self.matrix @ query) / np.maximum(norms, 1e-12)
        if allowed is not None:
            scores[[pid not in allowed for pid in self.paper_ids]] = -np.inf
        best = np.argsort(-scores)[:n]
        return [(self.ids[i], float(scores[i])) for i in best if np.isfinite(scores[i])]


def _location(chunk: Chunk) -> dict | None:
    """Where a full-text passage is in its PDF (page, offsets, section); None for abstract passages."""
    return chunk.location() or None
