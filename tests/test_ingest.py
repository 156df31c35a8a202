"""Ingest into a real on-disk Chroma store: counts, idempotence, updates, duplicates, crashes, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from seeds import seed_paper_count
from typer.testing import CliRunner

from assistant import Assistant
from assistant.api import DEMO_CORPUS as SEEDS
from assistant.cli import app
from assistant.index import chunk_paper, count_tokens

SMALL = ["arxiv-abstracts.txt", "paper-page-sparse-training-theory.txt"]  # 10 + 6 papers: cheap to embed
runner = CliRunner()


def small_corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in SMALL:
        shutil.copy(SEEDS / name, folder / name)
    return folder


def chunk_ids(lib: Assistant) -> set[str]:
    """The chunk vectors Chroma holds (every one must be a chunk the catalog lists: none left behind)."""
    return set(lib.store.vectors.all_ids("chunks"))


def test_seed_corpus_fully_indexed(seeded_home: Path) -> None:
    lib = Assistant(home=seeded_home)
    stats = lib.stats()
    seeds = seed_paper_count()
    assert (stats.papers, stats.sources) == (seeds, len(list(SEEDS.glob("*.txt"))))
    assert sum(stats.papers_by_format.values()) == seeds
    assert set(stats.papers_by_format) == {"author-page", "daily-papers", "abstract-lines", "paper-page"}
    assert lib.store.vectors.count("papers") == seeds  # one paper-level vector per paper
    ids = chunk_ids(lib)
    assert stats.chunks == len(ids) > seeds
    assert {i.split("::")[0] for i in ids} == {p.paper_id for p in lib.papers()}


def test_chunks_fit_the_embedding_model(seeded_home: Path) -> None:
    lib = Assistant(home=seeded_home)
    for paper in lib.papers():
        for chunk in chunk_paper(paper, lib.settings.chunk_tokens):
            assert count_tokens(chunk.embed_text) <= lib.settings.chunk_tokens
            assert lib.embedder.count_word_pieces(chunk.embed_text) <= 256  # counted before truncation
            if not paper.title_derived:
                assert chunk.embed_text.startswith(paper.title)


def test_reingest_unchanged_files_embeds_nothing(seeded_copy: Path) -> None:
    lib = Assistant(home=seeded_copy)
    before = chunk_ids(lib)
    report = lib.ingest([SEEDS])
    assert (report.files_unchanged, report.chunks_embedded, report.new) == (5, 0, 0)
    assert chunk_ids(lib) == before and lib.stats().papers == seed_paper_count()


def test_a_folder_holding_the_home_is_ingested_without_the_homes_own_files(tmp_path: Path) -> None:
    """`litassist --home lib ingest .` from a folder of papers: the library's database, locks and indexes are
    not taken for exports (typed as a user would, they were: "chroma.sqlite3: binary file", "open.lock: empty")."""
    folder = small_corpus(tmp_path)
    lib = Assistant(home=folder / "lib")
    first = lib.ingest([folder])
    assert (first.files, first.files_failed, first.new) == (2, [], 16)
    uploads = folder / "lib" / "uploads"  # what the app saves and then ingests by name stays ingestible
    uploads.mkdir()
    shutil.copy(SEEDS / "guo-zhenyu-author-page.txt", uploads / "page.txt")
    assert lib.ingest([uploads / "page.txt"]).new == 10
    again = lib.ingest([folder])
    assert (again.files, again.files_failed, again.files_unchanged) == (2, [], 2)


def test_changed_file_updates_only_its_own_papers(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path)
    lib = Assistant(home=tmp_path / "home")
    lib.ingest([corpus])
    other = {p.paper_id: p for p in lib.papers() if p.sources[0].file.endswith(SMALL[1])}
    keys_before = {sp.paper.paper_id: sp.content_key for sp in lib.store.all_papers()}

    changed = corpus / SMALL[0]
    lines = changed.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1] + " We also release code."  # edit one abstract
    del lines[2]  # drop one paper
    changed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = lib.ingest([corpus])

    # an untitled abstract's id is its hash: the edit is a new paper replacing the old one, plus one dropped
    assert (report.files_unchanged, report.new, report.updated, report.removed) == (1, 1, 0, 2)
    assert report.unchanged == 8
    edited = next(p for p in lib.papers() if "We also release code." in p.abstract)
    assert report.chunks_embedded == len(chunk_paper(edited, lib.settings.chunk_tokens))
    after = {sp.paper.paper_id: sp.content_key for sp in lib.store.all_papers()}
    assert len(after) == 15
    for pid in other:
        assert after[pid] == keys_before[pid]


def test_retitled_paper_is_updated_in_place(tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    record = {"id": "p1", "title": "Old title", "abstract": "An abstract about graph neural networks. " * 5}
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    lib = Assistant(home=tmp_path / "home")
    lib.ingest([source])
    before = chunk_ids(lib)
    source.write_text(json.dumps({**record, "title": "New title"}) + "\n", encoding="utf-8")
    report = lib.ingest([source])
    assert (report.updated, report.new, report.chunks_embedded) == (1, 0, 1)
    assert lib.paper("p1").title == "New title"
    after = chunk_ids(lib)  # the new version's vector (its header holds the new title) replaced the old one
    assert len(after) == len(before) == 1 and after != before and lib.stats().chunks == 1


def test_same_paper_in_two_formats_is_stored_once(tmp_path: Path) -> None:
    bib = tmp_path / "zotero.bib"
    bib.write_text(
        "@article{guo2023,\n  title = {Causal Mean Field Multi-Agent Reinforcement Learning},\n"
        "  author = {Guo, Zhenyu and Doe, Jane},\n  year = {2023},\n  doi = {10.1234/cmfq.2023},\n"
        "  abstract = {Scalability remains a challenge in multi-agent reinforcement learning.}\n}\n",
        encoding="utf-8",
    )
    page = tmp_path / "page.txt"
    shutil.copy(SEEDS / "guo-zhenyu-author-page.txt", page)
    lib = Assistant(home=tmp_path / "home")
    report = lib.ingest([page, bib])
    assert report.merged_duplicates == 1 and lib.stats().papers == 10
    paper = next(p for p in lib.papers() if p.title.startswith("Causal Mean Field"))
    assert {s.format for s in paper.sources} == {"author-page", "bibtex"}
    assert paper.doi == "10.1234/cmfq.2023" and paper.year == 2023
    assert paper.abstract.startswith("Scalability remains a challenge") and len(paper.abstract) > 500

    # ingesting the .bib again later (a separate run) merges into the stored paper, not a second copy
    bib.write_text(bib.read_text(encoding="utf-8").replace("2023}", "2023},\n  note = {v2}"), encoding="utf-8")
    again = lib.ingest([bib])
    assert again.files_unchanged == 0 and lib.stats().papers == 10 and again.chunks_embedded == 0


@pytest.mark.slow
def test_killed_ingest_leaves_store_consistent_and_next_run_completes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "assistant", "--home", str(home), "ingest", str(SEEDS)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        if "embedded and stored" in line:
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    lib = Assistant(home=home)
    partial = lib.stats()
    assert (partial.papers, partial.sources) == (0, 0)  # nothing half-published: the ingest never committed
    assert lib.search("reinforcement learning", k=5) == []  # a usable (empty) library, no error
    report = lib.ingest([SEEDS])
    assert report.new == seed_paper_count()
    assert report.chunks_embedded < sum(len(chunk_paper(p, 200)) for p in lib.papers())
    final = lib.stats()  # the killed run's stored vectors were taken over, not embedded again
    assert (final.papers, final.sources) == (seed_paper_count(), len(list(SEEDS.glob("*.txt"))))
    assert final.chunks == sum(len(chunk_paper(p, 200)) for p in lib.papers()) == lib.store.vectors.count("chunks")


def write_bad_inputs(folder: Path) -> dict[str, str]:
    folder.mkdir()
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (folder / "empty.txt").write_text("", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("Abstract: Caf\xe9 ".encode("latin-1") + b"word " * 40)
    (folder / "broken.bib").write_text(
        "@article{ok, title={Fine}, abstract={" + "good words " * 20 + "}}\n\n@article{bad, title = {Unclosed,\n",
        encoding="utf-8",
    )
    (folder / "table.csv").write_text("name,year\nA paper,2020\n", encoding="utf-8")
    return {
        "image.png": "binary",
        "empty.txt": "empty",
        "latin1.txt": "UTF-8",
        "broken.bib": "BibTeX",
        "table.csv": "no abstract or title column",
    }


def test_bad_inputs_are_named_and_nothing_stored_is_lost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    good = small_corpus(tmp_path)
    assert runner.invoke(app, ["--home", str(home), "ingest", str(good)]).exit_code == 0
    bad = tmp_path / "bad"
    expected = write_bad_inputs(bad)
    shutil.copy(SEEDS / "guo-zhenyu-author-page.txt", bad / "good_page.txt")

    result = runner.invoke(app, ["--home", str(home), "ingest", str(bad), "--json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    failed = {Path(f["file"]).name: f["reason"] for f in report["files_failed"]}
    assert set(failed) == set(expected)
    for name, word in expected.items():
        assert word.lower() in failed[name].lower() and "\n" not in failed[name]
    lib = Assistant(home=home)
    assert lib.stats().papers == 16 + 10  # the earlier library and the good file in the bad folder
    assert all(not p.title.startswith("Fine") for p in lib.papers())  # nothing from the broken .bib


def test_failed_reparse_keeps_the_stored_version(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path)
    lib = Assistant(home=tmp_path / "home")
    lib.ingest([corpus])
    before = {sp.paper.paper_id: sp.content_key for sp in lib.store.all_papers()}
    (corpus / SMALL[0]).write_bytes(b"\x00\x01garbage")
    report = lib.ingest([corpus])
    assert len(report.files_failed) == 1 and "binary" in report.files_failed[0].reason
    assert {sp.paper.paper_id: sp.content_key for sp in lib.store.all_papers()} == before


def test_cli_one_line_error_for_missing_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "ingest", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such file or directory" in result.output


def test_cli_contracts_papers_search_stats(seeded_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = ["--home", str(seeded_home)]
    listed = [p.paper_id for p in Assistant(home=seeded_home).papers()]

    def every_record(self: Assistant) -> None:
        raise AssertionError("`papers` made one list of the library (4 GB at 1M) instead of streaming it")

    monkeypatch.setattr(Assistant, "papers", every_record)
    lines = runner.invoke(app, [*base, "papers", "--json"]).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == seed_paper_count() and [r["paper_id"] for r in records] == sorted(listed) == listed
    assert {"paper_id", "title", "authors", "year", "source", "abstract"} <= set(records[0])

    query = "prompt token tuning for time series forecasting"
    result = runner.invoke(app, [*base, "search", query, "-k", "5", "--json"])
    hits = json.loads(result.stdout)
    assert len(hits) == 5 and set(hits[0]) == {"paper_id", "title", "score", "text", "has_abstract"}
    assert hits[0]["title"].startswith("PT-Tuning")
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert len({h["paper_id"] for h in hits}) == 5

    stats = json.loads(runner.invoke(app, [*base, "stats", "--json"]).stdout)
    assert (stats["papers"], stats["sources"]) == (seed_paper_count(), 5) and stats["chunks"] > stats["papers"]


def test_home_resolution_flag_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITASSIST_HOME", str(tmp_path / "from_env"))
    assert Assistant().settings.home == tmp_path / "from_env"
    assert Assistant(home=tmp_path / "flag").settings.home == tmp_path / "flag"
    monkeypatch.delenv("LITASSIST_HOME")
    assert "litassist" in str(Assistant().settings.home)


def test_env_example_documents_every_setting() -> None:
    """Each Settings field appears in .env.example under its environment name, with a comment just above it."""
    import re

    from assistant.config import Settings

    lines = (Path(__file__).resolve().parents[1] / ".env.example").read_text(encoding="utf-8").splitlines()
    setting = re.compile(r"# [A-Z_]+=")
    for name, field in Settings.model_fields.items():
        aliases = field.validation_alias.choices if field.validation_alias else [f"LITASSIST_{name.upper()}"]
        found = [i for i, line in enumerate(lines) if any(line.startswith(f"# {alias}=") for alias in aliases)]
        assert found, f"{name} is not in .env.example"
        above = [lines[j] for i in found for j in range(max(0, i - 3), i)]
        assert any(line.startswith("# ") and not setting.match(line) for line in above), f"{name}: no comment"
