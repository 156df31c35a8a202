"""The OpenAI-compatible embedding provider against a real HTTP server on 127.0.0.1, with no internet: nothing is
downloaded (tiktoken is never asked for `cl100k_base`), and every way the server can fail is one line."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.config import load_settings
from assistant.index import OpenAIEmbedder, StoreError, make_embedder
from assistant.index.embedders import EMBEDDING_REQUEST_TEXTS

_SPEC = importlib.util.spec_from_file_location(
    "embedding_server", Path(__file__).parents[1] / "benchmarks" / "embedding_server.py")
embedding_server = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(embedding_server)
EmbeddingServer, serving, hashed_vectors = (embedding_server.EmbeddingServer, embedding_server.serving,
                                            embedding_server.hashed_vectors)

# Run in a fresh process: tiktoken refuses the name that downloads, then the CLI runs with argv.
NO_DOWNLOAD_CLI = """
import sys, tiktoken
real = tiktoken.get_encoding
def offline_only(name, *args, **kwargs):
    if name == "cl100k_base":
        raise RuntimeError("tiktoken was asked for cl100k_base by name: that downloads the BPE file")
    return real(name, *args, **kwargs)
tiktoken.get_encoding = offline_only
from assistant.cli import run
sys.argv = ["litassist", *sys.argv[1:]]
run()
"""


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("assistant.index.embedders.EMBEDDING_RETRY_SECONDS", (0.01, 0.01))


class FaultyServer(EmbeddingServer):
    """Answers each request with the next (status, body) of `replies`, or with a hashed vector once they run out;
    ("hang", None) never answers (until the test ends)."""

    def __init__(self, replies: list[tuple[Any, Any]]):
        super().__init__()
        self.replies = list(replies)
        self.released = threading.Event()

    def answer(self, request: dict[str, Any]) -> tuple[int, bytes]:
        if not self.replies:
            return super().answer(request)
        status, body = self.replies.pop(0)
        if status == "hang":
            self.released.wait(30)
            return 500, b"{}"
        return status, body if isinstance(body, bytes) else json.dumps(body).encode()


def _embedding_reply(vectors: list[list[float]]) -> dict[str, Any]:
    return {"object": "list", "data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)]}


def _openai_env(base_url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITASSIST_"))}
    return {**env, "LITASSIST_EMBEDDING_PROVIDER": "openai", "LITASSIST_EMBEDDING_MODEL": "hashed-384",
            "OPENAI_BASE_URL": base_url, "LITASSIST_HOME": str(home), "LITASSIST_LLM_PROVIDER": "offline",
            "PYTHONPATH": str(Path(__file__).parents[1])}


def test_vectors_come_back_in_input_order_normalized_and_in_bounded_requests() -> None:
    texts = [
        f"paper {i} about graph neural networks and message passing" for i in range(2 * EMBEDDING_REQUEST_TEXTS + 5)
    ]
    with serving() as server:
        embedder = OpenAIEmbedder("hashed-384", None, server.base_url)
        vectors = embedder.embed_documents(texts)
        query = embedder.embed_query("message passing")
    assert server.requests == 3 + 1  # 517 texts in requests of at most 256, then the query
    np.testing.assert_allclose(vectors, hashed_vectors(texts), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert query.shape == (384,)


def test_settings_pick_the_server_without_an_api_key(tmp_path: Path) -> None:
    with serving() as server:
        embedder = make_embedder(load_settings(tmp_path, embedding_provider="openai", openai_base_url=server.base_url,
                                               embedding_model="m"))
        assert embedder.embed_documents(["a text"]).shape == (1, 384)


@pytest.mark.parametrize(("replies", "expected"), [
    ([(500, {"error": {"message": "CUDA out of memory"}})] * 3, "answered HTTP 500: .*CUDA out of memory"),
    ([(401, {"error": "bad key"})], r"refused the API key \(HTTP 401\): check OPENAI_API_KEY"),
    ([(404, {"error": "no such model"})], "HTTP 404 for model 'm': check LITASSIST_EMBEDDING_MODEL"),
    ([(200, b"<html>a proxy page</html>")], "not an OpenAI embeddings response .*JSONDecodeError"),
    ([(200, {"data": [{"index": 0, "vector": [1.0]}]})], "not an OpenAI embeddings response .*KeyError"),
    ([(200, _embedding_reply([[1.0, 0.0]]))], r"sent \(1, 2\) numbers for 2 texts: expected one vector per text"),
    ([(200, _embedding_reply([[1.0, 0.0], [0.0, 1.0]])), (200, _embedding_reply([[1.0, 0, 0]] * 2))],
     "sent 3-d vectors after 2-d ones"),
    ([("hang", None)], r"did not answer within 0.5 s \(LITASSIST_EMBEDDING_TIMEOUT\)"),
    ([(200, b'{"data": [{"index": 0, "embedding": [NaN, 1]}, {"index": 1, "embedding": [1, 0]}]}')], "NaN or infinity"),
    ([(503, {"error": "loading"})] * 3, "answered HTTP 503: .*loading"),
])
def test_every_server_failure_is_one_line_naming_the_server(replies: list[tuple[Any, Any]], expected: str) -> None:
    server = FaultyServer(replies)
    with serving(server):
        embedder = OpenAIEmbedder("m", None, server.base_url, timeout=0.5)
        with pytest.raises(StoreError, match=expected) as caught:
            for _ in range(2):
                embedder.embed_documents(["first text", "second text"])
        server.released.set()
    message = str(caught.value)
    assert message.startswith(f"the embedding server at {server.base_url}/embeddings ") and "\n" not in message


def test_busy_server_is_asked_again() -> None:
    """429 and 5xx are retried (OpenAI rate-limits; a local server may still be loading its model)."""
    server = FaultyServer([(429, {"error": "slow down"}), (503, {"error": "loading"})])
    with serving(server):
        vectors = OpenAIEmbedder("m", None, server.base_url).embed_documents(["a text"])
    assert server.requests == 3 and vectors.shape == (1, 384)


def test_a_server_that_is_not_running_is_one_line() -> None:
    server = EmbeddingServer()
    url = server.base_url
    server.server_close()  # the port is free again: connection refused
    with pytest.raises(StoreError, match=f"the embedding server at {url}/embeddings cannot be reached .*running"):
        OpenAIEmbedder("m", None, url).embed_query("anything")


@pytest.mark.slow
def test_cli_ingests_and_searches_through_a_local_server_without_downloads(tmp_path: Path) -> None:
    corpus = tmp_path / "papers.jsonl"
    corpus.write_text(
        "".join(
            json.dumps(record) + "\n"
            for record in [
                {
                    "_id": "gnn",
                    "title": "Message passing on graphs",
                    "text": "Graph neural networks pass messages along edges.",
                },
                {
                    "_id": "rl",
                    "title": "Multi-agent reinforcement learning",
                    "text": "Agents learn policies by reward.",
                },
                {"_id": "bio", "title": "Protein folding", "text": "Amino acid chains fold into structures in cells."},
            ]
        ),
        encoding="utf-8",
    )
    with serving() as server:
        env = _openai_env(server.base_url, tmp_path / "home")

        def cli(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-c", NO_DOWNLOAD_CLI, *argv], capture_output=True, text=True,
                                  env=env, timeout=300, check=False)

        ingested = cli("ingest", str(corpus), "--json")
        assert ingested.returncode == 0, ingested.stderr[-2000:]
        assert json.loads(ingested.stdout)["new"] == 3
        found = cli("search", "graph neural networks message passing", "--json", "--mode", "dense", "-k", "1")
        assert found.returncode == 0, found.stderr[-2000:]
        assert [hit["paper_id"] for hit in json.loads(found.stdout)] == ["gnn"]
        assert server.requests >= 2
    stopped = cli("search", "graph neural networks")  # the server is gone: one line, exit 1, no traceback
    assert stopped.returncode == 1
    assert stopped.stderr.strip().startswith(f"error: the embedding server at {server.base_url}/embeddings cannot be")
    assert len(stopped.stderr.strip().splitlines()) == 1 and "Traceback" not in stopped.stderr
