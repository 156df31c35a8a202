"""Cold start of `litassist search` (a fresh process each time) and the peak memory of such a process.

    python benchmarks/cold_start.py [HOME] [--runs 5]

HOME defaults to the SciFact evaluation home (run `litassist eval retrieval ../shared/eval/scifact` first).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from assistant.evaluate import eval_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home", nargs="?", default=str(eval_home(Path(__file__).parents[2] / "shared/eval/scifact")))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    command = [sys.executable, "-m", "assistant", "--home", args.home, "-q"]
    for label, extra in (("--help", ["--help"]), ("search", ["search", "vitamin D and bone density", "--json"])):
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(command + extra, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
        print(f"litassist {label}: median {statistics.median(times):.2f} s over {args.runs} fresh processes")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of a search process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
