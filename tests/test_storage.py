"""The store's guarantees (issue 18): changes cost what they change, staged papers stay hidden, a killed writer
(ingest or remove) publishes all or nothing, ids that collide across files never merge, homes of the layout
before the catalog migrate without re-embedding, and a home in the way of litassist's own files says so."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hostile import run_cli, start_cli
from seeds import seed_paper_count

from assistant import Assistant
from assistant.api import DEMO_CORPUS as SEEDS
from assistant.corpus import Paper, parse_file
from assistant.index import Chunk, Store, StoreError
from assistant.index.catalog import Catalog
from assistant.index.store import describe_failure


def unit(rng: np.random.Generator, rows: int, dims: int = 8) -> np.ndarray:
    vectors = rng.normal(size=(rows, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_rows(prefix: str, papers: int, seed: int = 0) -> list[tuple[Paper, list[Chunk], np.ndarray]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(papers):
        paper = Paper(
            paper_id=f"{prefix}{i}", title=f"{prefix} paper {i}", abstract=f"Synthetic abstract {prefix} {i}."
        )
        rows.append((paper, [Chunk(f"{paper.paper_id}::0", paper.paper_id, 0, paper.abstract, paper.abstract)],
                     unit(rng, 1)))
    return rows


def test_staged_papers_are_invisible_until_the_commit_and_gone_if_it_never_comes(tmp_path: Path) -> None:
    store = Store(tmp_path / "home" / "chroma", "synthetic")
    rows = synthetic_rows("s", 5)
    probe = rows[0][2][0]
    with store.writing():
        store.write_papers(rows)
        assert store.vectors.count("chunks") == 5  # the vectors are in Chroma...
        with store.reading():
            assert store.paper_count() == 0 and store.dense(probe, 5) == []  # ...but no search counts them
            assert store.lexical_search(["synthet"], 5) == []
    # the writer left without committing: its rows and vectors are dropped
    assert store.vectors.count("chunks") == 0 and store.paper_count() == 0
    with store.writing(), store.committing():
        store.write_papers(rows)
    with store.reading():
        assert store.paper_count() == 5 and store.dense(probe, 1)[0][0] == "s0"
        assert {pid for pid, _ in store.lexical_search(["synthet"], 10)} == {f"s{i}" for i in range(5)}


def test_ingest_and_remove_never_read_the_whole_library(seeded_copy: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding one paper to 50k took 48 s: every ingest read every paper. Now planning asks only about what the
    change touches; reading every paper during an ingest or a removal fails this test."""
    def everything(self: Catalog) -> None:
        raise AssertionError("the whole library was read")

    monkeypatch.setattr(Catalog, "all_papers", everything)
    monkeypatch.setattr(Catalog, "paper_vectors", everything)
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"id": "quokka", "title": "Quokka gradients",
                               "abstract": "We study quokka gradient descent on sparse graphs."}) + "\n")
    lib = Assistant(home=seeded_copy)
    assert lib.ingest([one]).new == 1
    assert lib.search("quokka gradient", k=1)[0].paper_id == "quokka"
    assert lib.remove(["quokka"]).removed == ["quokka"]
    assert lib.remove(sources=[SEEDS / "guo-zhenyu-author-page.txt"]).removed
    assert lib.stats().papers == 169


ABSTRACTS = {
    "vitamin": "Vitamin D supplementation lowered fracture rates among elderly women in a randomized cohort {i}.",
    "exercise": "Aerobic training improved memory scores of sedentary adults, measured by recall tasks, group {i}.",
}


