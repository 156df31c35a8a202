"""Answers worked out in the background, so no click can lose a question.

Streamlit stops a script run whenever the user touches a widget; an answer streamed inside the run died with it
(and with it the question, saved only at the end). Here a question is saved at once as a pending turn
(`Assistant.queue_question`) and answered by one thread per conversation, in the order asked, independent of
script runs: the page only watches (`progress`, in a fragment around the turn: ui/chat.py) and redraws from the
store when the turn is complete. A second question asked meanwhile waits its turn in the same queue.

A turn leaves its queue only after `answer_turn` has saved it, so a turn missing from `queued` is complete in the
store (or orphaned: its answering process died).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field

from assistant import Assistant, SavedTurn, Step

log = logging.getLogger("litassist.ui")


@dataclass
class Progress:
    """What the turn being answered has produced so far."""

    turn_id: int
    text: str = ""
    steps: list[Step] = field(default_factory=list)


@dataclass
class _Queue:
    waiting: deque[tuple[Assistant, SavedTurn, int]] = field(default_factory=deque)
    current: Progress | None = None


class Answering:
    """The answers in progress in this server process, per conversation (shared by every browser session, so a
    second tab on the same conversation sees the same progress, and by every model choice: switching the model
    mid-answer does not orphan the answer, which finishes with the model it started with)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], _Queue] = {}  # (library home, conversation id)

    def submit(self, lib: Assistant, conversation_id: str, turn: SavedTurn, k: int) -> None:
        """Answer `turn` (already saved as pending) with `lib`, after the turns queued before it."""
        key = (str(lib.settings.home), conversation_id)
        with self._lock:
            queue = self._queues.get(key)
            start = queue is None
            if queue is None:
                queue = self._queues[key] = _Queue()
            queue.waiting.append((lib, turn, k))
        if start:
            threading.Thread(target=self._work, args=(key,), daemon=True, name=f"answer-{conversation_id}").start()

    def progress(self, lib: Assistant, conversation_id: str) -> Progress | None:
        """A copy of the current turn's progress (None when nothing of this conversation runs here)."""
        with self._lock:
            queue = self._queues.get((str(lib.settings.home), conversation_id))
            current = queue.current if queue else None
            return Progress(current.turn_id, current.text, list(current.steps)) if current else None

    def queued(self, lib: Assistant, conversation_id: str) -> set[int]:
        """The ids of the conversation's turns this process is answering or will answer (one snapshot)."""
        with self._lock:
            queue = self._queues.get((str(lib.settings.home), conversation_id))
            if queue is None:
                return set()
            return {turn.turn_id for _, turn, _ in queue.waiting} | (
                {queue.current.turn_id} if queue.current else set()
            )

    def _work(self, key: tuple[str, str]) -> None:
        while True:
            with self._lock:
                queue = self._queues[key]
                if not queue.waiting:
                    del self._queues[key]
                    return
                lib, turn, k = queue.waiting.popleft()
                queue.current = progress = Progress(turn.turn_id)
            try:
                saved = lib.conversation(key[1])
                for event in lib.answer_turn(saved, turn, k):
                    with self._lock:
                        if event.kind == "token":
                            progress.text += event.text
                        elif event.kind == "step" and event.step:
                            progress.steps.append(event.step)
            except Exception as error:  # noqa: BLE001 - answer_turn saved the turn as failed with its one line
                log.info("turn %s failed: %s", turn.turn_id, error)
            with self._lock:
                queue.current = None
