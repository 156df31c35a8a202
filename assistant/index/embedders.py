"""Embedders: text -> unit-length vectors. The default is all-MiniLM-L6-v2 on ONNX Runtime, shipped inside this
package (no torch, no download); a local sentence-transformers folder (the `torch` extra) and OpenAI are the others.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import LOCAL_EMBEDDING_MODEL, Settings
from ..errors import StoreError

MAX_WORD_PIECES = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers (the BERT config says 512)


class Embedder(Protocol):
    name: str

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def bundled_model_dir() -> Path:
    """The folder holding the shipped MiniLM: onnx/model.onnx, onnx/tokenizer.json and MODEL.json (provenance)."""
    return Path(str(resources.files("assistant.index").joinpath("minilm")))


def bundled_model_card() -> dict[str, Any]:
    """MODEL.json: source weights and their SHA-256, the export and quantization, the result's SHA-256."""
    return json.loads((bundled_model_dir() / "MODEL.json").read_text(encoding="utf-8"))


class OnnxMiniLM:
    """A BERT sentence encoder as sentence-transformers runs all-MiniLM-L6-v2: word pieces truncated at 256, the
    encoder's last hidden states averaged over the attention mask, then L2-normalized.

    chromadb's ONNXMiniLM_L6_V2 does the same pooling and truncation, and loads a folder we give it without a
    download, but it encodes texts one by one and so pads every text to 256 word pieces: a 10-word query would cost
    25 times the work. So this calls ONNX Runtime and tokenizers directly and pads each batch to its longest text
    (callers sort by length; see `_in_length_order`).
    """

    def __init__(self, model: Path, tokenizer: Path, threads: int | None = None):
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.enable_truncation(max_length=MAX_WORD_PIECES)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of each batch
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or 0  # 0: one per physical core
        self.session = onnxruntime.InferenceSession(str(model), options,
                                                    providers=["CPUExecutionProvider"])

    def __call__(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, feeds)[0]
        weights = mask.astype(np.float32)
        pooled = np.einsum("bsh,bs->bh", hidden, weights) / np.clip(weights.sum(axis=1, keepdims=True), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


@functools.cache
def load_onnx_minilm(model_file: str, threads: int | None) -> OnnxMiniLM:
    """One model per process and file (the CLI, the app and the tests all reuse it); its tokenizer.json beside it."""
    return OnnxMiniLM(Path(model_file), Path(model_file).with_name("tokenizer.json"), threads)


def _in_length_order(encode: Callable[[list[str]], np.ndarray], texts: Sequence[str], batch_size: int) -> np.ndarray:
    """Encode longest texts first, batch by batch, so each batch pads to texts of about its own length."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    vectors: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        encoded = encode([texts[i] for i in batch])
        if vectors is None:
            vectors = np.empty((len(texts), encoded.shape[1]), dtype=np.float32)
        vectors[batch] = encoded
    return vectors if vectors is not None else np.empty((0, 0), dtype=np.float32)


class OnnxEmbedder:
    """The default: all-MiniLM-L6-v2 as an int8 ONNX graph shipped in this package, on ONNX Runtime (no torch).

    The graph is ONNX Runtime's dynamic int8 (7-bit weights per channel, activations per tensor): of the formats
    measured (docs/model.md) the only one faster than fp32 on both AVX2-only and AVX-512-VNNI x86, with SciFact
    retrieval unchanged. Its vectors match sentence-transformers' to the cosines MODEL.json records, so it keeps
    the model's name and opens libraries that the torch build of MiniLM (or an earlier ONNX file) made.
    """

    def __init__(self, batch_size: int = 32, threads: int | None = None, model_file: Path | None = None):
        self.name = LOCAL_EMBEDDING_MODEL
        self.batch_size = batch_size
        self.threads = threads
        self.model_file = model_file or bundled_model_dir() / "onnx" / "model.onnx"

    @property
    def model(self) -> OnnxMiniLM:
        return load_onnx_minilm(str(self.model_file), self.threads)

    @functools.cached_property
    def _counting_tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_file.with_name("tokenizer.json")))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count_word_pieces(self, text: str) -> int:
        """How many word pieces the model sees before truncation (chunks must stay within 256)."""
        return len(self._counting_tokenizer.encode(text).ids)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return _in_length_order(self.model, texts, self.batch_size)

    def embed_query(self, text: str) -> np.ndarray:
        return self.model([text])[0].astype(np.float32)


@functools.cache
def load_sentence_transformer(location: str, threads: int | None) -> Any:
    """Load a local sentence-transformers model once per process (needs the `torch` extra)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise StoreError(
            f"embedding model {location!r} is a sentence-transformers folder, which needs torch: "
            f"pip install 'litassist[torch]' ({error})"
        ) from None
    transformers.logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)
    return SentenceTransformer(location, device="cpu")


class SentenceTransformerEmbedder:
    """Any local sentence-transformers model folder (LITASSIST_EMBEDDING_MODEL=/path/to/folder), on CPU torch."""

    def __init__(self, folder: str, batch_size: int = 32, threads: int | None = None):
        self.name = folder
        self.batch_size = batch_size
        self.threads = threads

    @functools.cached_property
    def model(self) -> Any:
        return load_sentence_transformer(str(Path(self.name).expanduser()), self.threads)

    def count_word_pieces(self, text: str) -> int:
        return len(self.model.tokenizer(text)["input_ids"])

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


