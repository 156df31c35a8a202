"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions API from a script, for tests of the
client path (streaming, tool calls, HTTP errors, a server that never answers) without a model.

Each POST /v1/chat/completions takes the next reply of the script:
- {"content": "text"}: the answer, streamed word by word (or whole, for non-streaming requests);
- {"tool_calls": [{"name": ..., "args": {...}}]}: tool calls;
- {"status": 400, "error": {...}}: an HTTP error with an OpenAI-style error body;
- {"hang": True}: accept the request and never answer (until the server stops);
- "delay": N in any reply: wait N seconds before it (a slow model).
Once the script is used up, every request gets `default`. GET /v1/models and GET /props answer with `models` /
`props` when given, else 404.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: list[dict[str, Any]], models: dict | None = None, props: dict | None = None,
                 default: dict[str, Any] | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.default = default or {"content": "(script exhausted)"}  # the reply once the script is used up
        self.models = models
        self.props = props
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each completion request
        self.stopping = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        payload = {"/v1/models": self.server.models, "/props": self.server.props}.get(self.path)
        self._json(200, payload) if payload is not None else self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.requests.append(request)
        self.server.arrivals.append(time.monotonic())
        reply = self.server.script.pop(0) if self.server.script else self.server.default
        if reply.get("hang"):
            self.server.stopping.wait(120)
            return
        if reply.get("delay"):  # a slow model: seconds before the reply starts
            self.server.stopping.wait(reply["delay"])
        if "status" in reply:
            self._json(reply["status"], {"error": reply["error"]})
            return
        if not request.get("stream"):
            message = {"role": "assistant", "content": reply.get("content", "")}
            self._json(200, {"id": "x", "object": "chat.completion", "created": 0, "model": request.get("model"),
                             "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for delta, finish in _deltas(reply):
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": request.get("model"),
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        last = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [], "usage": usage}
        self.wfile.write(f"data: {json.dumps(last)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


def _deltas(reply: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
    if reply.get("tool_calls"):
        for i, call in enumerate(reply["tool_calls"]):
            yield (
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": i,
                            "id": f"call-{i}",
                            "type": "function",
                            "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
                        }
                    ],
                },
                None,
            )
        yield {}, "tool_calls"
        return
    words = reply.get("content", "").split(" ")
    for i, word in enumerate(words):
        yield {"role": "assistant", "content": word + (" " if i < len(words) - 1 else "")}, None
    yield {}, "stop"


@contextmanager
def scripted_server(script: list[dict[str, Any]], **kwargs: Any) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
