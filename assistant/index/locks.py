"""Locks of one library home: a single writer at a time, and a short exclusive window to publish a change.

- The **write lock** (`HOME/write.lock`, a `filelock.FileLock`, plus a lock per home inside this process so
  threads sharing one Assistant exclude each other too) is held for a whole ingest, removal or backup. A
  second writer waits, saying who holds it, and gives up with one line after `LITASSIST_LOCK_TIMEOUT` seconds.
- The **open lock** (`HOME/open.lock`) is held while a process opens the library: Chroma creates its tables and
  collections on first open without guarding against another process doing the same, so two processes opening
  a new home at once failed with "table collections already exists".
Searches take no lock: each is one read transaction of the catalog (SQLite WAL), which a commit never straddles.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import LibraryBusy, StoreError

log = logging.getLogger("litassist.index")


class _Holder:
    """This process's hold on one home's write lock: the thread lock, its nesting depth and the file lock."""

    def __init__(self) -> None:
        self.threads = threading.RLock()
        self.depth = 0
        self.file: FileLock | None = None


_HOLDERS: dict[str, _Holder] = {}
_HOLDERS_GUARD = threading.Lock()


def _holder(home: Path) -> _Holder:
    with _HOLDERS_GUARD:
        return _HOLDERS.setdefault(str(home.resolve()), _Holder())


class LibraryLocks:
    """The write lock and the commit lock of one home (see the module docstring)."""

    def __init__(self, home: Path, timeout: float):
        self.home = home
        self.timeout = timeout
        self.write_path = home / "write.lock"
        self.owner_path = home / "write.lock.pid"
        self.open_path = home / "open.lock"
        self._held = _holder(home)

    def _owner(self) -> str:
        try:
            pid = self.owner_path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return "another litassist process"
        return f"process {pid}" if pid.isdigit() else "another litassist process"

    @contextlib.contextmanager
    def writer(self, wait: bool = True) -> Iterator[bool]:
        """Hold the write lock; yields True. With wait=False, yields False at once when it is taken."""
        held = self._held
        if not held.threads.acquire(blocking=False):
            if not wait:
                yield False
                return
            log.warning("another writer in this process is changing %s; waiting up to %.0f s", self.home, self.timeout)
            if not held.threads.acquire(timeout=self.timeout):
                raise LibraryBusy(self._busy_message("another writer in this process"))
        try:
            if held.depth == 0:
                held.file = self._acquire_file(wait)
                if held.file is None:
                    yield False
                    return
            held.depth += 1
            try:
                yield True
            finally:
                held.depth -= 1
                if held.depth == 0 and held.file is not None:
                    held.file.release()
                    held.file = None
        finally:
            held.threads.release()

    def _acquire_file(self, wait: bool) -> FileLock | None:
        self.home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.write_path, thread_local=False)
        try:
            _acquire(lock, 0)
        except Timeout:
            if not wait:
                return None
            owner = self._owner()
            log.warning("%s is writing to %s; waiting up to %.0f s for it to finish", owner, self.home, self.timeout)
            try:
                _acquire(lock, self.timeout)
            except Timeout:
                raise LibraryBusy(self._busy_message(owner)) from None
        with contextlib.suppress(OSError):
            self.owner_path.write_text(str(os.getpid()), encoding="ascii")
        return lock

    def _busy_message(self, owner: str) -> str:
        return (f"{self.home} is being changed by {owner}, which did not finish within {self.timeout:.0f} s; "
                "run again when it is done (LITASSIST_LOCK_TIMEOUT sets how long to wait)")

    def held_here(self) -> bool:
        """True when the calling thread holds the write lock (so it must not wait for itself)."""
        if not self._held.threads.acquire(blocking=False):
            return False
        try:
            return self._held.depth > 0
        finally:
            self._held.threads.release()

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """Held while this process opens (and on first use, creates) the library."""
        self.home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.open_path, thread_local=False)
        try:
            _acquire(lock, self.timeout)
        except Timeout:
            raise LibraryBusy(self._busy_message("another process opening the library")) from None
        try:
            yield
        finally:
            lock.release()


def _acquire(lock: FileLock, timeout: float) -> None:
    """Take a file lock; a lock path that something else occupies (a folder, say) is one line, not a traceback."""
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise
    except OSError as error:
        raise StoreError(f"{lock.lock_file} cannot be used as a lock file ({error.strerror or error}): move it aside "
                         "and run again; the library itself is not affected") from None
