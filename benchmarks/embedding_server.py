"""An OpenAI-compatible embedding server on loopback whose vectors cost next to nothing, so that a benchmark times
litassist's store and indexes, not a model.

    python benchmarks/embedding_server.py [--port 8089]    # then OPENAI_BASE_URL=http://127.0.0.1:8089/v1

POST /v1/embeddings answers every text with a feature-hashed bag of its words: each lower-cased word adds +-1 to
one of DIMENSION coordinates (both chosen by its CRC-32), and the sum is L2-normalized. Texts that share words get
similar vectors, so dense search still finds related papers; about 8,000 abstract-sized texts/s on one core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

DIMENSION = 384  # all-MiniLM-L6-v2's, so vectors weigh in the store what the default model's do
_WORD = re.compile(r"\w+")


def hashed_vectors(texts: Sequence[str], dimension: int = DIMENSION) -> np.ndarray:
    """One unit vector per text: the signed feature-hashing of its words (a text without words gets e_0)."""
    vectors = np.zeros((len(texts), dimension), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in _WORD.findall(text.lower()):
            code = zlib.crc32(word.encode())
            vectors[row, code % dimension] += 1.0 if code & 0x8000_0000 else -1.0
    vectors[~vectors.any(axis=1), 0] = 1.0
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class EmbeddingServer(ThreadingHTTPServer):
    """POST /v1/embeddings as OpenAI answers it (floats); `answer` makes the reply, so a test can change it."""

    daemon_threads = True

    def __init__(self, port: int = 0, dimension: int = DIMENSION):
        super().__init__(("127.0.0.1", port), _Handler)
        self.dimension = dimension
        self.requests = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def answer(self, request: dict[str, Any]) -> tuple[int, bytes]:
        """(HTTP status, JSON body) for one request body."""
        texts = request.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return 400, json.dumps({"error": {"message": "input must be a string or a list of strings"}}).encode()
        vectors = hashed_vectors(texts, self.dimension)
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors.tolist())]
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        return 200, json.dumps({"object": "list", "data": data, "model": request.get("model"), "usage": usage}).encode()


class _Handler(BaseHTTPRequestHandler):
    server: EmbeddingServer

    def log_message(self, *args: Any) -> None:  # quiet: a benchmark prints its own numbers
        pass

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/embeddings":
            status, body = 404, b'{"error": {"message": "only POST /v1/embeddings"}}'
        else:
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            except ValueError:
                request = None
            self.server.requests += 1
            status, body = (self.server.answer(request) if isinstance(request, dict)
                            else (400, b'{"error": {"message": "the body is not a JSON object"}}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(server: EmbeddingServer | None = None) -> Iterator[EmbeddingServer]:
    """Run `server` (default: a new one on a free port) on a thread for the duration of the block."""
    server = server or EmbeddingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--dimension", type=int, default=DIMENSION)
    args = parser.parse_args()
    server = EmbeddingServer(args.port, args.dimension)
    print(f"OPENAI_BASE_URL={server.base_url}  (Ctrl-C stops it)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
