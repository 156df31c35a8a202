"""One writer at a time, and searches that see the old or the new library, across processes and threads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hostile import start_cli, write_overlapping

from assistant import Assistant
from assistant.api import DEMO_CORPUS as SEEDS
from assistant.corpus import Paper, parse_file
from assistant.index import Chunk, Store

SMALL = ["arxiv-abstracts.txt", "paper-page-sparse-training-theory.txt"]  # 16 papers
BIG = "daily-papers-oct-31.txt"  # 70 papers
TESTS = Path(__file__).parent


def seeded(tmp_path: Path) -> Assistant:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in SMALL:
        shutil.copy(SEEDS / name, corpus / name)
    lib = Assistant(home=tmp_path / "home")
    lib.ingest([corpus])
    return lib


def visible(lib: Assistant) -> set[str]:
    """Every paper a dense search can return, i.e. the library as searches see it (k above its size)."""
    return {hit.paper_id for hit in lib.search("learning", k=400, mode="dense")}


def lexical_rows(lib: Assistant) -> int:
    """Papers in the lexical (FTS5) index, as a search in this process sees it."""
    with lib.store.reading():
        return lib.store.catalog.connection().execute("SELECT count(*) FROM lexical_docs").fetchone()[0]


@pytest.mark.slow
def test_searches_during_an_ingest_see_the_old_or_the_new_library(tmp_path: Path) -> None:
    """The attack: searching while another process ingests left 123 of 179 papers in the BM25 index for good.
    Here a long-lived process (like the app) searches in a loop while the CLI ingests 70 papers."""
    lib = seeded(tmp_path)
    old = visible(lib)
    new = old | {p.paper_id for p in parse_file(SEEDS / BIG).result.papers}
    assert len(old) == 16 and len(new) == 16 + 70
    writer = start_cli(tmp_path / "home", "ingest", str(SEEDS / BIG))
    seen_during = []
    while writer.poll() is None:
        ids = visible(lib)
        assert ids in (old, new), f"a mix: {len(ids)} papers"
        assert lexical_rows(lib) == len(ids)  # the lexical index describes the same library
        seen_during.append(len(ids))
        time.sleep(0.1)  # leave the writer some of this machine's two cores
    assert writer.returncode == 0, writer.stderr.read()
    assert 16 in seen_during  # searches ran while the writer was at work
    assert visible(lib) == new  # this process sees the other's papers in dense search too (fresh vector index)
    assert lexical_rows(lib) == lib.stats().papers == 86
    assert {h.paper_id for h in lib.search("learning", k=400, mode="lexical")} <= new


def test_opening_a_new_home_waits_for_the_open_lock(tmp_path: Path) -> None:
    """Chroma creates its tables on first open with no guard of its own: CI saw two ingests into a new home
    fail with "table collections already exists". An open waits while another process holds the open lock
    (here until the lock timeout, so the wait is seen whatever the machine's speed)."""
    from filelock import FileLock

    home = tmp_path / "home"
    home.mkdir()
    with FileLock(home / "open.lock"):
        opener = start_cli(home, "stats", "--json", LITASSIST_LOCK_TIMEOUT="2")
        assert opener.wait(timeout=120) == 1
        errors = [line for line in opener.stderr.read().splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "another process opening the library" in errors[0], errors
        assert not (home / "chroma" / "chroma.sqlite3").exists()
    opener = start_cli(home, "stats", "--json")
    assert opener.wait(timeout=120) == 0, opener.stderr.read()
    assert json.loads(opener.stdout.read())["papers"] == 0


@pytest.mark.slow
def test_many_processes_opening_a_new_home_at_once_all_succeed(tmp_path: Path) -> None:
    """Before the open lock, 3 of 60 processes (10 rounds of 6) failed this way on this machine."""
    for round_ in range(4):
        home = tmp_path / f"home{round_}"
        openers = [start_cli(home, "stats", "--json") for _ in range(6)]
        for proc in openers:
            assert proc.wait(timeout=300) == 0, proc.stderr.read()


@pytest.mark.slow
def test_two_ingests_at_once_merge_every_source_and_remove_source_stays_correct(tmp_path: Path) -> None:
    home = tmp_path / "home"
    x, y = write_overlapping(tmp_path)
    first, second = start_cli(home, "ingest", str(x)), start_cli(home, "ingest", str(y))
    for proc in (first, second):
        proc.wait(timeout=600)
        assert proc.returncode == 0, proc.stderr.read()

    lib = Assistant(home=home)
    papers = {p.doi: p for p in lib.papers()}
    assert len(papers) == 9
    for i in range(9):
        files = {Path(s.file).name for s in papers[f"10.5555/x.{i}"].sources}
        assert files == {"x.jsonl"} if i < 3 else {"x.jsonl", "y.bib"} if i < 6 else {"y.bib"}, (i, files)
    lib.search("partition", k=1)
    assert lexical_rows(lib) == 9

    removal = start_cli(home, "remove", "--source", str(y))
    assert removal.wait(timeout=300) == 0, removal.stderr.read()
    lib = Assistant(home=home)
    assert sorted(p.doi for p in lib.papers()) == [f"10.5555/x.{i}" for i in range(6)]
    assert all({Path(s.file).name for s in p.sources} == {"x.jsonl"} for p in lib.papers())
    again = lib.ingest([x])
    assert (again.files_unchanged, again.new, again.removed) == (1, 0, 0)
    lib.search("partition", k=1)
    assert lexical_rows(lib) == 6


@pytest.mark.slow
def test_a_second_writer_waits_then_gives_up_with_one_line(tmp_path: Path) -> None:
    lib = seeded(tmp_path)
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps({"id": "w1", "abstract": "Words about waiting writers and their locks."}) + "\n")
    with lib.store.locks.writer():  # this process is writing
        blocked = start_cli(tmp_path / "home", "ingest", str(source), LITASSIST_LOCK_TIMEOUT="2")
        _, stderr = blocked.communicate(timeout=300)
    assert blocked.returncode == 1
    assert f"process {os.getpid()} is writing to" in stderr and "waiting up to 2 s" in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert (
        len(errors) == 1 and f"is being changed by process {os.getpid()}, which did not finish within 2 s" in errors[0]
    )
    assert "Traceback" not in stderr and lib.paper("w1") is None

    with lib.store.locks.writer():  # held until the second writer says it is waiting, then released
        waiting = start_cli(tmp_path / "home", "ingest", str(source))
        said = ""
        while "waiting up to 600 s" not in said:
            line = waiting.stderr.readline()
            assert line, "the second writer ended without waiting"
            said += line
    _, rest = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, said + rest
    assert Assistant(home=tmp_path / "home").paper("w1") is not None


def test_threads_sharing_one_assistant_see_old_or_new_and_build_each_part_once(tmp_path: Path) -> None:
    """The app shares one Assistant between every browser session: searches in threads, an ingest in another."""
    lib = Assistant(home=seeded(tmp_path).settings.home)
    stores = []
    racers = [threading.Thread(target=lambda: stores.append(lib.store)) for _ in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len({id(store) for store in stores}) == 1

    old = visible(lib)
    extra = tmp_path / "extra.jsonl"
    extra.write_text("".join(json.dumps({"id": f"t{i}", "abstract": f"Threads learning number {i} about locks."}) + "\n"
                             for i in range(5)), encoding="utf-8")
    new = old | {f"t{i}" for i in range(5)}
    done, problems, seen = threading.Event(), [], []

    def searcher() -> None:
        while not done.is_set():
            try:
                ids = visible(lib)
                seen.append(ids in (old, new))
            except Exception as error:  # noqa: BLE001 - collected and reported by the test
                problems.append(error)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    lib.ingest([extra])
    lib.remove(sources=[extra])
    done.set()
    for thread in threads:
        thread.join()
    assert not problems and seen and all(seen)
    assert visible(lib) == old and lexical_rows(lib) == 16


def write_synthetic(store: Store, prefix: str, papers: int, chunks_each: int) -> None:
    """Papers with random unit vectors (no embedding model), written through the store's write protocol."""
    rng = np.random.default_rng(len(prefix))
    rows = []
    for i in range(papers):
        paper = Paper(paper_id=f"{prefix}{i}", title=f"{prefix} {i}", abstract=f"Synthetic paper {prefix} {i}.")
        chunks = [
            Chunk(f"{paper.paper_id}::{j}", paper.paper_id, j, f"text {j}", f"text {j}") for j in range(chunks_each)
        ]
        vectors = rng.normal(size=(chunks_each, 8)).astype(np.float32)
        rows.append((paper, chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)))
    with store.writing(), store.committing():
        store.write_papers(rows)


def test_a_long_lived_writer_keeps_what_other_processes_stored(tmp_path: Path) -> None:
    """Chroma's in-memory vector index does not see another process's writes; a stale one that saves itself
    dropped them from dense search for good (2,000 chunks lost in the attack run). A writer reopens first."""
    path = tmp_path / "home" / "chroma"
    here = Store(path, "synthetic")
    write_synthetic(here, "a", 10, 1)
    script = ("import sys; from pathlib import Path; from test_concurrency import write_synthetic; "
              "from assistant.index import Store; write_synthetic(Store(Path(sys.argv[1]), 'synthetic'), 'b', 300, 5)")
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, env=env, timeout=300)
    write_synthetic(here, "c", 300, 5)  # enough chunks for Chroma to save its vector index to disk
    count = ("import sys; from pathlib import Path; import numpy as np; from assistant.index import Store; "
             "s = Store(Path(sys.argv[1]), 'synthetic'); print(len(s.query_chunks(np.ones(8), 10_000)))")
    seen = subprocess.run([sys.executable, "-c", count, str(path)], check=True, env=env, capture_output=True,
                          text=True, timeout=300)
    assert int(seen.stdout.split()[-1]) == 10 + 1500 + 1500
