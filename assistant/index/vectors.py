"""Chroma as the vector index: chunk vectors and paper-level vectors, nothing else.

The catalog (catalog.py) says which vector ids are the library; this module only writes, deletes and queries
vectors, embedded (a PersistentClient under HOME/chroma) or on a Chroma server. Entries carry `paper_id` as their
only metadata, for filtered queries. Any failure of Chroma becomes one StoreError line: a damaged database under
it (Chroma raises InternalError, or a Rust panic, which is a BaseException) names the file and the remedy.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ..errors import StoreError

log = logging.getLogger("litassist.index")

PAPERS, CHUNKS = "papers", "chunks"
SQLITE_FILE = "chroma.sqlite3"
SQLITE_HEADER = b"SQLite format 3\x00"
VECTORS_REMEDY = ("the papers are safe in library.sqlite3: move the chroma folder aside and run `litassist reindex` "
                  "to embed them again, or restore the home from a backup")


def _is_panic(error: BaseException) -> bool:
    """pyo3's PanicException (a Rust panic inside Chroma) derives from BaseException, not Exception."""
    return type(error).__name__ == "PanicException"


def check_sqlite_file(db: Path, gone: str, remedy: str, read_header: bool = True) -> None:
    """Refuse an emptied or header-damaged SQLite file with one line before SQLite (or Chroma) opens it, or silently
    recreates it; `gone` says what was lost with it. Reading the header opens and closes a descriptor, and closing
    any descriptor of a file drops every POSIX lock the process holds on it, SQLite's included ("How To Corrupt An
    SQLite Database File", 2.2): so only where nothing in this process has the file open (`read_header`)."""
    if not db.exists():
        return
    size = db.stat().st_size
    if size == 0:
        raise StoreError(f"{db} is empty (0 bytes): {gone}; {remedy}")
    if size % 512:  # SQLite would take a file shorter than a page for a new, empty database and write over it
        raise StoreError(f"{db} is not a SQLite database ({size} bytes is not a whole number of pages); {remedy}")
    if not read_header:
        return
    with db.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise StoreError(f"{db} is not a SQLite database (its header is damaged); {remedy}")


_OPENED: set[Path] = set()  # chroma folders this process's Chroma has opened: their database is not read by hand


def check_vector_file(chroma_dir: Path) -> None:
    check_sqlite_file(chroma_dir / SQLITE_FILE, "the vector index is gone", VECTORS_REMEDY,
                      read_header=chroma_dir.resolve() not in _OPENED)


@dataclass
class _Handles:
    """One open Chroma client and its collections; retired handles close when their last user is done."""

    client: Any
    papers: Any
    chunks: Any
    identifier: str
    users: int = 0
    retired: bool = False


# Chroma keeps one client per path per process, and its in-memory HNSW index does not see what another process
# wrote later. To see such writes a client reopens under another spelling of the same path ("DIR/.", "DIR/./.",
# ...): a fresh client that reloads the index from disk.
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


