"""Entries without an abstract (a thesis .bib, most of a Zotero library) are papers: stored, found by their
metadata, shown as "no abstract", never quoted as a finding; and the demo corpus stays apart from a user's files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant import Assistant
from assistant.cli import app
from assistant.corpus import NO_ABSTRACT
from assistant.retrieve import Filters

runner = CliRunner()

# The shape of a thesis bibliography: entries with titles, authors, venues and years, and no abstracts.
THESIS_BIB = r"""
@article{hochreiter1997long,
  title={Long short-term memory},
  author={Hochreiter, Sepp and Schmidhuber, J{\"u}rgen},
  journal={Neural computation},
  volume={9}, number={8}, pages={1735--1780},
  year={1997}
}
@inproceedings{he2016deep,
  title={Deep residual learning for image recognition},
  author={He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
  booktitle={Proceedings of the IEEE conference on computer vision and pattern recognition},
  pages={770--778},
  year={2016}
}
@misc{kingma2014adam,
  title={Adam: A Method for Stochastic Optimization},
  author={Kingma, Diederik P. and Ba, Jimmy},
  year={2014},
  eprint={1412.6980}, archivePrefix={arXiv}
}
@misc{nothing2020,
  author={Someone, Else},
  year={2020}
}
"""


@pytest.fixture(scope="module")
def thesis_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("thesis")
    (folder / "thesis.bib").write_text(THESIS_BIB, encoding="utf-8")
    home = folder / "home"
    report = Assistant(home=home).ingest([folder / "thesis.bib"])
    assert (report.new, report.without_abstract, report.skipped_total) == (3, 3, 1)
    assert [(s.label, s.reason) for s in report.skipped] == [("nothing2020", "no title, abstract, DOI or arXiv id")]
    return home


def test_entries_without_abstract_are_stored_with_their_metadata(thesis_home: Path) -> None:
    papers = {p.title: p for p in Assistant(home=thesis_home).papers()}
    assert set(papers) == {"Long short-term memory", "Deep residual learning for image recognition",
                           "Adam: A Method for Stochastic Optimization"}
    lstm = papers["Long short-term memory"]
    assert (lstm.authors, lstm.year, lstm.venue, lstm.has_abstract) == (
        ["Sepp Hochreiter", "Jürgen Schmidhuber"], 1997, "Neural computation", False)
    assert papers["Adam: A Method for Stochastic Optimization"].arxiv_id == "1412.6980"


@pytest.mark.parametrize("mode", ["lexical", "dense", "hybrid"])
def test_found_by_title_in_every_retriever(thesis_home: Path, mode: str) -> None:
    hits = Assistant(home=thesis_home).search("residual learning for image recognition", k=1, mode=mode)
    assert hits[0].title == "Deep residual learning for image recognition"


@pytest.mark.parametrize(("query", "title"), [("Schmidhuber", "Long short-term memory"),
                                              ("Neural computation", "Long short-term memory"),
                                              ("Kaiming He Jian Sun", "Deep residual learning for image recognition")])
def test_found_by_authors_and_venue(thesis_home: Path, query: str, title: str) -> None:
    assert Assistant(home=thesis_home).search(query, k=1, mode="lexical")[0].title == title


def test_filters_apply_to_papers_without_abstract(thesis_home: Path) -> None:
    hits = Assistant(home=thesis_home).search("learning", k=5, filters=Filters(year_min=2015))
    assert [h.title for h in hits] == ["Deep residual learning for image recognition"]


def test_cli_lists_and_finds_them_as_no_abstract(thesis_home: Path) -> None:
    listing = runner.invoke(app, ["--home", str(thesis_home), "papers"])
    assert listing.exit_code == 0 and " ".join(listing.stdout.split()).count(NO_ABSTRACT) == 3  # (wrapped at 80)
    found = runner.invoke(app, ["--home", str(thesis_home), "search", "Schmidhuber", "-k", "1"])
    shown = " ".join(found.stdout.split())
    assert "Long short-term memory" in shown and f"({NO_ABSTRACT}: found by its title and metadata)" in shown
    as_json = runner.invoke(app, ["--home", str(thesis_home), "search", "Schmidhuber", "-k", "1", "--json"])
    assert '"has_abstract": false' in as_json.stdout


def test_extractive_answer_never_quotes_a_title(thesis_home: Path) -> None:
    answer = Assistant(home=thesis_home).ask("What is long short-term memory?")
    assert answer.extractive
    assert "Long short-term memory [" not in answer.text and not any(c.spans for c in answer.citations)
    assert answer.abstained and "have no abstract stored" in answer.text and "“Long short-term memory”" in answer.text


def test_evidence_for_a_model_says_there_is_no_abstract(thesis_home: Path) -> None:
    from assistant.citations import Ledger

    lib = Assistant(home=thesis_home)
    ledger = Ledger()
    paper = next(p for p in lib.papers() if p.title == "Long short-term memory")
    block = ledger.render([ledger.add(paper, paper.abstract)], budget_tokens=500)
    assert "Long short-term memory" in block and f"({NO_ABSTRACT}: only the title and details above" in block


def test_ingest_report_counts_them_and_leaves_out_zero_rows(tmp_path: Path) -> None:
    (tmp_path / "thesis.bib").write_text(THESIS_BIB, encoding="utf-8")
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), "ingest", str(tmp_path / "thesis.bib")])
    assert result.exit_code == 0
    assert "papers without an abstract" in result.stdout and "(nothing2020)" in result.stderr
    assert "removed" not in result.stdout and "updated" not in result.stdout  # 0: left out


def test_a_failure_is_printed_once_with_no_table_of_zeros(tmp_path: Path) -> None:
    bad = tmp_path / "cut.ris"
    bad.write_text("TY  - JOUR\nTI  - Cut short\n", encoding="utf-8")
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), "ingest", str(bad)])
    assert result.exit_code == 2
    assert result.output.count("looks cut short") == 1
    assert "ingest report" not in result.output


def test_demo_papers_are_noted_after_an_ingest_and_removed_by_one_command(seeded_copy: Path, tmp_path: Path) -> None:
    (tmp_path / "mine.bib").write_text(THESIS_BIB, encoding="utf-8")
    base = ["--home", str(seeded_copy)]
    result = runner.invoke(app, [*base, "ingest", str(tmp_path / "mine.bib")])
    assert result.exit_code == 0 and "remove it with `litassist remove --demo`" in " ".join(result.stderr.split())
    removed = runner.invoke(app, [*base, "remove", "--demo"])
    assert removed.exit_code == 0
    lib = Assistant(home=seeded_copy)
    assert {p.title for p in lib.papers()} == {"Long short-term memory", "Deep residual learning for image recognition",
                                                "Adam: A Method for Stochastic Optimization"}
    assert lib.demo_sources() == []
    again = runner.invoke(app, [*base, "ingest", str(tmp_path / "mine.bib"), "--force"])
    assert "remove --demo" not in again.stderr
