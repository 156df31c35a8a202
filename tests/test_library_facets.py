"""What the app asks of a library on every page run, answered from the catalog without reading every record:
facets (years, undated papers, formats, files, Zotero collections), the ids a `Filters` admits (exactly what
`Filters.admits` says), and the Library tab's pages of papers within the filters and a text filter."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from test_storage import synthetic_rows
from zotero_library import ZoteroLibrary

from assistant import Assistant, Filters, Paper
from assistant.corpus import SourceRef
from assistant.index import PaperQuery, Store
from assistant.index.catalog import SCHEMA_VERSION

ODD = 'Stats & "ML" \\ ✓ 50%'  # quotes, a backslash, LIKE characters and non-ASCII in a collection name
BIB = """@article{k1, title={Sparse matrices, stored compactly}, author={Müller, Jürgen and O'Neil, Ann},
  year={2019}, journal={SIAM J. Matrix Anal.}, abstract={We store "sparse" matrices compactly.}}
@article{k2, title={ΣΙΓΜΑ: Greek capitals in a title}, author={Papadopoulos, Eleni}, year={2021},
  journal={Proc. Greek Computing}, abstract={Titles with Greek capitals and the final sigma.}}
"""
CSV = ("title,abstract,year,authors\nA CSV paper on graphs,Graphs in a table at C:\\data\\graphs.,2017,Smith\n"
       "An undated CSV paper,No year.,,Ng\n")


@pytest.fixture(scope="module")
def mixed(seeded_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    """The seeds (dated and undated papers, four formats) plus a Zotero library (nested collections, one name
    differing only in case, an odd one), a BibTeX and a CSV file."""
    root = tmp_path_factory.mktemp("mixed")
    shutil.copytree(seeded_home, root / "home")
    zotero = ZoteroLibrary(root / "Zotero")
    thesis = zotero.collection("Thesis")
    chapter = zotero.collection("Chapter 2", parent=thesis)
    odd, lower = zotero.collection(ODD), zotero.collection("thesis")
    zotero.add(title="Graph partitioning at scale", abstractNote="Multilevel bisection of graphs.", date="2019-05-03",
               publicationTitle="Journal of Graphs", creators=[("Ada", "Lovelace", "author")],
               collections=[chapter, odd])
    zotero.add(title="Spectral cuts", abstractNote="Cuts by eigenvectors.", date="2020",
               creators=[("Grace", "Hopper", "author")], collections=[thesis, lower])
    zotero.add(title="An undated note on cuts", abstractNote="No date given.", collections=[lower])
    (root / "refs.bib").write_text(BIB)
    (root / "table.csv").write_text(CSV)
    lib = Assistant(home=root / "home")
    report = lib.ingest([zotero.path, root / "refs.bib", root / "table.csv"])
    assert report.new == 7 and not report.files_failed, report
    return lib


def test_facets_count_what_the_records_hold(mixed: Assistant) -> None:
    papers = mixed.papers()
    facets = mixed.library_facets()
    assert facets.papers == len(papers) > 180
    assert facets.years == sorted({p.year for p in papers if p.year is not None})
    assert facets.undated == sum(p.year is None for p in papers) > 0
    assert facets.formats == Counter(s.format for p in papers for s in p.sources)
    assert facets.files == Counter(s.file for p in papers for s in p.sources)
    assert list(facets.files) == sorted(facets.files, key=lambda f: Path(f).name)
    assert len(facets.formats) >= 6 and len(facets.files) >= 8
    assert facets.collections == sorted({c for p in papers for c in p.collections}, key=lambda c: (c.casefold(), c))
    assert {"Thesis", "thesis", "Thesis/Chapter 2", ODD} <= set(facets.collections)  # as written, case kept


FILTERS = [
    Filters(year_min=2020), Filters(year_min=2020, include_undated=True), Filters(year_max=2019),
    Filters(year_min=2018, year_max=2021, include_undated=True), Filters(year_min=2100),
    Filters(author="GUO"), Filters(author="müller"), Filters(author="o'neil"), Filters(author="a\nb"),
    Filters(venue="graphs"), Filters(venue="siam j."),
    Filters(source="bibtex"), Filters(source="BibTeX"), Filters(source="table.csv"), Filters(source="jsonl"),
    Filters(collections=["thesis"]), Filters(collections=["Chapter 2"]), Filters(collections=[ODD.upper()]),
    Filters(collections=["Thesis/Chapter 2", "nowhere"]), Filters(collections=["Chapter"]), Filters(collections=[]),
    Filters(year_min=2019, source="zotero", collections=["Thesis"]),
    Filters(year_max=2022, author="a", venue="a"),
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.describe().replace("\n", "\\n"))
def test_matching_papers_are_those_filters_admit(mixed: Assistant, filters: Filters) -> None:
    papers = mixed.papers()
    expected = {p.paper_id: p.year for p in papers if filters.admits(p)}
    assert mixed.matching_papers(filters) == expected
    assert list(mixed.matching_papers(filters)) == sorted(expected)
    assert mixed.count_matching(filters) == len(expected)
    chosen = sorted(p.paper_id for p in papers)[::3]  # with paper ids too (a topic's members)
    narrowed = filters.model_copy(update={"paper_ids": chosen})
    assert set(mixed.matching_papers(narrowed)) == {p.paper_id for p in papers if narrowed.admits(p)}


def test_source_filters_by_stored_path_and_name(mixed: Assistant) -> None:
    papers = mixed.papers()
    bib = next(f for f in mixed.library_facets().files if f.endswith("refs.bib"))
    for source in (bib, "refs.bib", str(Path(bib).parent / "." / "refs.bib")):
        assert set(mixed.matching_papers(Filters(source=source))) == {
            p.paper_id for p in papers if any(s.file == bib for s in p.sources)}


def holds(paper: Paper, text: str) -> bool:
    return text.lower() in " ".join([paper.title, *paper.authors, paper.abstract, paper.venue or "",
                                     paper.paper_id]).lower()


@pytest.mark.parametrize("text", ["", "learning", "GRAPHS", "MÜLLER", '"sparse"', "c:\\data", "σιγμα",
                                  "compactly Jürgen", "matrices, stored", "zzzz-nothing"])
def test_browse_pages_through_filters_and_text(mixed: Assistant, text: str) -> None:
    """Pages of 50 in id order, the text looked for in title, authors, abstract, venue and id (across fields too,
    as a reader reads the row), inside quotes and backslashes and in non-ASCII capitals."""
    papers = mixed.papers()
    found = [p for p in papers if holds(p, text)]
    assert text == "zzzz-nothing" or 0 < len(found) and (text in ("", "learning") or len(found) < 20)
    for filters in (None, Filters(year_min=2020, include_undated=True)):
        expected = [p.paper_id for p in papers if holds(p, text) and (filters is None or filters.admits(p))]
        first = mixed.browse(filters, text, 0, 50)
        assert first.total == len(expected)
        pages = [mixed.browse(filters, text, offset, 50) for offset in range(0, first.total, 50)]
        assert [p.paper_id for page in pages for p in page.papers] == expected
        assert all(len(page.papers) == 50 for page in pages[:-1])


def test_a_change_to_the_library_is_seen_by_the_next_page(mixed: Assistant, tmp_path: Path) -> None:
    """A filtered query's ids are kept for its next pages only while the library is unchanged (this process's
    changes or another's)."""
    shutil.copytree(mixed.settings.home, tmp_path / "home")
    lib = Assistant(home=tmp_path / "home")
    filters = Filters(year_min=2019, year_max=2019)
    assert lib.count_matching(filters) == len(lib.matching_papers(filters)) > 2
    graphs = lib.browse(filters, "graph", 0, 1)
    assert graphs.total == 2
    Assistant(home=tmp_path / "home").remove(paper_ids=[graphs.papers[0].paper_id])  # another Assistant's commit
    after = lib.browse(filters, "graph", 0, 1)
    assert after.total == 1 and after.papers[0].paper_id != graphs.papers[0].paper_id
    assert graphs.papers[0].paper_id not in lib.matching_papers(filters)


def test_facets_and_filters_leave_out_staged_rows(tmp_path: Path) -> None:
    """Rows an ingest has staged but not committed are in every index: counted apart and taken off."""
    store = Store(tmp_path / "home" / "chroma", "synthetic")

    def shaped(prefix: str, count: int, file: str, collection: str) -> list:
        return [(paper.model_copy(update={"year": 2000 + i % 3, "collections": [collection],
                                          "sources": [SourceRef(file=file, format="jsonl", position=i + 1)]}),
                 chunks, vectors) for i, (paper, chunks, vectors) in enumerate(synthetic_rows(prefix, count))]

    with store.writing(), store.committing():
        store.write_papers(shaped("a", 6, "/x/a.jsonl", "Kept"))
    before = store.facets()
    with store.writing():
        store.write_papers(shaped("b", 4, "/x/b.jsonl", "Staged"))
        with store.reading():
            assert store.facets() == before and before.years == {2000: 2, 2001: 2, 2002: 2}
            assert before.files == {("/x/a.jsonl", "jsonl"): 6} and before.collections == {"Kept": 6}
            assert store.query_ids(PaperQuery()) == [(f"a{i}", 2000 + i % 3) for i in range(6)]
            assert store.query_ids(PaperQuery(collections=["Staged"], files=["/x/b.jsonl"])) == []


def test_a_catalog_of_schema_4_gains_the_collections_table_on_open(mixed: Assistant, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(mixed.settings.home, home)
    with contextlib.closing(sqlite3.connect(home / "library.sqlite3")) as db, db:  # what schema 4 wrote
        db.execute("DROP TABLE paper_collections")
        db.execute("DROP INDEX paper_files_file_format")
        db.execute("CREATE INDEX paper_files_file ON paper_files(file)")
        db.execute("PRAGMA user_version=4")
    reopened = Assistant(home=home)
    assert reopened.store.catalog.schema_version() == SCHEMA_VERSION == 5
    assert reopened.library_facets() == mixed.library_facets()
    assert reopened.matching_papers(Filters(collections=["Thesis"])) == mixed.matching_papers(
        Filters(collections=["Thesis"]))
    with contextlib.closing(sqlite3.connect(home / "library.sqlite3")) as db:
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name='paper_files_file'").fetchone()
