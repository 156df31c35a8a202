"""Serve the app on a free local port and drive it with Debian's chromium: shared by the browser test and
docs/screenshots.py, so both exercise the app exactly as `litassist ui` serves it. Never downloads a browser."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

APP = Path(__file__).resolve().with_name("app.py")
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
               "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 900}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(home: Path, env: dict[str, str] | None = None, log: Path | None = None,
          ready_timeout: float = 90.0) -> Iterator[str]:
    """`streamlit run ui/app.py --server.port PORT -- --home HOME` (the address comes from the app's own
    .streamlit/config.toml: 127.0.0.1); yields its URL once healthy, always stops it."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
               "--server.headless", "true", "--", "--home", str(home)]
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"streamlit exited with status {server.returncode} before serving")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not become healthy within {ready_timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)
        if log:
            output.close()


def launch(playwright: Any) -> Any:
    """Chromium from the system (apt), never a downloaded one."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)


def wait_until_idle(page: Any, timeout_ms: int = 120_000) -> None:
    """Until Streamlit has finished the current script run (its status widget disappears)."""
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=timeout_ms)


def ask(page: Any, question: str, timeout_ms: int = 120_000) -> Any:
    """Type a question into the chat box, wait for the finished answer; returns its first citation button."""
    page.get_by_placeholder("Ask about your papers…").fill(question)
    page.keyboard.press("Enter")
    citation = page.locator(".st-key-cite-0-1 button")
    citation.first.wait_for(timeout=timeout_ms)
    wait_until_idle(page, timeout_ms)  # the streamed draft is replaced by the final answer when the run ends
    return citation
