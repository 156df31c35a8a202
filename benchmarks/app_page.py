"""What the app reads from the library on one page run, before and after it stopped loading every paper (issue 21,
point 5), timed in one process on one home:

    LITASSIST_EMBEDDING_MODEL=<the home's model> python benchmarks/app_page.py HOME [--text WORD ...] [--repeat 3]

Before: every run called `Assistant.papers()` (every record parsed) for the sidebar, the chat, Explore's filters
and the Library tab. After: the sidebar's facets, the Library tab's first page (and a page deep in the library, and
text filters), and Explore's admitted ids under a source filter that keeps every paper of the largest file. A
filtered query's first run is timed once (its answer is kept for the next page or run, timed apart).
HOME is changed only by the catalog's schema migrations on first open (timed apart): use a copy. Nothing embeds.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant import Assistant, Filters


def cpu_flags() -> str:
    """The CPU model and flags as `lscpu` prints them, printed beside the times."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "lscpu unavailable"
    return "\n".join(line for line in lines if line.startswith(("Model name", "Flags")))


def timed(what: str, call: Callable[[], Any], repeat: int) -> float:
    """The median of `repeat` warm runs (the first run is one of them: a page run after a click is warm too)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"{what:<58} {median:8.3f} s   (runs: {', '.join(f'{t:.3f}' for t in times)})")
    return median


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path)
    parser.add_argument("--text", nargs="+", default=["zzzqqq", "neutrophil", "the"],
                        help="the Library tab's text filters to time (the slowest is reported)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lib = Assistant(home=args.home)
    started = time.perf_counter()
    size = lib.paper_count()  # opens the catalog: migrates an older schema once
    print(f"{size:,} papers at {args.home}; first open (schema {lib.store.catalog.schema_version()}, migrations "
          f"included) {time.perf_counter() - started:.2f} s")
    print(cpu_flags())
    facets = lib.library_facets()
    largest = max(facets.files, key=facets.files.__getitem__)
    source = Filters(source=largest)
    print(f"facets: {len(facets.years)} years, {facets.undated:,} undated, {len(facets.formats)} formats, "
          f"{len(facets.files)} files, {len(facets.collections)} collections; largest file {Path(largest).name} "
          f"({facets.files[largest]:,} papers)")
    print("\nafter: what a page run reads now")
    after = timed("library_facets() (sidebar, chat, Library counts)", lib.library_facets, args.repeat)
    first = timed("browse(): the Library tab's first page of 200", lambda: lib.browse(limit=200), args.repeat)
    timed("browse(): a page at the library's middle", lambda: lib.browse(offset=size // 2, limit=200), args.repeat)
    # a filtered query's ids are kept for its next pages: its first page is timed once per query
    text = max(timed(f"browse(text={word!r}): the text filter, first page", lambda w=word: lib.browse(text=w), 1)
               for word in args.text)
    timed(f"browse(text={args.text[-1]!r}): its next page", lambda: lib.browse(text=args.text[-1], offset=200),
          args.repeat)
    explore = timed("matching_papers(source filter): Explore's filter", lambda: lib.matching_papers(source), 1)
    timed("matching_papers(source filter): its next run", lambda: lib.matching_papers(source), args.repeat)
    timed("browse(source filter, text='the'): first page", lambda: lib.browse(source, "the"), 1)
    print(f"peak RSS so far {peak_mb():,.0f} MB")
    print("\nbefore: what every page run read")
    before = timed("papers() (every record parsed)", lib.papers, 1)
    print(f"peak RSS {peak_mb():,.0f} MB")
    print(f"\npage run, Library tab: before {before:.2f} s, after {after + first:.3f} s (facets + first page); "
          f"with a new text filter up to {after + text:.2f} s; Explore under a filter {after + explore:.2f} s")


if __name__ == "__main__":
    main()
