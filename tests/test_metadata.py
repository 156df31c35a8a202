"""Honest metadata outside the app: derived titles marked and never exported as titles, LaTeX decoded for display
and escaped once in BibTeX, a month-day date without a year kept as written but undated, and year filters that say
what they leave out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from seeds import seed_paper_count
from typer.testing import CliRunner

from assistant import display_abstract, display_date, display_title, plain_text
from assistant.bibtex import bibtex
from assistant.cli import app
from assistant.corpus import parse_text
from assistant.corpus.records import SourceRef, make_paper
from assistant.retrieve import Filters

runner = CliRunner()
SOURCE = SourceRef(file="f", format="jsonl", position=1)

# Month-day dates without a year, as exports write them; each must stay the paper's date and give it no year.
UNDATED = {
    "refs.bib": "@article{k, title={Sparse training}, author={Doe, Jane}, date={May 24}, abstract={We prune.}}",
    "refs.ris": "TY  - JOUR\nTI  - Sparse training\nAU  - Doe, Jane\nDA  - May 24\nAB  - We prune.\nER  - \n",
    "refs.json": '[{"title": "Sparse training", "date": "May 24", "abstract": "We prune."}]',
    "refs.csv": "title,date,abstract\nSparse training,May 24,We prune.\n",
    "refs.nbib": "PMID- 1\nTI  - Sparse training\nDP  - May 24\nAB  - We prune.\n\n",
}


@pytest.mark.parametrize("name", sorted(UNDATED))
def test_a_month_day_date_is_kept_as_written_and_undated(name: str) -> None:
    (paper,) = parse_text(UNDATED[name], name).papers
    assert (paper.year, paper.date) == (None, "May 24")
    assert display_date(paper) == "May 24, no year"  # shown as written, never as a year
    assert not Filters(year_min=2020).admits(paper) and not Filters(year_max=2030).admits(paper)
    assert Filters(year_min=2020, include_undated=True).admits(paper)


def test_a_dated_paper_is_unchanged() -> None:
    (paper,) = parse_text("title,date,abstract\nSparse training,2024-05-24,We prune.\n", "refs.csv").papers
    assert (paper.year, paper.date, display_date(paper)) == (2024, "2024-05-24", "2024")
    assert not Filters(year_min=2025, include_undated=True).admits(paper)  # undated papers pass, not early ones


def test_the_daily_papers_listing_dates_are_not_years(seeded_home: Path) -> None:
    from assistant import Assistant

    papers = Assistant(home=seeded_home).papers()
    undated = [p for p in papers if p.date and not p.year]
    assert undated and all(display_date(p) == f"{p.date}, no year" for p in undated)


DERIVED = make_paper(abstract=r"Recently, deep reinforcement learning (RL) algorithms gain 11\% with $N:M$ sparsity, "
                              r"3.04\~{}7.84x faster.", source=SOURCE)


def test_a_derived_title_is_marked_and_never_exported_as_a_title() -> None:
    assert DERIVED.title_derived
    assert display_title(DERIVED).startswith("Untitled — “Recently, deep reinforcement learning")
    entry = bibtex([DERIVED])
    assert "title =" not in entry and "note = {No title in the source}" in entry
    titled = make_paper(abstract="We prune.", title="Sparse 50\\% training", source=SOURCE)
    assert display_title(titled) == "Sparse 50% training" and "title = {{Sparse 50\\% training}}" in bibtex([titled])


def test_latex_is_decoded_for_display_and_escaped_once_in_bibtex() -> None:
    assert display_abstract(DERIVED) == ("Recently, deep reinforcement learning (RL) algorithms gain 11% with N:M "
                                         "sparsity, 3.04~7.84x faster.")
    abstract = next(line for line in bibtex([DERIVED]).splitlines() if line.startswith("  abstract"))
    assert "gain 11\\% with N:M sparsity, 3.04\\textasciitilde{}7.84x" in abstract
    assert "\\\\%" not in abstract and "$" not in abstract
    assert plain_text("no markup: 50% & more") == "no markup: 50% & more"


def test_search_says_when_nothing_matches_the_filters(seeded_home: Path) -> None:
    result = runner.invoke(app, ["--home", str(seeded_home), "search", "reinforcement learning",
                                 "--year-min", "2020", "--year-max", "2023", "--author", "nobody-at-all"])
    assert result.exit_code == 0
    assert ("no papers match the filters: years 2020-2023, author 'nobody-at-all' "
            f"({seed_paper_count()} papers in the library)") in result.output
    assert "empty library" not in result.output


def test_a_year_filter_says_how_many_undated_papers_it_left_out(seeded_home: Path) -> None:
    from assistant import Assistant

    papers = Assistant(home=seeded_home).papers()
    undated = sum(1 for p in papers if p.year is None)
    result = runner.invoke(app, ["--home", str(seeded_home), "search", "reinforcement learning", "--year-min", "2000"])
    assert f"{undated} undated papers were left out by the year filter (--include-undated includes them)" \
        in result.output
    hits = runner.invoke(app, ["--home", str(seeded_home), "search", "reinforcement learning", "--year-min", "2000",
                               "--include-undated", "-k", "100", "--json"])
    assert hits.exit_code == 0
    undated_ids = {p.paper_id for p in papers if p.year is None}
    assert undated_ids & {h["paper_id"] for h in json.loads(hits.output)}


def test_papers_lists_derived_titles_and_undated_dates_honestly(seeded_home: Path) -> None:
    result = runner.invoke(app, ["--home", str(seeded_home), "papers"])
    assert "Untitled — “" in result.output and ", no year)" in result.output


def test_an_answer_s_references_mark_a_derived_title() -> None:
    from assistant.citations import Citation, reference_list

    undated = make_paper(abstract="We prune weights.", title="Sparse training", date="Sep 25", source=SOURCE)
    lines = reference_list([Citation(number=1, paper_id=DERIVED.paper_id, title=DERIVED.title, paper=DERIVED),
                            Citation(number=2, paper_id=undated.paper_id, title=undated.title, paper=undated)])
    assert "[1] Untitled — “Recently, deep reinforcement learning" in lines and "(n.d.)" in lines
    assert f"[2] Sparse training (Sep 25, no year) — {undated.paper_id}" in lines


def test_ask_shows_quoted_latex_as_typeset_and_json_keeps_it_verbatim(seeded_home: Path) -> None:
    question = "How much does AdaMerging improve over task arithmetic merging?"
    shown = runner.invoke(app, ["--home", str(seeded_home), "ask", question])
    assert "remarkable 11% improvement" in " ".join(shown.output.split()) and "11\\%" not in shown.output
    raw = json.loads(runner.invoke(app, ["--home", str(seeded_home), "ask", question, "--json"]).output)
    assert "remarkable 11\\% improvement" in raw["answer"]  # the quote as stored: its highlight offsets stay exact
