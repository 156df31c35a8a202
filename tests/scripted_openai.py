"""A real OpenAI-compatible HTTP server on 127.0.0.1 that gives one reply to every chat completion (what a hostile
or careless model could send, through the same client a real server would get), and a server that records what a
browser fetches from it (an exfiltration target)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from model_server import ScriptedServer, scripted_server


@contextmanager
def scripted_openai(reply: str, status: int = 200, delay: float = 0) -> Iterator[tuple[str, ScriptedServer]]:
    """(base URL, the server, with its `requests`) of a server that answers every chat completion with `reply`
    (streamed when asked to stream, after `delay` seconds), or, with an error `status`, with OpenAI's error body
    for it (401: a rejected key)."""
    answer = ({"content": reply, "delay": delay} if status == 200
              else {"status": status, "error": {"message": reply, "type": "invalid_request_error"}})
    models = {"object": "list", "data": [{"id": "scripted", "object": "model"}]}
    with scripted_server([], models=models, default=answer) as server:
        yield server.base_url, server


@contextmanager
def pixel_server() -> Iterator[tuple[int, list[str]]]:
    """A server that counts what is fetched from it (an exfiltration target): (port, requested paths)."""
    hits: list[str] = []

    class Pixel(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pixel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()
