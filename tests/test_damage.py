"""A damaged home: derived files heal with one logged line; a damaged store says what to do; backup and restore."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile import empty, garble, garble_middle, garble_table, header, run_cli, truncate
from seeds import seed_paper_count
from typer.testing import CliRunner

from assistant import Assistant
from assistant.api import DEMO_CORPUS as SEEDS
from assistant.cli import app

runner = CliRunner()


def test_damaged_cluster_cache_is_recomputed(seeded_copy: Path) -> None:
    lib = Assistant(home=seeded_copy)
    first = lib.clusters()
    summary = lib.cluster_summary(first.topics[0].cluster_id)
    garble(seeded_copy / "clusters" / "map.json")
    for cached in (seeded_copy / "clusters" / "summaries").iterdir():
        garble(cached)
    again = Assistant(home=seeded_copy)
    assert [c.paper_ids for c in again.clusters().topics] == [c.paper_ids for c in first.topics]
    assert again.cluster_summary(first.topics[0].cluster_id).text == summary.text
    result = runner.invoke(app, ["--home", str(seeded_copy), "clusters"])
    assert result.exit_code == 0 and "Traceback" not in result.output


def settle(database: Path) -> None:
    """Checkpoint the copied catalog's write-ahead log into it, so that the damage is the file's only state. A page
    the log still holds (page 1 after an earlier test's write in the shared seeded home) is read from the log: a
    garbled header or a truncated file then served every query (exit 0), depending on which tests ran before."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@pytest.mark.slow
@pytest.mark.parametrize("damage", [truncate, header, empty, garble_table],
                         ids=["truncated", "garbled header", "zero length", "damaged pages"])
def test_damaged_catalog_is_one_line_saying_what_to_do(seeded_copy: Path, damage: Callable[[Path], None]) -> None:
    """Damaged pages are found only by a command that reads them: it fails with the line, the others work."""
    database = seeded_copy / "library.sqlite3"
    settle(database)
    damage(database)
    failed = 0
    for command in (["search", "graph"], ["papers"], ["stats"], ["ingest", str(SEEDS)]):
        result = run_cli(seeded_copy, *command, timeout=300)
        assert "Traceback" not in result.stderr + result.stdout, (command, result.stderr)
        assert result.returncode == 1 or damage is garble_table, (command, result.stderr)
        if result.returncode:
            failed += 1
            (line,) = [line for line in result.stderr.strip().splitlines() if not line.startswith("INFO")]
            assert line.startswith(f"error: {database}") and "litassist backup" in line and "litassist sources" in line
    assert failed

    listed = run_cli(seeded_copy, "sources", "--json", timeout=300)  # from sources.json when the catalog fails
    assert listed.returncode == 0 and ("last completed change" in listed.stderr or damage is garble_table)
    files = {Path(json.loads(line)["file"]).name for line in listed.stdout.splitlines()}
    assert files == {p.name for p in SEEDS.iterdir()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage", [header, empty, garble_middle], ids=["garbled header", "zero length", "damaged pages"]
)
def test_damaged_vector_index_names_it_and_keeps_the_papers(seeded_copy: Path, damage: Callable[[Path], None]) -> None:
    """Interior pages damaged under an intact header made Chroma panic (a Rust PanicException, a BaseException
    that `except Exception` misses). The papers are safe in the catalog: the line says so and how to re-embed."""
    vectors = seeded_copy / "chroma" / "chroma.sqlite3"
    damage(vectors)
    result = run_cli(seeded_copy, "search", "graph", timeout=300)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 1 or damage is garble_middle  # pages Chroma never reads do not stop a search
    if result.returncode:
        (line,) = result.stderr.strip().splitlines()
        assert str(vectors) in line and "litassist reindex" in line, line
    papers = run_cli(seeded_copy, "papers", timeout=300)  # the catalog alone still lists the library
    assert papers.returncode == 0 and len(papers.stdout.splitlines()) == seed_paper_count()


def test_backup_is_a_home_that_restores(seeded_copy: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    saved = Assistant(home=seeded_copy).start_conversation()
    Assistant(home=seeded_copy).ask("What is CMFQ?", conversation=saved.conversation_id)
    result = runner.invoke(app, ["--home", str(seeded_copy), "backup", str(backup)])
    assert result.exit_code == 0, result.output
    assert (backup / "library.sqlite3").exists() and (backup / "chroma" / "chroma.sqlite3").exists()
    assert (backup / "sources.json").exists() and not (backup / "write.lock").exists()  # locks stay

    shutil.rmtree(seeded_copy)  # the library is lost...
    restored = Assistant(home=backup)  # ...and the backup is a home
    assert restored.stats().papers == seed_paper_count()
    assert restored.search("CMFQ", k=1)[0].title.startswith("Causal Mean Field")
    kept = restored.conversation(saved.conversation_id)  # saved conversations come back with the library
    assert [turn.question for turn in kept.turns] == ["What is CMFQ?"]

    again = runner.invoke(app, ["--home", str(backup), "backup", str(backup)])
    assert again.exit_code == 2 and "already exists and is not empty" in again.output


def test_vector_damage_found_while_searching_is_one_line(seeded_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some damage lets Chroma open the store and fails later with an "invalid argument" error (seen in an attack
    run: "Failed to pull logs from the log store"). A stand-in raises that message here."""
    from chromadb.api.models.Collection import Collection
    from chromadb.errors import InvalidArgumentError

    from assistant.index import StoreError

    lib = Assistant(home=seeded_copy)
    assert lib.search("CMFQ", k=1)  # opened while the file was still whole

    def damaged(*args: object, **kwargs: object) -> None:
        raise InvalidArgumentError("Error executing plan: Error sending backfill request to compactor: "
                                   "Failed to pull logs from the log store")

    monkeypatch.setattr(Collection, "query", damaged)
    with pytest.raises(StoreError, match=r"chroma\.sqlite3 cannot be read .*litassist reindex"):
        lib.search("CMFQ", k=1)
    assert len(lib.papers()) == seed_paper_count()  # the catalog is not affected


def test_backup_refuses_a_damaged_catalog(seeded_copy: Path, tmp_path: Path) -> None:
    """`backup` copied a store with damaged pages without noticing; now each copy is checked page by page."""
    garble_table(seeded_copy / "library.sqlite3")
    result = run_cli(seeded_copy, "backup", str(tmp_path / "backup"), timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "library.sqlite3" in result.stderr and not (tmp_path / "backup").exists()
