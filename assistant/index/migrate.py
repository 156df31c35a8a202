"""Homes made before the catalog (layout 1: everything in Chroma) are migrated on first open, nothing re-embedded.

Layout 1 kept each paper's record in the Chroma `papers` collection's metadata, chunk passages as Chroma documents
and source hashes in a `sources` collection of dummy vectors. Migration copies records, passages and hashes into
the catalog under the vectors' existing ids, then drops the `sources` collection; vectors stay where they are.
Layout 1 stamped every entry with the token of the write that made it (`txn`) and marked the library `pending` with
the token of a write under way; entries of that unfinished write are not migrated, and their vectors are deleted.
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np

from ..corpus import Paper, duplicate_keys
from .catalog import SourceRecord, StagedChunk, StagedPaper
from .lexical import lexical_tokens
from .vectors import CHUNKS, PAPERS

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("litassist.index")
OLD_SOURCES = "sources"


def _pages(collection: Any, include: list[str], size: int) -> Any:
    offset = 0
    while True:
        page = collection.get(limit=size, offset=offset, include=include)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])


def migrate_chroma_home(store: Store) -> bool:
    """Fill a new catalog from a layout-1 Chroma store in the same home, if there is one (then True)."""
    with store.vectors._use() as handles:
        client = handles.client
        names = {getattr(c, "name", c) for c in client.list_collections()}
        if OLD_SOURCES not in names:
            return False
        old_meta = dict(handles.papers.metadata or {})
        unpublished = old_meta.get("pending") or None  # the write under way when the old layout last ran
        size = store.vectors.max_batch
        staged, unfinished = [], []
        passages: dict[str, list[StagedChunk]] = {}
        for page in _pages(handles.chunks, ["documents", "metadatas"], size):
            for vid, text, meta in zip(page["ids"], page["documents"], page["metadatas"]):
                if unpublished and meta.get("txn") == unpublished:
                    unfinished.append((vid, CHUNKS))
                    continue
                passages.setdefault(meta["paper_id"], []).append(StagedChunk(vid, int(meta["position"]), text or ""))
        for page in _pages(handles.papers, ["metadatas", "embeddings"], size):
            for vid, meta, vector in zip(page["ids"], page["metadatas"], page["embeddings"]):
                if unpublished and meta.get("txn") == unpublished:
                    unfinished.append((vid, PAPERS))
                    continue
                paper = Paper.model_validate_json(meta["record"])
                chunks = sorted(passages.get(paper.paper_id, []), key=lambda c: c.position)
                staged.append(StagedPaper(paper, vid, np.asarray(vector, dtype=np.float32), chunks,
                                          list(duplicate_keys(paper)), lexical_tokens([paper])[0]))
        sources = [SourceRecord(file, meta["sha256"], meta["format"], int(meta["papers"]))
                   for page in _pages(client.get_collection(OLD_SOURCES), ["metadatas"], size)
                   for file, meta in zip(page["ids"], page["metadatas"])]
    txn = "migration"
    with store.catalog.transaction() as db:
        store.catalog.stage(db, txn, staged)
        store.catalog.publish(db, txn)
        store.catalog.set_sources(db, sources)
        meta = {"version": str(old_meta.get("version") or "migrated"), "embedding_model": store.embedding_model}
        if old_meta.get("chunk_tokens"):
            meta["chunk_tokens"] = str(old_meta["chunk_tokens"])
        store.catalog.set_meta(db, **meta)
        store.catalog.trash(db, unfinished)
    with store.vectors._use() as handles:
        handles.client.delete_collection(OLD_SOURCES)
    store._empty_trash()
    shutil.rmtree(store.home / "lexical", ignore_errors=True)  # layout 1's BM25 files: the catalog's FTS5 replaces them
    log.warning("migrated %s to the catalog (library.sqlite3): %d papers, %d chunks, %d sources; nothing re-embedded",
                store.home, len(staged), sum(len(s.chunks) for s in staged), len(sources))
    return True
