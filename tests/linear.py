"""Linear time, measured: every parser and sniffer must run in time linear in its input, or one crafted file holds
the ingest lock for minutes (a 61 KB scraped line took 57 s; an RIS file with 100,000 blank lines, 37 s in the
BibTeX sniffer). Shared by the fuzz suite and the readers' own tests; a SIGALRM watchdog turns a hang into a
failure instead of a stalled CI run."""

from __future__ import annotations

import contextlib
import gc
import math
import signal
import time
from collections.abc import Callable, Iterator

import pytest

WATCHDOG_SECONDS = 5
LINEAR_MIN_SECONDS = 0.05  # inputs are doubled until one run takes this long: shorter times are timer noise
LINEAR_MAX_CHARS = 2_000_000  # an input this big that still runs faster than that is fast enough
LINEAR_MAX_RATIO = 8.0  # four times the input takes ~4x when linear, ~16x when quadratic (twice the input, ~2x
# against ~4x, left too little room: two linear parsers measured 3.2x on an xdist worker beside another)


@contextlib.contextmanager
def watchdog(seconds: int = WATCHDOG_SECONDS) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"parser still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _best_seconds(run: Callable[[str], object], text: str, repeats: int) -> float:
    """CPU seconds of the fastest of `repeats` runs: CPU time, not wall time, so other processes on a shared
    machine do not count, and the garbage collector paused, so a collection of the test session's own objects
    does not land in one size's run and not the other's."""
    best = math.inf
    for _ in range(repeats):
        gc.disable()
        try:
            started = time.process_time()
            with watchdog(60):
                run(text)
            best = min(best, time.process_time() - started)
        finally:
            gc.enable()
    return best


def assert_linear(make_input: Callable[[int], str], run: Callable[[str], object], start: int = 256) -> None:
    """Double `make_input(n)` until `run` takes LINEAR_MIN_SECONDS, then check that four times the input takes
    less than LINEAR_MAX_RATIO times as long. Both sizes are timed as the best of two runs, and a failing ratio is
    timed again before it fails, so a busy machine makes a linear parser look quadratic no more than it makes
    a quadratic one look linear."""
    n = start
    while True:
        text = make_input(n)
        if (small := _best_seconds(run, text, 1)) >= LINEAR_MIN_SECONDS and \
                (small := min(small, _best_seconds(run, text, 1))) >= LINEAR_MIN_SECONDS:
            break
        if len(text) > LINEAR_MAX_CHARS:
            return
        n *= 2
    bigger = make_input(4 * n)
    for _ in range(2):
        big = _best_seconds(run, bigger, 2)
        if big / small < LINEAR_MAX_RATIO:
            return
        small = min(small, _best_seconds(run, text, 2))
    pytest.fail(f"{len(text):,} characters took {small:.3f} s, {len(bigger):,} took {big:.3f} s "
                f"({big / small:.1f}x for four times the input): not linear")
