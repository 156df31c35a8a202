"""A damaged home: derived files heal with one logged line; a damaged store says what to do; backup and restore."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile import DAMAGE, empty, garble, header, run_cli, truncate
from typer.testing import CliRunner

from assistant import Assistant
from assistant.api import DEMO_CORPUS as SEEDS
from assistant.cli import app

runner = CliRunner()


DERIVED_DAMAGE = ("garbled", "truncated", "empty")


def derived_files(home: Path) -> list[Path]:
    return [home / "lexical" / "rows.json", *sorted((home / "lexical" / "bm25").iterdir())]


@pytest.mark.parametrize("kind", sorted(DERIVED_DAMAGE))
def test_damaged_lexical_files_are_rebuilt_with_one_line(seeded_copy: Path, kind: str) -> None:
    for target in derived_files(seeded_copy):
        DAMAGE[kind](target)
        result = runner.invoke(app, ["--home", str(seeded_copy), "search", "CMFQ", "--mode", "lexical", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)[0]["title"].startswith("Causal Mean Field"), target
        said = " ".join(result.stderr.split())  # the log handler may wrap a message at the terminal's width
        assert said.count("is damaged") == 1 and "rebuilding it" in said and "Traceback" not in said, said


def test_ingest_over_damaged_derived_files_stores_and_reports(seeded_copy: Path, tmp_path: Path) -> None:
    """One attack ingest stored its paper and then crashed on a garbled rows.json."""
    garble(seeded_copy / "lexical" / "rows.json")
    source = tmp_path / "new.jsonl"
    source.write_text(json.dumps({"id": "quokka", "title": "Quokka gradients",
                                  "abstract": "We study quokka gradient descent on sparse graphs."}) + "\n")
    result = runner.invoke(app, ["--home", str(seeded_copy), "ingest", str(source), "--json"])
    assert result.exit_code == 0, result.output
    assert Assistant(home=seeded_copy).search("quokka", k=1, mode="lexical")[0].paper_id == "quokka"


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


@pytest.mark.slow
@pytest.mark.parametrize("damage", [truncate, header, empty], ids=["truncated", "garbled header", "zero length"])
def test_damaged_store_is_one_line_saying_what_to_do(seeded_copy: Path, damage: Callable[[Path], None]) -> None:
    database = seeded_copy / "chroma" / "chroma.sqlite3"
    damage(database)
    for command in (["search", "graph"], ["stats"], ["ingest", str(SEEDS)]):
        result = run_cli(seeded_copy, *command, timeout=300)
        assert result.returncode == 1, (command, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: {database}") and "litassist backup" in line and "litassist sources" in line

    listed = run_cli(seeded_copy, "sources", "--json", timeout=300)
    assert listed.returncode == 0 and "last completed change" in listed.stderr
    files = {Path(json.loads(line)["file"]).name for line in listed.stdout.splitlines()}
    assert files == {p.name for p in SEEDS.iterdir()}


def test_backup_is_a_home_that_restores(seeded_copy: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    saved = Assistant(home=seeded_copy).start_conversation()
    Assistant(home=seeded_copy).ask("What is CMFQ?", conversation=saved.conversation_id)
    result = runner.invoke(app, ["--home", str(seeded_copy), "backup", str(backup)])
    assert result.exit_code == 0, result.output
    assert (backup / "chroma" / "chroma.sqlite3").exists() and (backup / "sources.json").exists()
    assert not (backup / "write.lock").exists() and not (backup / "lexical").exists()  # locks stay, derived files rebuild

    shutil.rmtree(seeded_copy / "chroma")  # the library is lost...
    restored = Assistant(home=backup)  # ...and the backup is a home
    assert restored.stats().papers == 179
    assert restored.search("CMFQ", k=1)[0].title.startswith("Causal Mean Field")
    kept = restored.conversation(saved.conversation_id)  # saved conversations come back with the library
    assert [turn.question for turn in kept.turns] == ["What is CMFQ?"]

    again = runner.invoke(app, ["--home", str(backup), "backup", str(backup)])
    assert again.exit_code == 2 and "already exists and is not empty" in again.output


def test_damage_found_while_reading_is_one_line_and_sources_fall_back(
    seeded_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some damage lets Chroma open the store and fails later; Chroma then raises an "invalid argument" error
    (seen in the attack run: "Failed to pull logs from the log store"). A stand-in raises that message here."""
    from chromadb.api.models.Collection import Collection
    from chromadb.errors import InvalidArgumentError

    from assistant.index import StoreError

    lib = Assistant(home=seeded_copy)
    assert lib.store.paper_count() == 179  # opened while the file was still whole

    def damaged(*args: object, **kwargs: object) -> None:
        raise InvalidArgumentError("Error executing plan: Error sending backfill request to compactor: "
                                   "Failed to pull logs from the log store")

    monkeypatch.setattr(Collection, "get", damaged)
    with pytest.raises(StoreError, match=r"chroma\.sqlite3 cannot be read .* \(`litassist sources` lists them\)"):
        lib.papers()
    records, problem = lib.sources()
    assert {Path(r.file).name for r in records} == {p.name for p in SEEDS.iterdir()}
    assert problem and "Failed to pull logs" in problem