def beir_file(path: Path, topic: str) -> Path:
    rows = [{"_id": str(i), "title": f"{topic.title()} study {i}", "text": ABSTRACTS[topic].format(i=i)}
            for i in range(1, 4)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_ids_that_collide_across_files_are_reported_never_merged(tmp_path: Path) -> None:
    """Two BEIR-style files both number from 1: paper 1 kept A's title with B's abstract, and A's abstract was
    lost. Now B's papers get new ids, one warning line says so, and removing B leaves A as it was."""
    a, b = beir_file(tmp_path / "a.jsonl", "vitamin"), beir_file(tmp_path / "b.jsonl", "exercise")
    lib = Assistant(home=tmp_path / "home")
    lib.ingest([a])
    report = lib.ingest([b])
    assert report.new == 3 and report.merged_duplicates == 0
    (warning,) = [w for w in report.warnings if "other files' different papers already use" in w]
    assert str(b) in warning and "'1'" in warning
    assert lib.paper("1").title == "Vitamin study 1" and "Vitamin D" in lib.paper("1").abstract
    assert len(lib.papers()) == 6
    lib.remove(sources=[b])
    assert sorted(p.abstract for p in lib.papers()) == [ABSTRACTS["vitamin"].format(i=i) for i in range(1, 4)]
    assert all({Path(s.file).name for s in p.sources} == {"a.jsonl"} for p in lib.papers())
    assert lib.ingest([a]).files_unchanged == 1


def write_many(path: Path, n: int) -> Path:
    rows = [{"id": f"k{i}", "title": f"Kill test paper {i}",
             "abstract": f"Paper {i} studies interrupted writes of sparse graph partitioning number {i}. " * 3}
            for i in range(n)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def wait_for(proc: object, text: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    for line in proc.stderr:  # type: ignore[attr-defined]
        if text in line:
            return
        assert time.monotonic() < deadline, f"no {text!r} within {timeout} s"
    raise AssertionError(f"the process ended before {text!r}")


def consistent(home: Path) -> tuple[int, int]:
    """(papers, chunks) after a writer died; checks the catalog and the vector index agree once the next writer
    has cleaned up (no vector left that no paper lists)."""
    lib = Assistant(home=home)
    lib.remove(["no-such-paper"])  # any writer finishes a dead one's work
    stats = lib.stats()
    assert lib.store.vectors.count("chunks") == stats.chunks and lib.store.vectors.count("papers") == stats.papers
    return stats.papers, stats.chunks


@pytest.mark.slow
def test_a_killed_ingest_publishes_nothing_and_the_next_one_resumes(tmp_path: Path) -> None:
    source = write_many(tmp_path / "many.jsonl", 400)
    home = tmp_path / "home"
    writer = start_cli(home, "-v", "ingest", str(source))
    wait_for(writer, "embedded and stored")
    wait_for(writer, "embedded and stored")  # at least two batches stored, not published
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=60)
    lib = Assistant(home=home)
    assert lib.stats().papers == 0 and lib.search("interrupted writes", k=3, mode="lexical") == []
    report = lib.ingest([source])
    assert report.new == 400
    assert report.chunks_embedded < 400  # the vectors the killed run stored were taken over, not embedded again
    assert consistent(home)[0] == 400
    assert lib.search("interrupted writes of sparse graph partitioning number 7", k=1)[0].paper_id == "k7"


@pytest.mark.slow
def test_a_killed_remove_is_all_or_nothing(seeded_copy: Path) -> None:
    """A SIGKILL during `remove` published half a removal (620 of 889 papers left without chunks) in 2 of 9 tries."""
    page = SEEDS / "daily-papers-oct-28.txt"  # a seed page that exists (the name before named none: none was removed)
    whole, without_page = seed_paper_count(), seed_paper_count() - len(parse_file(page).result.papers)
    outcomes = set()
    for delay in (0.3, 0.8, 1.5, 2.5, 4.0):
        remover = start_cli(seeded_copy, "remove", "--source", str(page))
        time.sleep(delay)
        remover.send_signal(signal.SIGKILL)
        remover.wait(timeout=60)
        papers, _ = consistent(seeded_copy)
        assert papers in (whole, without_page), papers
        outcomes.add(papers)
        lib = Assistant(home=seeded_copy)
        lexical = {h.paper_id for h in lib.search("learning", k=500, mode="lexical")}
        dense = {h.paper_id for h in lib.search("learning", k=500, mode="dense")}
        assert lexical <= {p.paper_id for p in lib.papers()} and len(dense) == papers
        if papers != whole:
            break
    assert outcomes  # every outcome seen was whole


CODE_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]


def old_layout_home(home: Path, papers: int = 6) -> list[Paper]:
    """A home as litassist wrote it before the catalog (layout 1: records, passages and source hashes in Chroma)."""
    import chromadb

    client = chromadb.PersistentClient(
        path=str(home / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False)
    )
    config = {"hnsw": {"space": "cosine"}}
    meta = {"embedding_model": "synthetic", "version": "v-old", "chunk_tokens": 256, "pending": "dead"}
    paper_col = client.get_or_create_collection("papers", embedding_function=None, configuration=config, metadata=meta)
    chunk_col = client.get_or_create_collection("chunks", embedding_function=None, configuration=config,
                                                metadata={"embedding_model": "synthetic"})
    source_col = client.get_or_create_collection("sources", embedding_function=None)
    rng = np.random.default_rng(1)
    made = []
    for i in range(papers):
        paper = Paper(
            paper_id=f"old{i}",
            title=f"Migrated paper {i}",
            abstract=f"Migrated paper about {CODE_WORDS[i]}.",
            sources=[{"file": "/data/old.jsonl", "format": "jsonl", "position": i}],
        )
        vectors = unit(rng, 2)
        chunk_col.upsert(ids=[f"old{i}::0", f"old{i}::1"], embeddings=list(vectors),
                         documents=[f"Passage A {i}", f"Passage B {i}"],
                         metadatas=[{"paper_id": paper.paper_id, "title": paper.title, "position": j, "txn": "t-old"}
                                    for j in (0, 1)])
        paper_col.upsert(
            ids=[paper.paper_id],
            embeddings=[vectors.mean(axis=0)],
            documents=[paper.abstract],
            metadatas=[
                {
                    "paper_id": paper.paper_id,
                    "title": paper.title,
                    "record": paper.model_dump_json(),
                    "content_key": paper.content_key(),
                    "n_chunks": 2,
                    "txn": "t-old",
                }
            ],
        )
        made.append(paper)
    # layout 1 stamped every entry with its write's token; the library's `pending` names the unfinished one
    chunk_col.upsert(ids=["ghost::0"], embeddings=[unit(rng, 1)[0]], documents=["ghost"],
                     metadatas=[{"paper_id": "ghost", "position": 0, "txn": "dead"}])
    source_col.upsert(ids=["/data/old.jsonl"], embeddings=[[0.0]],
                      metadatas=[{"sha256": "ab" * 32, "format": "jsonl", "papers": papers}])
    return made


def test_a_home_of_the_layout_before_the_catalog_migrates_without_embedding(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "home"
    made = old_layout_home(home)
    store = Store(home / "chroma", "synthetic")
    assert any("migrated" in record.getMessage() and "nothing re-embedded" in record.getMessage()
               for record in caplog.records)
    assert sorted(sp.paper.paper_id for sp in store.all_papers()) == [p.paper_id for p in made]
    assert store.source_hash("/data/old.jsonl") == "ab" * 32 and store.chunk_count() == 12
    assert store.chunk_texts(["old3::1"]) == {"old3::1": "Passage B 3"}
    with store.reading():
        hits = store.lexical_search(["echo"], 3)
        assert hits[0][0] == "old4"
        vector = store.vectors.embeddings("chunks", ["old2::0"])["old2::0"]
        assert store.dense(vector, 1)[0][:3] == ("old2", pytest.approx(1.0, abs=1e-5), "old2::0")
    assert store.vectors.count("chunks") == 12  # the unfinished write's vector is gone
    assert store.similar_papers("old0", 2)  # paper-level vectors carried over
    again = Store(home / "chroma", "synthetic")  # a second open does not migrate again
    assert again.paper_count() == 6


def test_litassist_files_in_the_way_are_one_line_and_the_library_is_unaffected(seeded_copy: Path) -> None:
    (seeded_copy / "write.lock").unlink(missing_ok=True)
    (seeded_copy / "write.lock").mkdir()
    result = run_cli(seeded_copy, "remove", "no-such-paper", timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "write.lock" in line and "the library itself is not affected" in line
    (seeded_copy / "write.lock").rmdir()
    assert run_cli(seeded_copy, "stats", timeout=300).returncode == 0


def test_a_full_disk_is_named_as_such(tmp_path: Path) -> None:
    line = describe_failure(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    assert line is not None and "is full" in str(line) and "nothing that was stored is lost" in str(line)
    store = Store(tmp_path / "home" / "chroma", "synthetic")
    failure = store._catalog_failure(sqlite3.OperationalError("database or disk is full"))
    assert "is full" in str(failure) and "restore" not in str(failure)


def test_a_damaged_catalog_does_not_open(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Store(home / "chroma", "synthetic")
    (home / "library.sqlite3").write_bytes(b"not sqlite at all" * 10)
    with pytest.raises(StoreError, match=r"library\.sqlite3 is not a SQLite database .*litassist backup"):
        Store(home / "chroma", "synthetic")


def test_reindex_rebuilds_a_lost_vector_index_from_the_catalog(tmp_path: Path) -> None:
    page = tmp_path / "page.txt"
    page.write_text((SEEDS / "paper-page-sparse-training-theory.txt").read_text(encoding="utf-8"), encoding="utf-8")
    home = tmp_path / "home"
    lib = Assistant(home=home)
    lib.ingest([page])
    before = [h.paper_id for h in lib.search("sparse training theory", k=3, mode="dense")]
    (home / "chroma").rename(tmp_path / "chroma-damaged")  # what the damage message tells the user to do
    page.unlink()  # the sources are not needed: the catalog has every passage
    result = run_cli(home, "reindex", "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["papers"] == 6
    again = Assistant(home=home)
    assert [h.paper_id for h in again.search("sparse training theory", k=3, mode="dense")] == before
    assert again.store.vectors.count("chunks") == again.stats().chunks


LAYOUT_1_COMMIT = "242e57a"  # the last commit whose store kept everything in Chroma


@pytest.mark.slow
def test_a_home_made_by_the_previous_version_opens_migrated_with_nothing_embedded(tmp_path: Path) -> None:
    """The real thing: the previous version's code (from this repository's history) builds a home; this version
    opens it, migrates it in place and finds the same papers by both searches without embedding anything."""
    repo = Path(__file__).resolve().parents[1]
    old = tmp_path / "old"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", LAYOUT_1_COMMIT, "assistant"], capture_output=True,
                             timeout=120, check=False)
    if archive.returncode:
        pytest.skip(f"commit {LAYOUT_1_COMMIT} is not in this clone's history")
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True, timeout=120)
    source = beir_file(tmp_path / "a.jsonl", "vitamin")
    home = tmp_path / "home"
    built = subprocess.run([sys.executable, "-c", "from assistant.cli import run; run()", "--home", str(home),
                            "ingest", str(source)], capture_output=True, text=True, timeout=600, check=False,
                           env={**os.environ, "PYTHONPATH": str(old)}, cwd=old)  # cwd: `-c` puts it first on the path
    assert built.returncode == 0, built.stderr
    assert not (home / "library.sqlite3").exists()

    lib = Assistant(home=home)
    before = lib.store.vectors.count("chunks")
    assert sorted(p.paper_id for p in lib.papers()) == ["1", "2", "3"]
    assert (home / "library.sqlite3").exists() and not (home / "lexical").exists()
    assert {h.paper_id for h in lib.search("vitamin fracture", k=5, mode="lexical")} == {"1", "2", "3"}
    assert lib.search("vitamin D supplementation and fractures", k=3, mode="dense")
    assert lib.ingest([source]).files_unchanged == 1  # its source hashes came along
    assert lib.store.vectors.count("chunks") == before == lib.stats().chunks  # nothing embedded again


def test_a_commit_is_seen_by_other_processes_after_new_threads_and_stores_open_the_catalog(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it. A check that read the
    catalog's header by hand, at each thread's first connection, did that; then another process that opened and
    closed the catalog believed itself the last one, checkpointed and deleted the WAL, and this process's next
    commit went into the deleted file: the app said "Deleted 2 papers" and no other process ever saw it."""
    import threading

    home = tmp_path / "home"
    store = Store(home / "chroma", "synthetic")
    with store.writing(), store.committing():
        store.write_papers(synthetic_rows("lock", 4))
    store.paper_count()  # this thread's connection is open
    opened = threading.Thread(target=store.paper_count)  # a new thread's first connection
    opened.start()
    opened.join()
    Store(home / "chroma", "synthetic").paper_count()  # a second Store on the home, in this process

    def count_elsewhere() -> int:
        code = (f"import sqlite3; db = sqlite3.connect({str(home / 'library.sqlite3')!r}); "
                "print(db.execute('SELECT count(*) FROM papers WHERE txn IS NULL').fetchone()[0]); db.close()")
        return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)

    assert count_elsewhere() == 4  # another process opens, reads and closes the catalog
    with store.writing(), store.committing():
        store.delete_papers(["lock0"])
    assert count_elsewhere() == 3
