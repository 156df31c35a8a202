"""Serve the app on a free local port and drive it with Debian's chromium: shared by the browser tests and
docs/screenshots.py, so both exercise the app exactly as `litassist ui` serves it. Never downloads a browser.
Test-only code: it lives in tests/, not in the wheel."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

APP = Path(str(resources.files("assistant.ui").joinpath("app.py")))  # the file `litassist ui` serves
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
               "--no-first-run"]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
QUESTION_BOX = "Ask about your papers…"


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


def open_app(page: Any, url: str, timeout_ms: int = 180_000) -> None:
    """Load the app in `page` and wait until its chat box is there and the first script run has finished."""
    page.goto(url)
    page.get_by_placeholder(QUESTION_BOX).wait_for(timeout=timeout_ms)
    wait_until_idle(page)


def close_drawer(page: Any) -> None:
    """Close the source drawer (Escape) and wait until it is gone and the app is idle."""
    page.keyboard.press("Escape")
    page.get_by_role("dialog").wait_for(state="detached", timeout=30_000)
    wait_until_idle(page)


def ask(page: Any, question: str, number: int, timeout_ms: int = 120_000) -> Any:
    """Type a question into the chat box and wait for the saved answer numbered `number`; returns its chat
    message (the streamed draft is replaced by the saved turn when the run ends)."""
    page.get_by_placeholder(QUESTION_BOX).fill(question)
    page.keyboard.press("Enter")
    messages = page.locator("[data-testid='stChatMessage']")
    messages.filter(has_text=question).first.wait_for(timeout=timeout_ms)
    messages.last.get_by_text(f"Answer {number} ·", exact=False).wait_for(timeout=timeout_ms)  # the saved turn
    wait_until_idle(page, timeout_ms)
    return messages.last


def same_origin(url: str, origin: str) -> bool:
    """Whether a request stays on the app's origin (blob: and data: URLs the page makes itself included)."""
    if url.startswith("data:"):
        return True
    return url.removeprefix("blob:").startswith(origin.rstrip("/") + "/") or url.removeprefix("blob:") == origin


def record_requests(page: Any) -> list[str]:
    """Every URL the page requests from now on (the list fills as the page runs)."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def overflowing(page: Any) -> list[str]:
    """Visible elements of the main area reaching past the right edge of the window (not inside a scrolling
    container such as a table): what a phone would clip."""
    return page.evaluate("""() => {
        const width = window.innerWidth, out = [];
        const main = document.querySelector('[data-testid="stMain"]') || document.body;
        for (const el of main.querySelectorAll('*')) {
            const box = el.getBoundingClientRect();
            if (!box.width || !box.height || box.right <= width + 1) continue;
            let scroller = el.parentElement, clipped = false;
            while (scroller && scroller !== main) {
                const style = getComputedStyle(scroller);
                const clips = /(auto|scroll|hidden)/.test(style.overflowX);
                if (clips && scroller.getBoundingClientRect().right <= width + 1) {
                    clipped = true; break;
                }
                scroller = scroller.parentElement;
            }
            if (!clipped) out.push(`${el.tagName.toLowerCase()}.${el.className}`.slice(0, 120));
        }
        return out;
    }""")
