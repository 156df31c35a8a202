"""The paper exports of the evidence table: each format read back by litassist's own importers (what a reference
manager would read) gives the same papers."""

from __future__ import annotations

import pytest

from assistant.corpus import Paper, parse_text
from assistant.exports_out import PAPER_EXPORTS, file_stem

PAPERS = [
    Paper(paper_id="a", title="Causal Mean Field Q-Learning for Many Agents", abstract="We test CMFQ in a mixed\n"
          "cooperative-competitive game. It scales to 1,000 agents.", authors=["Zhou, Hao", "Ada Lovelace"],
          year=2023, venue="NeurIPS", doi="10.1000/cmfq", keywords=["mean field", "MARL"]),
    Paper(paper_id="b", title="Sparse routing of reviewers", abstract="We route papers & reviewers {fast}.",
          authors=["Plato"], arxiv_id="2301.00001"),
]


@pytest.mark.parametrize("fmt", sorted(PAPER_EXPORTS))
def test_every_export_reads_back_as_the_same_papers(fmt: str) -> None:
    export = PAPER_EXPORTS[fmt]
    read = parse_text(export.write(PAPERS), f"refs.{export.extension}").papers
    assert [p.title for p in read] == [p.title for p in PAPERS]
    assert [p.year for p in read] == [2023, None]
    assert read[0].doi == "10.1000/cmfq" and read[0].venue == "NeurIPS"
    assert " ".join(read[0].abstract.split()) == " ".join(PAPERS[0].abstract.split())
    assert len(read[0].authors) == 2 and "Zhou" in read[0].authors[0] and "Lovelace" in read[0].authors[1]


def test_file_names_come_from_the_title() -> None:
    assert file_stem("How does MARL scale? (2024 / v2)") == "litassist-how-does-marl-scale-2024-v2"
    assert file_stem("???", "litassist-1a2b") == "litassist-1a2b"
    assert len(file_stem("word " * 40)) <= len("litassist-") + 60
