"""Hostile inputs that crashed, hung or silently lost data before issue 11, and the helpers that run them (the
CLI in a fresh process, two files sharing papers), shared by the tests and by benchmarks/attacks.py (which
re-runs them against a fresh home and prints a table)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

WORDS = "We measure how graph partitioning heuristics scale on sparse matrices from real workloads. "


def cli_command(home: Path, *args: str) -> list[str]:
    """`litassist --home HOME ARGS...` through the installed entry point, as a user runs it."""
    return [sys.executable, "-c", "from assistant.cli import run; run()", "--home", str(home), *args]


def cli_env(**env: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "400", **env}  # wide, so a one-line message is never wrapped


def start_cli(home: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """The CLI in a new process, not waited for (its output in pipes)."""
    return subprocess.Popen(cli_command(home, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(**env))


def run_cli(home: Path, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a new process, waited for (killed after `timeout` s, which raises TimeoutExpired)."""
    return subprocess.run(cli_command(home, *args), check=False, capture_output=True, text=True, timeout=timeout,
                          env=cli_env(**env))


def write_overlapping(folder: Path, series: str = "x") -> tuple[Path, Path]:
    """x.jsonl holds papers 0-5, y.bib papers 3-8 (DOIs 10.5555/SERIES.i): three papers are in both (same DOI,
    title and abstract)."""
    def record(i: int) -> dict[str, str]:
        return {"title": f"Shared study number {i} of partitions", "doi": f"10.5555/{series}.{i}",
                "abstract": f"We partition graphs of kind {i} and measure edge cuts on {i * 7} sparse matrices."}

    folder.mkdir(parents=True, exist_ok=True)
    x, y = folder / "x.jsonl", folder / "y.bib"
    x.write_text("".join(json.dumps(record(i)) + "\n" for i in range(6)), encoding="utf-8")
    y.write_text("".join(f"@article{{k{i},\n  title = {{{record(i)['title']}}},\n  doi = {{{record(i)['doi']}}},\n"
                         f"  abstract = {{{record(i)['abstract']}}}\n}}\n" for i in range(3, 9)), encoding="utf-8")
    return x, y


def garble(path: Path) -> None:
    path.write_bytes(os.urandom(max(64, path.stat().st_size)))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def header(path: Path) -> None:
    """A garbled SQLite header (its first 64 bytes)."""
    data = path.read_bytes()
    path.write_bytes(b"garbage!" * 8 + data[64:])


def garble_middle(path: Path) -> None:
    """16 KiB of noise in the middle of the file."""
    data = path.read_bytes()
    middle = len(data) // 2
    path.write_bytes(data[:middle] + os.urandom(min(16384, len(data) - middle)) + data[middle + 16384 :])


def garble_table(path: Path, table: str = "papers") -> None:
    """Noise over every page of one table: where `garble_middle`'s 16 KiB land depends on the file's layout (a
    catalog index added in the middle moved them onto pages no command reads), these pages are read by every
    command that lists papers."""
    with sqlite3.connect(path) as db:
        pages = [page for (page,) in db.execute("SELECT pageno FROM dbstat WHERE name = ?", (table,))]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    assert pages, f"{path} has no table {table}"
    with path.open("r+b") as file:
        for page in pages:
            file.seek((page - 1) * size)
            file.write(os.urandom(size))


DAMAGE = {"garbled": garble, "truncated": truncate, "empty": empty, "header": header, "middle": garble_middle}


def abstract(topic: str) -> str:
    return f"{WORDS}This study of {topic} reports {len(topic)} findings in detail. " * 2


def write_bad_files(folder: Path) -> dict[str, str]:
    """Files that must each fail with one line (file name -> a word of the expected reason)."""
    folder.mkdir(parents=True, exist_ok=True)
    deep_object = '{"a":' * 100_000 + "1" + "}" * 100_000
    files = {
        "deep.json": ("[" * 100_000 + "]" * 100_000, "nested"),
        "deep.jsonl": (deep_object + "\n", "nested"),
        "deep.txt": (deep_object, "unrecognized"),
        "cut.ris": (
            "TY  - JOUR\nTI  - Cut short\nAB  - " + abstract("cut exports") + "\nER  - \n\nTY  - JOUR\nTI  - Half\n"
            "AB  - The abstract stops mid",
            "cut short",
        ),
        "cut.csv": ('title,abstract\nFine,"' + abstract("csv") + '"\nCut,"The field never clos', "malformed CSV"),
        "ragged.csv": ("title,abstract,year\nA,Some words here,2020\nB,Other words\n", "fields"),
        "broken_last.jsonl": (
            json.dumps({"id": "ok1", "abstract": abstract("jsonl")}) + '\n{"id": "ok2", "abs',
            "line 2",
        ),
        "conflict.jsonl": (
            json.dumps({"id": "p1", "abstract": abstract("one")})
            + "\n"
            + json.dumps({"id": "p1", "abstract": abstract("another")})
            + "\n",
            "same id",
        ),
        "evil\n\x1b[31mname[red]x.bib": ("@article{bad, title = {Unclosed,\n", "BibTeX"),
    }
    for name, (text, _) in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return {name: reason for name, (_, reason) in files.items()}


def write_handled_files(folder: Path) -> dict[str, int]:
    """Files that crashed the parser or the embedder before and are now stored (file name -> papers)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "bigint.json": '[{"id": ' + "1" * 1_000_000 + ', "title": "Huge id", "abstract": "' + abstract("ids") + '"}]',
        "infinity.json": json.dumps([{"id": float("inf"), "title": "Infinite id", "abstract": abstract("infinity")}]),
        "csl_flat.json": json.dumps([{"title": "Flat date parts", "issued": {"date-parts": [2021, 3]},
                                      "author": [42, None, {"family": "Doe", "given": "Jane"}],
                                      "abstract": abstract("csl dates")}]),
        "csl_null.json": json.dumps([{"title": "Null date parts", "issued": {"date-parts": [None]},
                                      "abstract": abstract("csl nulls")}]),
        "surrogate.json": '[{"title": "Lone \\ud800 surrogate", "abstract": "' + abstract("surrogates") + ' \\udfff"}]',
        "braces.bib": "@article{deep, title = {" + "{" * 300 + "Deep" + "}" * 300 + "}, abstract = {"
                      + abstract("braces") + "}}\n",
        "markup.bib": "@article{a[/]b, title = {Markup [bold]in[/bold] a [/] title}, abstract = {"
                      + abstract("markup [/] text") + "}}\n",
        "atom.xml": ('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><entry>'
                     "<id>http://arxiv.org/api/errors#incorrect_id</id><summary>bad query [/]</summary></entry>"
                     "<entry><id>http://arxiv.org/abs/2101.00009v1</id><title>Atom paper</title><summary>"
                     + abstract("atom feeds") + "</summary></entry></feed>"),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return {name: 1 for name in files}


def special_files(folder: Path) -> dict[str, str]:
    """Paths that must be refused without reading (path -> a word of the expected reason): a FIFO, devices
    that never end, and a sparse 3 GB file."""
    folder.mkdir(parents=True, exist_ok=True)
    fifo = folder / "pipe.bib"
    if not fifo.exists():
        os.mkfifo(fifo)
    sparse = folder / "sparse.txt"
    with sparse.open("wb") as handle:
        handle.truncate(3 * 2**30)
    return {str(fifo): "FIFO", "/dev/zero": "device", "/dev/urandom": "device", str(sparse): "limit"}
