"""A real OpenAI-compatible HTTP server on 127.0.0.1 whose chat completions are scripted replies: what a hostile
or careless model could send, through the same client (LangChain's ChatOpenAI) a real server would get."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ScriptedOpenAI:
    """Answers every chat completion with `reply` (streamed as server-sent events when asked to stream), or, with
    an error `status`, with OpenAI's error body for it (401: a rejected key)."""

    def __init__(self, reply: str, status: int = 200):
        self.reply = reply
        self.status = status
        self.requests: list[dict] = []

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append(request)
                if server.status != 200:
                    self._send(server.status, {"error": {"message": server.reply, "type": "invalid_request_error"}})
                elif request.get("stream"):
                    self._stream(request.get("model", "scripted"))
                else:
                    self._send(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": "scripted",
                                     "choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": server.reply}}],
                                     "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

            def _stream(self, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                words = server.reply.split(" ")
                for i, word in enumerate(words):
                    delta = {"role": "assistant", "content": word + (" " if i < len(words) - 1 else "")}
                    self._event({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": model,
                                 "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                self._event({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": model,
                             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                self.wfile.write(b"data: [DONE]\n\n")

            def _event(self, payload: dict) -> None:
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

            def _send(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@contextmanager
def scripted_openai(reply: str, status: int = 200) -> Iterator[tuple[str, ScriptedOpenAI]]:
    """(base URL, the server's record) of a scripted server running for the block."""
    script = ScriptedOpenAI(reply, status)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), script.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", script
    finally:
        server.shutdown()
        server.server_close()


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