class VectorIndex:
    """Chunk and paper vectors in Chroma (embedded at `path`, or on the server at `url`). Thread-safe."""

    def __init__(self, path: Path, embedding_model: str, url: str | None = None):
        self.path = path
        self.url = url
        self.embedding_model = embedding_model
        self._swap = threading.Lock()
        self._box: list[_Handles] = []
        if not url:
            check_vector_file(path)
        self._handles = self._open()
        self._finalizer = weakref.finalize(self, _close_all, self._box)
        self.max_batch = self._handles.client.get_max_batch_size()

    def _open(self) -> _Handles:
        import chromadb

        settings = chromadb.Settings(anonymized_telemetry=False)
        identifier = "" if self.url else _claim_identifier(self.path)
        try:
            if self.url:
                parsed = urlparse(self.url)
                client = chromadb.HttpClient(host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000,
                                             ssl=parsed.scheme == "https", settings=settings)
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                _OPENED.add(self.path.resolve())
                client = chromadb.PersistentClient(path=identifier, settings=settings)
            handles = _Handles(client, self._collection(client, PAPERS), self._collection(client, CHUNKS), identifier)
        except StoreError:
            if identifier:
                _release_identifier(identifier)
            raise
        except BaseException as error:
            if identifier:
                _release_identifier(identifier)
            if not isinstance(error, Exception) and not _is_panic(error):
                raise
            raise self._failure(error) from None
        self._box.append(handles)
        return handles

    def _collection(self, client: Any, name: str) -> Any:
        meta = {"embedding_model": self.embedding_model}
        collection = client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}, metadata=meta)
        built_with = (collection.metadata or {}).get("embedding_model")
        if built_with and built_with != self.embedding_model:
            raise StoreError(
                f"this library was indexed with embedding model {built_with!r}, not {self.embedding_model!r}: "
                f"set LITASSIST_EMBEDDING_MODEL={built_with} or use another --home"
            )
        return collection

    def _failure(self, error: BaseException) -> StoreError:
        detail = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        if self.url:
            return StoreError(f"cannot use the Chroma server at {self.url} ({detail}); check that `chroma run` is up "
                              "and LITASSIST_CHROMA_URL is right")
        if _disk_full(error):
            return StoreError(f"the disk holding {self.path} is full ({detail}); free some space and run again "
                              "(nothing was published)")
        return StoreError(f"{self.path / SQLITE_FILE} cannot be read ({detail}); {VECTORS_REMEDY}")

    def reopen(self) -> None:
        """A fresh client, so the in-memory vector index includes what other processes wrote since."""
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
        with self._swap:
            handles = self._handles
            handles.users += 1
        try:
            yield handles
        except StoreError:
            raise
        except BaseException as error:
            if not isinstance(error, Exception) and not _is_panic(error):
                raise
            raise self._failure(error) from error
        finally:
            with self._swap:
                handles.users -= 1
                idle = handles.retired and handles.users == 0
            if idle:
                _close(handles, self._box)

    def _batches(self, items: Sequence[Any]) -> Iterator[Sequence[Any]]:
        for start in range(0, len(items), self.max_batch):
            yield items[start : start + self.max_batch]

    # --- writing -------------------------------------------------------------------------------------------
    def upsert(
        self, collection: str, ids: Sequence[str], vectors: Sequence[np.ndarray], paper_ids: Sequence[str]
    ) -> None:
        with self._use() as h:
            target = getattr(h, collection)
            for start in range(0, len(ids), self.max_batch):
                end = start + self.max_batch
                target.upsert(
                    ids=list(ids[start:end]),
                    embeddings=[np.asarray(v, dtype=np.float32) for v in vectors[start:end]],
                    metadatas=[{"paper_id": pid} for pid in paper_ids[start:end]],
                )

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._use() as h:
            target = getattr(h, collection)
            for batch in self._batches(list(ids)):
                target.delete(ids=list(batch))

    def count(self, collection: str) -> int:
        with self._use() as h:
            return int(getattr(h, collection).count())

    def all_ids(self, collection: str) -> Iterator[str]:
        with self._use() as h:
            target = getattr(h, collection)
            offset = 0
            while True:
                page = target.get(limit=self.max_batch, offset=offset, include=[])
                if not page["ids"]:
                    return
                yield from page["ids"]
                offset += len(page["ids"])

    # --- reading -------------------------------------------------------------------------------------------
    def query(self, collection: str, vector: np.ndarray, n: int, paper_ids: Sequence[str] | None = None
              ) -> list[tuple[str, float]]:
        """The `n` entries nearest to `vector` as (vector id, cosine); `paper_ids` restricts to those papers."""
        if n <= 0:
            return []
        with self._use() as h:  # Chroma returns fewer than `n` when it holds fewer (a count() first cost a call)
            where = {"paper_id": {"$in": list(paper_ids)}} if paper_ids is not None else None
            result = getattr(h, collection).query(query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()],
                                                  n_results=n, where=where, include=["distances"])
        return [(vid, 1.0 - float(dist)) for vid, dist in zip(result["ids"][0], result["distances"][0])]

    def embeddings(self, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        with self._use() as h:
            found = getattr(h, collection).get(ids=list(ids), include=["embeddings"])
        return {vid: np.asarray(vec, dtype=np.float32) for vid, vec in zip(found["ids"], found["embeddings"])}


def _disk_full(error: BaseException) -> bool:
    import errno

    text = str(error).lower()
    return getattr(error, "errno", None) == errno.ENOSPC or "no space left" in text or "disk is full" in text \
        or "database or disk is full" in text


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
