"""Waiting for the app's background answers in AppTest, which has no fragment timer (issue 20: a question is saved
when sent and answered by a worker thread; in a browser the fragment watching the turn reruns the page)."""

from __future__ import annotations

import time

from assistant.ui.chat import answering

from assistant import Assistant


def wait_answered(lib: Assistant, conversation_id: str | None, timeout: float = 180) -> None:
    """Return once this process has answered every question of the conversation."""
    deadline = time.monotonic() + timeout
    while conversation_id and answering().queued(lib, conversation_id):
        assert time.monotonic() < deadline, f"no answer within {timeout:.0f} s"
        time.sleep(0.05)
