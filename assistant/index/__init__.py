"""Chunk, embed and store: Paper records -> token-bounded chunks -> vectors -> an on-disk Chroma store.

One module a job: `chunking` (passages and sentences), `embedders` (MiniLM on ONNX Runtime, sentence-transformers,
OpenAI), `store` (Chroma), `locks` (one writer at a time, commits searches never straddle), `ingest` (files -> papers
-> the store, and removal).
"""

from .chunking import (
    SENTENCE_BREAK,
    Chunk,
    chunk_paper,
    count_tokens,
    paragraph_sentence_spans,
    sentence_spans,
    split_sentences,
)
from .embedders import Embedder, OnnxEmbedder, OpenAIEmbedder, SentenceTransformerEmbedder, StoreError, make_embedder
from .ingest import FileFailure, IngestReport, ProgressCallback, RemovalReport, SkippedEntry, ingest, remove
from .locks import LibraryBusy
from .store import ChunkHit, LibraryState, SourceRecord, Store, StoredPaper, read_manifest

__all__ = [
    "SENTENCE_BREAK", "Chunk", "ChunkHit", "Embedder", "FileFailure", "IngestReport", "LibraryBusy", "LibraryState",
    "OnnxEmbedder", "OpenAIEmbedder", "ProgressCallback", "RemovalReport", "SentenceTransformerEmbedder", "SkippedEntry",
    "SourceRecord", "Store", "StoreError", "StoredPaper", "chunk_paper", "count_tokens", "ingest", "make_embedder",
    "paragraph_sentence_spans", "read_manifest", "remove", "sentence_spans", "split_sentences",
]
