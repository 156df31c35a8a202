"""The Chroma store: chunks (passages + vectors), papers (records + paper-level vectors) and sources (file hashes).

Chroma holds everything the library knows: `chunks` (passages + vectors), `papers` (one entry per paper,
its full record and a paper-level vector for clustering and similar-paper search) and `sources` (the hash
of each ingested file, so unchanged files cost nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from ..corpus import Paper
from .chunking import Chunk
from .embedders import StoreError

if TYPE_CHECKING:
    import chromadb

PAPERS, CHUNKS, SOURCES = "papers", "chunks", "sources"


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
