"""benchmarks/scale.py: its papers are the same in every run and distinct from each other, and a real run at a
small size prints a table of numbers for every column."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "scale.py"
_SPEC = importlib.util.spec_from_file_location("scale", SCRIPT)
scale = sys.modules["scale"] = importlib.util.module_from_spec(_SPEC)  # its dataclasses look themselves up there
_SPEC.loader.exec_module(scale)
needs_scifact = pytest.mark.skipif(not (scale.SCIFACT / "corpus.jsonl").exists(), reason="no ../shared/eval/scifact")


@needs_scifact
def test_papers_are_seeded_recombined_real_sentences_and_distinct() -> None:
    titles, sentences = scale.pieces([scale.SCIFACT / "corpus.jsonl"])
    first = list(scale.papers(titles, sentences, 0, 300))
    assert list(scale.papers(titles, sentences, 250, 50)) == first[250:]  # paper i is the same, wherever it starts
    assert len({p["_id"] for p in first}) == len({p["text"] for p in first}) == 300
    for paper in first[:20]:  # real sentences, one after another
        assert paper["title"] and any(paper["text"].startswith(s + " ") for s in sentences)


@pytest.mark.slow
@needs_scifact
def test_a_run_at_200_papers_prints_numbers_in_every_cell_and_a_kept_home_is_measured_again(tmp_path: Path) -> None:
    def run(*flags: str) -> tuple[list[str], dict]:
        result = subprocess.run([sys.executable, str(SCRIPT), "--sizes", "200", "--queries", "5", "--work",
                                 str(tmp_path), "--json", *flags], capture_output=True, text=True, timeout=600,
                                check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        assert re.search(r"^Flags: .*\bsse2\b", result.stdout, re.MULTILINE)  # the CPU flags beside the numbers
        rows = [line for line in result.stdout.splitlines() if line.startswith("| 200 papers |")]
        assert len(rows) == 1
        cells = [cell.strip() for cell in rows[0].strip("|").split("|")[1:]]
        return cells, json.loads(result.stdout.splitlines()[-1])[0]

    timed = r"[\d.]+ s \(cpu [\d.]+ s\), [\d,]+ MB"
    patterns = [timed, timed, r"[\d.]+ s", timed, r"p50 \d+ ms, p95 \d+ ms",
                r"[\d,]+ papers/s \([\d,]+ per cpu s\), [\d,]+ MB"]
    cells, numbers = run("--keep")
    assert len(cells) == len(patterns)
    for cell, pattern in zip(cells, patterns):
        assert re.fullmatch(pattern, cell), cell
    assert numbers["papers"] == 200 and all(value > 0 for value in numbers.values())
    cells, numbers = run("--reuse")  # the kept home, without its ingest: another old paper is removed
    assert cells[-1] == "reused" and all(re.fullmatch(p, c) for p, c in zip(patterns[:-1], cells[:-1]))
    assert numbers["add_s"] > 0 and numbers["remove_old_s"] > 0
    assert not list(tmp_path.iterdir())  # without --keep, the papers and homes it made are gone
