"""Every error litassist raises on purpose, in one place: each one's str() is the one line a user sees (the CLI
prints it, the app shows it, a saved turn records it), never a traceback. Importing this module imports nothing
else of litassist, so any layer may raise them; `assistant` re-exports them all."""

from __future__ import annotations

from pathlib import Path

MAX_REASON_CHARS = 400  # a reason longer than this is cut: it is printed, logged and shown in the app as one line


class StoreError(RuntimeError):
    """The store cannot be used as asked (e.g. it was built with another embedding model)."""


class LibraryBusy(StoreError):
    """Another writer held the library for longer than the lock timeout."""


class ConversationsDamaged(StoreError):
    """HOME/conversations.sqlite3 cannot be read: one line naming the file and the remedy. A StoreError, so the
    CLI prints it as its one line, but it says the library itself is fine (its papers are in another file)."""

    @classmethod
    def of(cls, path: Path, error: BaseException) -> ConversationsDamaged:
        detail = " ".join(str(error).split())[:120]
        return cls(f"{path} cannot be read ({detail}): move it aside to start a fresh conversation list; "
                   "your library is not affected")


class ConversationError(KeyError):
    """An unknown or ambiguous conversation id; str() is the one line to show."""

    def __str__(self) -> str:
        return str(self.args[0])


class ParseError(ValueError):
    """A file that cannot be ingested; the message is one line naming what is wrong (made so here: quoted
    file content can hold line breaks, and a reason is printed, logged and shown in the app as one line)."""

    def __init__(self, message: str):
        line = " ".join(str(message).split())
        super().__init__(line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…")


class EnrichError(RuntimeError):
    """The run cannot go on (no network, a service gone); str() is the one line to show. What was fetched and
    stored before it is kept."""


class EmptyLibraryError(RuntimeError):
    """A question asked of a library with no papers (in a saved conversation: recorded as its failed turn)."""


class ProviderError(RuntimeError):
    """A model problem said in one line with what to do; shown instead of a stack trace."""


class ContextLengthError(ProviderError):
    """The prompt did not fit the model's context window; `window` is the window the server named, if any."""

    def __init__(self, message: str, window: int | None = None):
        super().__init__(message)
        self.window = window


class RequestRefusedError(ProviderError):
    """The server refused the request as malformed (HTTP 400), e.g. because it cannot take tool definitions."""
