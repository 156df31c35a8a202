"""Small writes to a large library (issue 18: add or remove one paper in a million in under 5 s): their vectors stay
in the catalog's `fresh` table and their removals in the trash, so the writer never loads Chroma's index; searches
see them at once, in every process; the first writer that loads the index anyway moves them into Chroma.

The Store is made "large" with buffer_from_papers=0, and the bulk thresholds are lowered, so a few synthetic
papers take every path."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hostile import run_cli
from test_storage import synthetic_rows

from assistant.index import Store
from assistant.index import store as store_module
from assistant.index.catalog import SCHEMA_VERSION, Catalog


def large(home: Path, **kwargs) -> Store:
    return Store(home / "chroma", "synthetic", buffer_from_papers=0, **kwargs)


def ingest(store: Store, rows) -> None:
    with store.writing(), store.committing():
        store.write_papers(rows)


def remove(store: Store, paper_ids: list[str]) -> None:
    with store.writing(), store.committing():
        store.delete_papers(paper_ids)


def chroma_count(store: Store) -> int:
    return store.vectors.count("chunks") + store.vectors.count("papers")


def test_a_small_write_to_a_large_library_leaves_chroma_alone_and_is_found_at_once(tmp_path: Path) -> None:
    store = large(tmp_path / "home")
    rows = synthetic_rows("f", 6)
    ingest(store, rows)
    assert store._vectors is None  # the writer never opened Chroma, let alone loaded its index
    assert store.catalog.fresh_count() == 12  # 6 chunk vectors and 6 paper vectors
    with store.reading():
        for paper, _, vectors in rows:
            assert store.dense(vectors[0], 1)[0][0] == paper.paper_id
        assert store.best_passages(["f2"], rows[2][2][0]) == {"f2": rows[2][0].abstract}
        assert [p.paper_id for p, _ in store.similar_papers("f0", 5)] == [
            pid for pid, _, _, _ in store.dense(rows[0][2][0], 6)][1:]
    assert chroma_count(store) == 0
    reader = large(tmp_path / "home")  # another process's view: it reads the catalog's fresh vectors too
    with reader.reading():
        assert reader.dense(rows[4][2][0], 1)[0][0] == "f4"


def test_a_large_write_moves_fresh_vectors_into_chroma_and_readers_follow(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "FRESH_WRITE_MAX", 10)
    store = large(tmp_path / "home")
    first, second = synthetic_rows("a", 4), synthetic_rows("b", 8, seed=1)
    ingest(store, first)
    reader = large(tmp_path / "home")
    with reader.reading():  # the reader's Chroma client is open (and empty) before the move
        assert reader.dense(first[1][2][0], 1)[0][0] == "a1"
    ingest(store, second)  # 16 vectors > FRESH_WRITE_MAX: this writer loads Chroma and takes the fresh ones along
    assert store.catalog.fresh_count() == 0 and chroma_count(store) == 24
    with reader.reading():
        for paper, _, vectors in first + second:
            assert reader.dense(vectors[0], 1)[0][0] == paper.paper_id
        assert len(reader.dense(first[0][2][0], 12)) == 12  # every paper once: nothing lost, nothing twice


def test_a_removal_waits_in_the_trash_hidden_at_once_until_a_writer_loads_chroma(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    rows = synthetic_rows("r", 10)
    ingest(Store(home / "chroma", "synthetic"), rows)  # a small library: the vectors go straight to Chroma
    store = large(home)
    remove(store, ["r3"])
    assert store.catalog.trash_count() == 2 and chroma_count(store) == 20  # Chroma was not touched
    with store.reading():
        assert "r3" not in {pid for pid, *_ in store.dense(rows[3][2][0], 10)}
        assert len(store.dense(rows[3][2][0], 9)) == 9  # the trashed hit is made up for: still 9 papers
        assert "r3" not in {p.paper_id for p, _ in store.similar_papers("r0", 9)}
    monkeypatch.setattr(store_module, "TRASH_DEFER", 4)
    remove(store, ["r4", "r5"])  # the trash reaches TRASH_DEFER: this writer empties it into Chroma
    assert store.catalog.trash_count() == 0 and chroma_count(store) == 14


def test_removing_a_fresh_paper_never_touches_chroma(tmp_path: Path) -> None:
    store = large(tmp_path / "home")
    ingest(store, synthetic_rows("g", 3))
    remove(store, ["g1"])
    assert store._vectors is None and store.catalog.trash_count() == 0 and store.catalog.fresh_count() == 4
    with store.reading():
        assert store.paper_count() == 2 and {pid for pid, *_ in store.dense(np.ones(8, np.float32), 5)} == {"g0", "g2"}


def test_a_writer_killed_between_chroma_and_the_catalog_leaves_each_vector_found_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The move copies the fresh vectors into Chroma, then forgets them in one transaction: a crash between the two
    leaves them in both, which searches merge by id, and the next writer finishes the move."""
    monkeypatch.setattr(store_module, "FRESH_WRITE_MAX", 10)
    store = large(tmp_path / "home")
    first = synthetic_rows("k", 4)
    ingest(store, first)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as a SIGINT would, after Chroma took the vectors

    monkeypatch.setattr(Catalog, "forget_fresh", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(store, synthetic_rows("m", 8, seed=2))
    monkeypatch.undo()
    survivor = large(tmp_path / "home")
    assert survivor.catalog.fresh_count() == 8 and survivor.vectors.count("chunks") == 4  # in both places
    with survivor.reading():
        hits = survivor.dense(first[0][2][0], 10)
        assert sorted(pid for pid, *_ in hits) == ["k0", "k1", "k2", "k3"]  # the killed ingest published nothing
    monkeypatch.setattr(store_module, "FRESH_WRITE_MAX", 10)
    ingest(survivor, synthetic_rows("m", 8, seed=2))
    assert survivor.catalog.fresh_count() == 0
    with survivor.reading():
        assert len(survivor.dense(first[0][2][0], 20)) == 12


def test_a_catalog_of_schema_1_gains_the_fresh_table_on_open(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ingest(Store(home / "chroma", "synthetic"), synthetic_rows("v", 2))
    with sqlite3.connect(home / "library.sqlite3") as db:  # what the previous release wrote
        db.execute("DROP TABLE fresh")
        db.execute("PRAGMA user_version=1")
    store = large(home)
    assert store.catalog.schema_version() == SCHEMA_VERSION >= 3  # v2: the fresh table; v3: papers_vector index
    with sqlite3.connect(home / "library.sqlite3") as db:
        assert db.execute("SELECT 1 FROM sqlite_master WHERE name='papers_vector'").fetchone()
    ingest(store, synthetic_rows("w", 2, seed=3))
    with store.reading():
        assert store.paper_count() == 4 and store.catalog.fresh_count() == 4


def test_the_cli_adds_and_removes_papers_of_a_large_library_without_chroma_and_other_processes_see_it(
        seeded_copy: Path, tmp_path: Path) -> None:
    """The real model and CLI processes: one adds a paper and removes a seed paper, others search."""
    large_env = {"LITASSIST_BUFFER_WRITES_FROM": "0"}
    new = tmp_path / "new.jsonl"
    record = {"_id": "quokka-1", "title": "Quokka grazing under drought on Rottnest Island",
              "text": "Quokkas on Rottnest Island shift their grazing to succulents in drought."}
    new.write_text(json.dumps(record) + "\n")
    before = run_cli(seeded_copy, "search", "quokka grazing drought", "--json")
    assert before.returncode == 0, before.stderr
    victim = json.loads(run_cli(seeded_copy, "search", "federated learning clients", "--json").stdout)[0]["paper_id"]
    assert run_cli(seeded_copy, "ingest", str(new), **large_env).returncode == 0
    assert run_cli(seeded_copy, "remove", victim, **large_env).returncode == 0
    with contextlib.closing(sqlite3.connect(seeded_copy / "library.sqlite3")) as db:
        fresh = dict(db.execute("SELECT collection, count(*) FROM fresh GROUP BY collection").fetchall())
        trashed = db.execute("SELECT count(*) FROM trash").fetchone()[0]
    assert fresh["papers"] == 1 and fresh["chunks"] >= 1 and trashed >= 2  # neither reached Chroma
    found = json.loads(run_cli(seeded_copy, "search", "quokka grazing drought", "--json").stdout)
    assert found[0]["paper_id"] == "quokka-1"
    assert victim not in {hit["paper_id"] for hit in json.loads(
        run_cli(seeded_copy, "search", "federated learning clients", "--json").stdout)}


def test_a_writer_of_a_library_under_the_threshold_takes_the_fresh_vectors_into_chroma(tmp_path: Path) -> None:
    ingest(large(tmp_path / "home"), synthetic_rows("u", 3))  # written while the library counted as large
    small = Store(tmp_path / "home" / "chroma", "synthetic", buffer_from_papers=10**9)
    ingest(small, synthetic_rows("t", 2, seed=4))  # writes to Chroma, and nothing stays fresh for good
    assert small.catalog.fresh_count() == 0 and chroma_count(small) == 10
    with small.reading():
        assert len(small.dense(np.ones(8, np.float32), 10)) == 5


def test_a_catalog_of_schema_3_moves_its_postings_to_a_rowid_table_and_ranks_the_same(tmp_path: Path) -> None:
    """Schema 4 keeps postings in a rowid table behind small indexes (bm25.SCHEMA says why); the migration copies
    them, and lexical search ranks as before."""
    home = tmp_path / "home"
    store = Store(home / "chroma", "synthetic")
    ingest(store, synthetic_rows("p", 40))
    terms = [word.lower() for word in synthetic_rows("p", 1)[0][0].abstract.split()[:6]]
    with store.reading():
        before = store.lexical_search(terms, 20)
    store.catalog.close()
    with contextlib.closing(sqlite3.connect(home / "library.sqlite3")) as db, db:  # what schema 3 wrote
        db.execute("CREATE TABLE old (term TEXT NOT NULL, segment INTEGER NOT NULL, docs BLOB NOT NULL, tfs BLOB "
                   "NOT NULL, lengths BLOB NOT NULL, PRIMARY KEY (term, segment)) WITHOUT ROWID")
        db.execute("INSERT INTO old SELECT term, segment, docs, tfs, lengths FROM postings")
        db.execute("DROP TABLE postings")
        db.execute("ALTER TABLE old RENAME TO postings")
        db.execute("PRAGMA user_version=3")
    reopened = Store(home / "chroma", "synthetic")
    assert reopened.catalog.schema_version() == SCHEMA_VERSION >= 4
    with contextlib.closing(sqlite3.connect(home / "library.sqlite3")) as db:
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name='postings'").fetchone()
        assert "WITHOUT ROWID" not in sql
        assert {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE tbl_name='postings'")} == {
            "postings", "postings_term", "postings_segment"}
    with reopened.reading():
        assert before and reopened.lexical_search(terms, 20) == before
