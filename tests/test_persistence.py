"""Versioned files in the home: files written before schema versions (tests/fixtures/v0_home, made by the code of
commit 7bb3397) still load after migration, saved answers keep papers by reference, and a file from a newer
litassist is refused with one line, not rewritten."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

from assistant import Answer, ConversationsDamaged, Paper, StoreError
from assistant.conversations import FILE_NAME, MIGRATIONS, ConversationStore
from assistant.migrations import NewerFile, migrate_json
from assistant.topics import MAP_MIGRATIONS, SUMMARY_MIGRATIONS, ClusterCache

V0_HOME = Path(__file__).parent / "fixtures" / "v0_home"


def v0_answers() -> dict[int, Answer]:
    """The answers of the fixture as the old code saved them (whole, with paper copies), by turn id."""
    with sqlite3.connect(V0_HOME / FILE_NAME) as db:
        rows = db.execute("SELECT turn_id, answer FROM turns WHERE answer IS NOT NULL").fetchall()
    return {turn_id: Answer.model_validate_json(answer) for turn_id, answer in rows}


def old_library(answers: dict[int, Answer]) -> dict[str, Paper]:
    """The papers those answers copied: what the library held when they were saved."""
    return {e.paper.paper_id: e.paper for a in answers.values() for e in (*a.evidence, *a.citations)}


@pytest.fixture()
def v0_file(tmp_path: Path) -> Path:
    path = tmp_path / FILE_NAME
    shutil.copyfile(V0_HOME / FILE_NAME, path)
    return path


def test_a_v0_conversations_file_migrates_and_every_turn_loads_as_it_was(v0_file: Path) -> None:
    before = v0_answers()
    library = old_library(before)
    store = ConversationStore(v0_file, lambda ids: {i: library[i] for i in ids if i in library})
    conversations = {info.conversation_id: store.get(info.conversation_id) for info in store.list()}
    turns = {turn.turn_id: turn for c in conversations.values() for turn in c.turns}
    assert [turns[i].state for i in (1, 2, 3, 4)] == ["answered", "answered", "answered", "failed"]
    assert {i: turns[i].answer for i in before} == before  # with the library, exactly the answers saved
    assert turns[3].scope and turns[3].filters.paper_ids and turns[3].filters.year_min == 1990
    assert turns[4].reason == "Model error: test failure line."
    follow_up = conversations[next(c for c in conversations if len(conversations[c].turns) == 3)]
    assert follow_up.history() == [e for i in (1, 2) for e in before[i].history_entries()]
    with sqlite3.connect(v0_file) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        saved = [json.loads(a) for (a,) in db.execute("SELECT answer FROM turns WHERE answer IS NOT NULL")]
    assert all("paper" not in ref for a in saved for ref in (*a["citations"], *a["evidence"]))  # references only
    assert sum(map(len, map(json.dumps, saved))) < sum(len(a.model_dump_json()) for a in before.values()) / 1.5


def test_without_the_papers_in_the_library_a_saved_answer_names_them(v0_file: Path) -> None:
    before = v0_answers()
    turns = [t for info in ConversationStore(v0_file).list() for t in ConversationStore(v0_file).get(
        info.conversation_id).turns if t.answer]
    assert len(turns) == len(before)
    for turn in turns:
        old = before[turn.turn_id]
        assert [(c.number, c.paper_id, c.paper.title, c.spans) for c in turn.answer.citations] == [
            (c.number, c.paper_id, c.title, c.spans) for c in old.citations]
        assert [(e.number, e.paper.paper_id, e.paper.title, e.passage) for e in turn.answer.evidence] == [
            (e.number, e.paper.paper_id, e.paper.title, e.passage) for e in old.evidence]
        assert turn.answer.text == old.text and turn.answer.claims == old.claims


def test_a_changed_abstract_gets_its_spans_found_again_and_lost_ones_dropped(v0_file: Path) -> None:
    before = v0_answers()
    cited = next(c for a in before.values() for c in a.citations if c.spans)
    library = old_library(before)
    moved = {cited.paper_id: library[cited.paper_id].model_copy(
        update={"abstract": "A new first sentence. " + library[cited.paper_id].abstract})}
    store = ConversationStore(v0_file, lambda ids: {i: moved.get(i, library.get(i)) for i in ids if i in library})
    turn = next(t for info in store.list() for t in store.get(info.conversation_id).turns
                if t.answer and any(c.paper_id == cited.paper_id for c in t.answer.citations))
    again = next(c for c in turn.answer.citations if c.paper_id == cited.paper_id)
    assert [s.text for s in again.spans] == [s.text for s in cited.spans]
    assert all(again.paper.abstract[s.start:s.end] == s.text for s in again.spans)
    assert [s.start for s in again.spans] == [s.start + len("A new first sentence. ") for s in cited.spans]

    gone = {cited.paper_id: library[cited.paper_id].model_copy(update={"abstract": "Entirely different text."})}
    store = ConversationStore(v0_file, lambda ids: {i: gone.get(i, library.get(i)) for i in ids if i in library})
    turn = store.get(next(info.conversation_id for info in store.list() if info.answers == 2))
    assert all(not c.spans for t in turn.turns if t.answer for c in t.answer.citations if c.paper_id == cited.paper_id)


def test_a_conversations_file_from_a_newer_litassist_is_refused_in_one_line(v0_file: Path) -> None:
    with sqlite3.connect(v0_file) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    newer = f"schema version {len(MIGRATIONS) + 1}, this litassist knows up to {len(MIGRATIONS)}: upgrade"
    with pytest.raises(ConversationsDamaged, match=newer):
        ConversationStore(v0_file).list()
    with sqlite3.connect(v0_file) as db:  # untouched
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1


def test_a_new_conversations_file_starts_at_the_newest_version(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / FILE_NAME)
    store.create("x")
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert "worker" in {row[1] for row in db.execute("PRAGMA table_info(turns)")}


def as_written(loaded, raw):
    """`loaded` (a model dump) with only the keys an old file had, at every depth."""
    if isinstance(raw, dict):
        return {key: as_written(loaded[key], value) for key, value in raw.items()}
    if isinstance(raw, list):
        return [as_written(item, value) for item, value in zip(loaded, raw)]
    return loaded


def test_v0_cluster_cache_files_load_and_are_written_with_their_version(tmp_path: Path) -> None:
    shutil.copytree(V0_HOME / "clusters", tmp_path / "clusters")
    cache = ClusterCache(tmp_path / "clusters")
    cluster_map = cache.load_map()
    raw_map = json.loads((V0_HOME / "clusters" / "map.json").read_text())
    assert "schema_version" not in raw_map and cluster_map.unclustered is not None
    groups = [c.model_dump(mode="json") for c in cluster_map.groups()]
    assert as_written(groups, raw_map["clusters"]) == raw_map.pop("clusters")  # fields added since: their defaults
    assert as_written(cluster_map.model_dump(mode="json", exclude={"topics", "unclustered"}), raw_map) == raw_map
    assert cluster_map.clustered_papers == 0  # an old map has no centroids: the next change recomputes it
    key = next((V0_HOME / "clusters" / "summaries").glob("*.json")).stem
    summary = cache.load_summary(key)
    assert summary is not None and summary.cluster_id in {c.cluster_id for c in cluster_map.every_cluster()}
    cache.save_map(cluster_map)
    cache.save_summary(key, summary)
    written = json.loads((tmp_path / "clusters" / "map.json").read_text())
    assert written["schema_version"] == len(MAP_MIGRATIONS)
    assert json.loads((tmp_path / "clusters" / "summaries" / f"{key}.json").read_text())["schema_version"] == len(
        SUMMARY_MIGRATIONS)
    assert ClusterCache(tmp_path / "clusters").load_map() == cluster_map


def test_a_cluster_map_from_a_newer_litassist_is_recomputed_not_read(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "clusters"
    folder.mkdir()
    newer = {"schema_version": len(MAP_MIGRATIONS) + 1, **json.loads((V0_HOME / "clusters" / "map.json").read_text())}
    (folder / "map.json").write_text(json.dumps(newer))
    with caplog.at_level(logging.WARNING, logger="litassist.topics"):
        assert ClusterCache(folder).load_map() is None
    assert f"schema version {len(MAP_MIGRATIONS) + 1}, this litassist knows up to {len(MAP_MIGRATIONS)}" in caplog.text


def test_json_migrations_run_in_order_from_the_file_version() -> None:
    steps = [lambda d: {**d, "a": 1}, lambda d: {**d, "b": d["a"] + 1}]
    assert migrate_json({"x": 0}, steps, "f") == {"x": 0, "a": 1, "b": 2}
    assert migrate_json({"schema_version": 1, "a": 5}, steps, "f") == {"a": 5, "b": 6}
    assert migrate_json({"schema_version": 2, "a": 5}, steps, "f") == {"a": 5}
    with pytest.raises(NewerFile):
        migrate_json({"schema_version": 3}, steps, "f")
    with pytest.raises(ValueError, match="f: expected a JSON object"):
        migrate_json([1], steps, "f")


def test_sources_json_carries_its_version_and_an_old_one_still_reads(tmp_path: Path) -> None:
    from test_storage import synthetic_rows

    from assistant.index import SourceRecord, Store, read_manifest
    from assistant.index.store import MANIFEST_VERSION

    home = tmp_path / "home"
    store = Store(home / "chroma", "synthetic")
    record = SourceRecord("a.jsonl", "0" * 64, "jsonl", 2)
    with store.writing(), store.committing():
        store.write_papers(synthetic_rows("s", 2))
        store.set_sources([record])
    written = json.loads((home / "sources.json").read_text())
    assert written["schema_version"] == MANIFEST_VERSION and read_manifest(home) == [record]
    (home / "sources.json").write_text(json.dumps({"sources": written["sources"]}))  # before versions: v0
    assert read_manifest(home) == [record]
    (home / "sources.json").write_text(json.dumps({"schema_version": MANIFEST_VERSION + 1, "sources": []}))
    with pytest.raises(StoreError, match="newer litassist"):
        read_manifest(home)
