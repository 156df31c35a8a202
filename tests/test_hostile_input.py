"""Hostile and damaged input (issue 11): every bad file is one named line, the rest is stored, nothing hangs,
and an update never destroys data silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile import abstract, run_cli, special_files, write_bad_files, write_handled_files
from typer.testing import CliRunner

from assistant import Assistant
from assistant.cli import app
from assistant.config import load_settings
from assistant.corpus import parse_text
from assistant.corpus.exports import parse_csl_json, parse_json, parse_jsonl
from assistant.errors import ParseError
from assistant.index import StoreError
from assistant.retrieve import Filters

runner = CliRunner()


@pytest.mark.slow
def test_every_bad_file_is_one_line_and_the_others_are_stored(tmp_path: Path) -> None:
    """The crashes, hangs and memory blow-ups of the attack run, in one ingest (the CLI, a fresh process)."""
    folder = tmp_path / "files"
    bad = write_bad_files(folder)
    handled = write_handled_files(folder)
    special = special_files(tmp_path / "special")
    result = run_cli(tmp_path / "home", "ingest", str(folder), *special, timeout=300)  # a hang fails here

    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed ")]
    assert len(failed) == len(bad) + len(special), "\n".join(failed)
    for name, word in {**bad, **special}.items():
        shown = name.replace("\n", "\\n").replace("\x1b", "\\x1b")  # printed escaped, on its one line
        assert any(shown in line and word.lower() in line.lower() for line in failed), (name, failed)
    assert "\x1b[31m" not in result.stderr  # no raw escape sequence from a file name reaches the terminal
    assert "arXiv API error: bad query [/]" in result.stderr  # content markup printed, not interpreted

    lib = Assistant(home=tmp_path / "home")
    papers = {Path(p.sources[0].file).name: p for p in lib.papers()}
    assert set(papers) == set(handled)
    assert papers["bigint.json"].paper_id.startswith("t:") and papers["infinity.json"].paper_id.startswith("t:")
    assert papers["surrogate.json"].title == "Lone \ufffd surrogate" and papers["surrogate.json"].abstract.endswith(
        "\ufffd"
    )
    assert papers["braces.bib"].title == "Deep"
    assert papers["markup.bib"].title == "Markup [bold]in[/bold] a [/] title"
    assert (papers["csl_flat.json"].year, papers["csl_flat.json"].authors) == (2021, ["Jane Doe"])


def test_json_values_that_are_not_text() -> None:
    """Infinity is no id, an object is no abstract, 42 and null are no authors."""
    (paper,) = parse_json(
        json.dumps([{"id": float("inf"), "title": "T", "abstract": "Words about graphs."}]), "a.json"
    ).papers
    assert paper.paper_id.startswith("t:") and "inf" not in paper.paper_id
    result = parse_jsonl(json.dumps({"id": "d", "abstract": {"x": 1}}) + "\n", "d.jsonl")
    assert not result.papers and [(s.reason, s.label) for s in result.skipped] == [
        ("abstract is not text, and no title, DOI or arXiv id", "d")]
    csl = json.dumps([{"title": "T", "abstract": "Words.", "author": [42, None, "Ada Lovelace"],
                       "issued": {"date-parts": [[None]]}}])
    (item,) = parse_csl_json(csl, "c.json").papers
    assert item.authors == ["Ada Lovelace"] and item.year is None


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("deep.jsonl", '{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply on line 1"),
        ("cut.ris", "TY  - JOUR\nTI  - A\nAB  - Words.\nER  - \nTY  - JOUR\nTI  - B\nAB  - cut", "line 5"),
        ("cut.csv", 'title,abstract\nA,"Words."\nB,"cut mid', "unexpected end of data"),
        ("ragged.csv", "title,abstract\nA,Words\nB\n", "row 2 (line 3) has 1 fields"),
        ("broken.json", '[{"title": "A", "abstract": "Words."}, {"title": "B", "abs', "invalid JSON at line 1"),
        ("broken.jsonl", '{"abstract": "Words."}\n{"abs', "invalid JSON on line 2"),
    ],
)
def test_truncated_and_damaged_exports_are_refused(name: str, text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace(")", r"\)")) as failure:
        parse_text(text, name)
    assert "\n" not in str(failure.value)


def test_same_id_twice_with_different_content_is_a_conflict(tmp_path: Path) -> None:
    from assistant.corpus import parse_file

    same = tmp_path / "same.jsonl"
    same.write_text(json.dumps({"id": "p1", "title": "A", "abstract": "One."}) + "\n"
                    + json.dumps({"id": "p1", "title": "A", "abstract": "One."}) + "\n", encoding="utf-8")
    assert len(parse_file(same).result.papers) == 2  # identical repeats are merged later, as before
    clash = tmp_path / "clash.jsonl"
    clash.write_text(json.dumps({"id": "p1", "abstract": "One."}) + "\n"
                     + json.dumps({"id": "p1", "abstract": "Two."}) + "\n", encoding="utf-8")
    with pytest.raises(ParseError, match="entries 1 and 2 have the same id 'p1' but different abstract"):
        parse_file(clash)


def test_update_that_drops_papers_is_refused_unless_allowed(tmp_path: Path) -> None:
    source = tmp_path / "refs.jsonl"
    records = [{"id": f"r{i}", "title": f"Paper {i}", "abstract": abstract(f"topic {i}")} for i in range(10)]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    lib = Assistant(home=tmp_path / "home")
    assert lib.ingest([source]).new == 10

    source.write_text("".join(json.dumps(r) + "\n" for r in records[:7]), encoding="utf-8")  # a cut export
    report = lib.ingest([source])
    assert [f.reason for f in report.files_failed] == [
        ("this version would remove 3 of the 10 papers the file held (30%, over the 20% limit); "
         "if the file is complete, run again with --allow-removals")
    ]
    assert lib.stats().papers == 10 and report.removed == 0
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), "ingest", str(source), "--allow-removals", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["removed"] == 3
    assert lib.stats().papers == 7


def test_truncated_update_keeps_the_stored_papers_whole(tmp_path: Path) -> None:
    ris = tmp_path / "export.ris"
    whole = "".join(f"TY  - JOUR\nTI  - Title {i}\nAB  - {abstract(f'ris {i}')}\nER  - \n\n" for i in range(3))
    ris.write_text(whole, encoding="utf-8")
    lib = Assistant(home=tmp_path / "home")
    lib.ingest([ris])
    before = {p.paper_id: p.abstract for p in lib.papers()}
    ris.write_text(whole[: whole.rindex("AB  - ") + 40], encoding="utf-8")  # cut inside the last abstract
    report = lib.ingest([ris])
    assert len(report.files_failed) == 1 and "cut short" in report.files_failed[0].reason
    assert {p.paper_id: p.abstract for p in lib.papers()} == before


def test_long_abstract_is_capped_with_a_warning_and_progress_counts_papers(tmp_path: Path) -> None:
    source = tmp_path / "book.jsonl"
    rows = [{"id": "book", "title": "A whole book", "abstract": abstract("chapters") * 400},
            {"id": "short", "title": "Short", "abstract": abstract("short")}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    lib = Assistant(settings=load_settings(tmp_path / "home", max_chunks_per_paper=3))
    seen: list[tuple[str, int, int]] = []
    report = lib.ingest([source], progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert lib.store.get_papers(["book"])["book"].abstract.count("chapters") == 800  # stored whole
    assert lib.store.stored_papers(["book"])["book"].n_chunks == 3 and lib.stats().chunks == 4
    assert len(report.warnings) == 1 and "only its first 3 passages are embedded" in report.warnings[0]
    assert [s for s in seen if s[0] == "embed"][-1] == ("embed", 2, 2)  # papers, not chunks


def test_a_million_skipped_rows_are_summarized(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "title,abstract,year\n" + ",,2020\n" * 100_000 + f"Real,{abstract('rows')},2021\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), "ingest", str(sheet)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) < 60
    assert sum(line.startswith("skipped") for line in lines) == 21  # 20 entries, then one summary line
    assert "99,980 more entries; in all: no title, abstract, DOI or arXiv id ×100,000" in result.output


def test_source_filter_is_exact(seeded_home: Path) -> None:
    lib = Assistant(home=seeded_home)
    assert lib.search("learning", k=50, filters=Filters(source="page")) == []  # not author-page + paper-page
    assert len(lib.search("learning", k=50, filters=Filters(source="Paper-Page"))) == 6
    by_name = lib.search("learning", k=50, filters=Filters(source="guo-zhenyu-author-page.txt"))
    assert len(by_name) == 10
    full = next(p.sources[0].file for p in lib.papers() if p.sources[0].file.endswith("guo-zhenyu-author-page.txt"))
    assert len(lib.search("learning", k=50, filters=Filters(source=full))) == 10
    assert (
        lib.search("learning", k=50, filters=Filters(source="guo-zhenyu")) == []
    )  # a prefix of a name is not the name


def test_changing_chunk_size_is_refused_like_another_model(tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_text("".join(json.dumps({"id": i, "abstract": abstract(f"chunks {i}")}) + "\n" for i in ("a", "a2")),
                      encoding="utf-8")
    Assistant(home=tmp_path / "home").ingest([source])
    other = tmp_path / "two.jsonl"
    other.write_text(json.dumps({"id": "b", "abstract": abstract("sizes")}) + "\n", encoding="utf-8")
    with pytest.raises(StoreError, match="chunked at 200 tokens, not 300: set LITASSIST_CHUNK_TOKENS=200"):
        Assistant(settings=load_settings(tmp_path / "home", chunk_tokens=300)).ingest([other])
    assert Assistant(settings=load_settings(tmp_path / "home", chunk_tokens=300)).search("graph", k=1)  # reads work
    # a removal by a process with another chunk size writes no chunks, so it does not relabel the library
    assert Assistant(settings=load_settings(tmp_path / "home", chunk_tokens=300)).remove(["a"]).removed == ["a"]
    with pytest.raises(StoreError, match="chunked at 200 tokens, not 300"):
        Assistant(settings=load_settings(tmp_path / "home", chunk_tokens=300)).ingest([other])
    third = tmp_path / "three.jsonl"
    third.write_text(json.dumps({"id": "c", "abstract": abstract("again")}) + "\n", encoding="utf-8")
    assert Assistant(home=tmp_path / "home").ingest([third]).new == 1


def test_ingest_and_remove_never_build_the_chat_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With LITASSIST_RERANK=llm, the re-ranker's model (maybe a llama.cpp server) is for searches only."""
    import assistant.llm

    def no_model(settings: object) -> None:
        raise AssertionError("ingest/remove built the chat model")

    monkeypatch.setattr(assistant.llm, "chat_model", no_model)
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps({"id": "a", "abstract": abstract("rerank")}) + "\n", encoding="utf-8")
    lib = Assistant(settings=load_settings(tmp_path / "home", rerank="llm", llm_provider="local"))
    assert lib.ingest([source]).new == 1
    assert lib.remove(["a"]).removed == ["a"]