EMBEDDING_REQUEST_TEXTS = 256  # texts per request: ingest's write batch; 256 chunks x 200 tokens fit OpenAI's limits
EMBEDDING_RETRY_SECONDS = (1.0, 4.0)  # waits before the 2nd and 3rd try of a request answered 429 or 5xx


class OpenAIEmbedder:
    """OpenAI or any OpenAI-compatible embedding server (vLLM, llama.cpp, Ollama, TEI), through one plain POST per
    batch of texts to {base_url}/embeddings.

    Not LangChain's OpenAIEmbeddings: it asks tiktoken for `cl100k_base` by name to pre-split texts into tokens,
    which downloads the BPE file, so a local server without internet could not be used, and it sends token ids
    that many local servers do not accept. Texts go as they are (chunks are already within the model's limits),
    and every failure of the server is one StoreError line naming its URL (see `_post`).
    """

    def __init__(self, model: str, api_key: str | None, base_url: str | None, timeout: float = 60.0):
        import httpx

        if not api_key and not base_url:
            raise StoreError("embedding_provider=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL) to be set")
        self.name = model
        self.url = f"{(base_url or 'https://api.openai.com/v1').rstrip('/')}/embeddings"
        self.timeout = timeout
        self.dimension: int | None = None  # of the first answer; an answer of another size is an error
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=httpx.HTTPTransport(retries=2))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        batches = [self._post(list(texts[i : i + EMBEDDING_REQUEST_TEXTS]))
                   for i in range(0, len(texts), EMBEDDING_REQUEST_TEXTS)]
        vectors = np.concatenate(batches) if batches else np.empty((0, self.dimension or 0), dtype=np.float32)
        return vectors / np.clip(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12, None)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def _post(self, texts: list[str]) -> np.ndarray:
        """One request; the vectors in input order, or StoreError: one line naming the server and what to do."""
        import httpx

        try:
            for wait in (*EMBEDDING_RETRY_SECONDS, None):
                response = self._client.post(self.url, json={"model": self.name, "input": texts,
                                                             "encoding_format": "float"})
                if wait is None or (response.status_code != 429 and response.status_code < 500):
                    break
                time.sleep(wait)
        except httpx.TimeoutException:
            raise self._error(f"did not answer within {self.timeout:g} s (LITASSIST_EMBEDDING_TIMEOUT)") from None
        except httpx.HTTPError as error:
            raise self._error(f"cannot be reached ({type(error).__name__}: {error}): is the server running and "
                              "OPENAI_BASE_URL right?") from None
        if response.status_code in (401, 403):
            raise self._error(f"refused the API key (HTTP {response.status_code}): check OPENAI_API_KEY")
        if response.status_code == 404:
            raise self._error(f"answered HTTP 404 for model {self.name!r}: check LITASSIST_EMBEDDING_MODEL and that "
                              "OPENAI_BASE_URL ends in /v1")
        if response.status_code >= 400:
            raise self._error(f"answered HTTP {response.status_code}: {' '.join(response.text.split())[:200]}")
        try:
            items = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = np.array([item["embedding"] for item in items], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as error:
            raise self._error(f"sent an answer that is not an OpenAI embeddings response ({type(error).__name__}: "
                              f"{str(error)[:120]}): is OPENAI_BASE_URL an embedding server?") from None
        if vectors.ndim != 2 or len(vectors) != len(texts) or not vectors.shape[1]:
            raise self._error(f"sent {vectors.shape} numbers for {len(texts)} texts: expected one vector per text")
        if not np.isfinite(vectors).all():
            raise self._error("sent vectors holding NaN or infinity: the model failed on these texts")
        if self.dimension is not None and vectors.shape[1] != self.dimension:
            raise self._error(f"sent {vectors.shape[1]}-d vectors after {self.dimension}-d ones: is it still serving "
                              f"model {self.name!r}?")
        self.dimension = vectors.shape[1]
        return vectors

    def _error(self, what: str) -> StoreError:
        return StoreError(f"the embedding server at {self.url} {what}")


def _local_embedder(settings: Settings) -> Embedder:
    model = settings.resolved_embedding_model
    if model == LOCAL_EMBEDDING_MODEL:
        return OnnxEmbedder(settings.embed_batch_size, settings.embed_threads)
    if Path(model).is_dir():
        return SentenceTransformerEmbedder(model, settings.embed_batch_size, settings.embed_threads)
    raise StoreError(
        f"embedding model {model!r} is not available offline: use {LOCAL_EMBEDDING_MODEL!r} (built in) "
        "or a path to a local sentence-transformers model folder"
    )


def _openai_embedder(settings: Settings) -> Embedder:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAIEmbedder(settings.resolved_embedding_model, key, settings.openai_base_url,
                          settings.embedding_timeout)


EMBEDDERS: dict[str, Callable[[Settings], Embedder]] = {"local": _local_embedder, "openai": _openai_embedder}


def make_embedder(settings: Settings) -> Embedder:
    return EMBEDDERS[settings.embedding_provider](settings)
