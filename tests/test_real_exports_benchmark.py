"""benchmarks/real_exports.py: its entry count must not lean on litassist's parsers, and its stored numbers must be
what the library holds after a real ingest."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "real_exports", Path(__file__).parents[1] / "benchmarks" / "real_exports.py")
real_exports = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(real_exports)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "@string{j = {J}}\n@comment{x}\n@Article{a,\n title={A}}\n  @book{b, title={B}}\n@preamble{\"x\"}\n",
            ("BibTeX", 2),
        ),
        ("TY  - JOUR\nTI  - A\nER  - \n\nTY  - BOOK\nTI  - B\nER  - \n", ("RIS", 2)),
        ("PMID- 1\nTI  - A\n\nPMID- 2\nTI  - B\n", ("MEDLINE", 2)),
        ("\ufeffFN Clarivate Analytics Web of Science\nVR 1.0\nPT J\nTI A\nER\n\nPT J\nTI B\nER\n", ("WoS tagged", 2)),
        (
            '<?xml version="1.0"?><xml><records><record><titles/></record><record></record></records></xml>',
            ("EndNote XML", 2),
        ),
        (
            "<PubmedArticleSet>\n<PubmedArticle>x</PubmedArticle>\n<PubmedArticle>y</PubmedArticle>\n</PubmedArticleSet>",
            ("PubMed XML", 2),
        ),
        (
            (
                '<rdf:RDF><bib:Book><z:itemType>book</z:itemType></bib:Book>'
                '<z:Attachment><z:itemType>attachment</z:itemType></z:Attachment></rdf:RDF>'
            ),
            ("Zotero RDF", 1),
        ),
        (json.dumps({"meta": {"count": 3}, "results": [{}, {}, {}]}), ("JSON object .results", 3)),
        (json.dumps([{"data": {"itemType": "book"}}, {"data": {"itemType": "attachment"}}]), ("JSON array", 1)),
        ('{"id": "1", "authors_parsed": []}\n{"id": "2", "authors_parsed": []}\n', ("JSONL (arXiv snapshot)", 2)),
    ],
)
def test_count_entries_by_format(text: str, expected: tuple[str, int]) -> None:
    assert real_exports.count_entries(text.removeprefix("\ufeff")) == expected


def test_rows_come_from_the_library_after_a_real_ingest(tmp_path: Path) -> None:
    (tmp_path / "lib.bib").write_text(
        "@article{withabs, title={Graph neural networks}, abstract={We study message passing.}, year={2020}}\n"
        "@article{noabs, title={A title only}, year={2019}}\n"
        "@misc{empty, note={nothing usable}}\n", encoding="utf-8")
    (tmp_path / "SOURCES.md").write_text("not an export", encoding="utf-8")
    [row] = real_exports.run(tmp_path, minilm=False, max_entries=3000)
    assert (row["file"], row["looks_like"], row["entries"]) == ("lib.bib", "BibTeX", 3)
    assert row["format"] == "bibtex" and not row["failures"]
    assert row["with_abstract"] == 1
    assert row["stored"] + row["skipped"] == 3  # the title-only entry is stored or skipped, depending on the version
    table = real_exports.markdown([row])
    assert "| lib.bib | BibTeX | bibtex | 3 |" in table


def test_a_failed_file_shows_its_one_line_reason(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("PMID- 1\nTI  - A title\n", encoding="utf-8")
    [row] = real_exports.run(tmp_path, minilm=False, max_entries=3000)
    assert row["entries"] == 1
    if row["failures"]:  # before a MEDLINE reader exists
        assert row["stored"] == 0 and "FAILED: " + row["failures"][0] in real_exports.markdown([row])
    else:
        assert row["stored"] == 1
