"""Chunk, embed and store: Paper records -> token-bounded chunks -> vectors -> an on-disk Chroma store.

One module a job: `chunking` (passages and sentences), `embedders` (MiniLM on ONNX Runtime, sentence-transformers,
OpenAI), `catalog` (the SQLite source of truth, with the FTS5 lexical index), `vectors` (Chroma), `store` (the two in
step), `locks` (one writer at a time), `ingest` (files -> papers -> the store, and removal), `migrate`, `backup`,
`serverlog` (a library shared through a Chroma server).
"""

from ..errors import LibraryBusy, StoreError
from .chunking import (
    SENTENCE_BREAK,
    Chunk,
    chunk_paper,
    count_tokens,
    paragraph_sentence_spans,
    sentence_spans,
    split_sentences,
)
from .embedders import Embedder, OnnxEmbedder, OpenAIEmbedder, SentenceTransformerEmbedder, make_embedder
from .ingest import (
    FileFailure,
    IngestReport,
    ProgressCallback,
    ReindexReport,
    RemovalReport,
    SkippedEntry,
    ingest,
    reindex,
    remove,
)
from .store import ChunkHit, Facets, LibraryState, PaperQuery, SourceRecord, Store, StoredPaper, read_manifest

__all__ = [
    "SENTENCE_BREAK",
    "Chunk",
    "ChunkHit",
    "Embedder",
    "Facets",
    "FileFailure",
    "IngestReport",
    "LibraryBusy",
    "LibraryState",
    "OnnxEmbedder",
    "OpenAIEmbedder",
    "PaperQuery",
    "ProgressCallback",
    "ReindexReport",
    "RemovalReport",
    "SentenceTransformerEmbedder",
    "SkippedEntry",
    "SourceRecord",
    "Store",
    "StoreError",
    "StoredPaper",
    "chunk_paper",
    "count_tokens",
    "ingest",
    "make_embedder",
    "paragraph_sentence_spans",
    "read_manifest",
    "reindex",
    "remove",
    "sentence_spans",
    "split_sentences",
]
