"""The Zotero database read directly: fields, creators, dates, collections, tags and attachment paths; what is not a
paper (notes, attachments, annotations, the trash, feeds); reading while Zotero holds its lock, without changing a
byte; re-ingest after edits, additions and a trash; and `--collection` in search and ask."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from importlib import resources
from pathlib import Path

import pytest
import streamlit as st
from apptest import wait_answered
from hostile import run_cli
from streamlit.testing.v1 import AppTest
from zotero_library import LINKED_FILE, LINKED_URL, ZoteroLibrary

from assistant import Assistant
from assistant.corpus import discover_files, parse_file, zotero_db
from assistant.corpus.zotero_db import is_zotero_database, parse_zotero, read_zotero, zotero_digest
from assistant.errors import ParseError
from assistant.retrieve import Filters

APP = str(resources.files("assistant.ui").joinpath("app.py"))
ODD = "C++ & ML: 'odd' \"names\" ✓ #1? 50%/*"  # quotes, shell and LIKE/glob characters, non-ASCII


def sample(folder: Path) -> tuple[ZoteroLibrary, dict[str, int]]:
    """A personal library with one of each thing the reader must handle, a group library and a feed."""
    lib = ZoteroLibrary(folder)
    thesis = lib.collection("Thesis")
    chapter = lib.collection("Chapter 2", parent=thesis)
    odd = lib.collection(ODD)
    ids = {
        "article": lib.add(
            key="ABCD2345",
            title="Graph partitioning at scale",
            abstractNote="Graphs are partitioned by multilevel recursive bisection, which scales "
            "to sparse graphs with billions of edges.",
            date="2019-05-03 2019-05-03",
            publicationTitle="Journal of Graphs",
            DOI="10.1234/JG.2019.5",
            url="https://example.org/jg/5",
            extra="Citation Key: lovelace2019\narXiv: 1905.01234",
            creators=[
                ("Ada", "Lovelace", "author"),
                ("", "World Health Organization", "author"),
                ("Bob", "Redactor", "editor"),
                ("Grace", "Hopper", "author"),
            ],
            tags=["partitioning", "graphs"],
            collections=[chapter, odd],
        ),
        "chapter": lib.add(
            "bookSection",
            key="BOOK0003",
            title="Edited chapter on spectral cuts",
            date="2019-00-00 2019",
            bookTitle="Handbook of Cuts",
            creators=[("Eve", "Editor", "editor"), ("Sam", "Second", "editor")],
            collections=[thesis],
        ),
        "preprint": lib.add(
            "preprint",
            key="PREP0004",
            title="Streaming partitioners",
            abstractNote="A streaming method.",
            date="2021-01-00 January 2021",
            archiveID="arXiv:2101.00001",
            repository="arXiv",
            extra="DOI: 10.48550/arXiv.2101.00001",
            creators=[("Li", "Wei", "author")],
        ),
        "unparsed date": lib.add(title="A talk given in spring", date="0000-00-00 Spring term 2018"),
        "trashed": lib.add(key="TRSH0006", title="An item in the trash", abstractNote="Deleted by the user."),
        "group": lib.add(key="ABCD2345", library=2, title="The group's copy", abstractNote="Shared in a group."),
        "feed": lib.add(library=3, title="A feed entry", abstractNote="From an RSS feed."),
        "annotation": lib.add("annotation"),
        "empty": lib.add(key="EMPT0009"),
    }
    ids["note"] = lib.note(ids["article"], "My reading notes")
    ids["standalone note"] = lib.note(None, "A standalone note")
    lib.attach(ids["article"], "storage:Lovelace 2019 - Graph partitioning.pdf", key="ATT00001")
    lib.attach(ids["article"], "/home/ada/papers/linked copy.pdf", LINKED_FILE)
    lib.attach(ids["article"], None, LINKED_URL)
    lib.trash(lib.attach(ids["article"], "storage:old version.pdf", key="ATTOLD01"))
    ids["standalone attachment"] = lib.attach(None, "storage:loose.pdf", key="LOOSE001")
    lib.trash(ids["trashed"])
    return lib, ids


@pytest.fixture()
def library(tmp_path: Path) -> tuple[ZoteroLibrary, dict[str, int]]:
    return sample(tmp_path / "Zotero")


def by_key(path: Path) -> dict[str, object]:
    return {paper.paper_id: paper for paper in parse_zotero(path).papers}


def test_fields_creators_dates_and_ids(library: tuple[ZoteroLibrary, dict[str, int]]) -> None:
    lib, _ = library
    papers = by_key(lib.path)
    article = papers["zotero:1/ABCD2345"]
    assert article.title == "Graph partitioning at scale"
    assert article.abstract.startswith("Graphs are partitioned by multilevel recursive bisection")
    assert article.authors == ["Ada Lovelace", "World Health Organization", "Grace Hopper"]  # order kept, no editor
    assert (article.year, article.date) == (2019, "2019-05-03")
    assert article.venue == "Journal of Graphs"
    assert article.doi == "10.1234/jg.2019.5"
    assert article.arxiv_id == "1905.01234"  # from extra's "arXiv:" line
    assert article.url == "https://example.org/jg/5"
    assert article.sources[0].format == "zotero"

    chapter = papers["zotero:1/BOOK0003"]
    assert chapter.authors == ["Eve Editor", "Sam Second"]  # no author: listed by its editors
    assert (chapter.year, chapter.date) == (2019, None)  # "2019-00-00": the year only
    assert chapter.venue == "Handbook of Cuts" and not chapter.has_abstract  # stored without an abstract

    preprint = papers["zotero:1/PREP0004"]
    assert (preprint.year, preprint.date) == (2021, "2021-01")
    assert preprint.arxiv_id == "2101.00001" and preprint.doi == "10.48550/arxiv.2101.00001"  # archiveID, extra
    assert preprint.venue == "arXiv"

    spring = next(p for p in papers.values() if p.title == "A talk given in spring")
    assert spring.year == 2018  # Zotero could not parse it: read from the text as typed

    assert papers["zotero:2/ABCD2345"].title == "The group's copy"  # same key, other library: another paper


def test_notes_attachments_annotations_trash_and_feeds_are_not_papers(
    library: tuple[ZoteroLibrary, dict[str, int]]
) -> None:
    lib, _ = library
    result = parse_zotero(lib.path)
    titles = sorted(p.title for p in result.papers)
    assert titles == sorted(["Graph partitioning at scale", "Edited chapter on spectral cuts", "Streaming partitioners",
                             "A talk given in spring", "The group's copy"])
    assert [(s.label, s.reason) for s in result.skipped] == [("EMPT0009", "no title, abstract, DOI or arXiv id")]


def test_collections_tags_and_attachment_paths(library: tuple[ZoteroLibrary, dict[str, int]]) -> None:
    lib, _ = library
    papers = by_key(lib.path)
    article = papers["zotero:1/ABCD2345"]
    assert sorted(article.collections) == sorted(["Thesis/Chapter 2", ODD])
    assert papers["zotero:1/BOOK0003"].collections == ["Thesis"]
    assert article.keywords == ["graphs", "partitioning"]
    assert article.attachments == [  # stored file under storage/<attachment key>/, linked file as is; no URL, no trash
        str(lib.path.parent / "storage" / "ATT00001" / "Lovelace 2019 - Graph partitioning.pdf"),
        "/home/ada/papers/linked copy.pdf",
    ]


def test_a_data_folder_means_its_database_not_its_storage(tmp_path: Path) -> None:
    lib, _ = sample(tmp_path / "home" / "Zotero")
    storage = lib.path.parent / "storage" / "ATT00001"
    storage.mkdir(parents=True)
    (storage / ".zotero-ft-cache").write_text("full text of the PDF")
    (storage / "Lovelace 2019 - Graph partitioning.pdf").write_bytes(b"%PDF-1.7\n")
    (lib.path.parent / "zotero.sqlite.bak").write_bytes(lib.path.read_bytes())
    (lib.path.parent / "styles").mkdir()
    (lib.path.parent / "styles" / "apa.csl").write_text("<style/>")
    other = tmp_path / "home" / "refs.bib"
    other.write_text("@article{a, title={T}}\n")
    assert discover_files([lib.path.parent]) == [lib.path]
    assert sorted(discover_files([tmp_path / "home"])) == sorted([lib.path, other])
    assert parse_file(lib.path.parent / "zotero.sqlite").result.format == "zotero"


def test_other_sqlite_files_are_not_zotero(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE items (id INT)")
    db.close()
    assert not is_zotero_database(other)
    text = tmp_path / "zotero.sqlite"
    text.write_text("not a database")
    assert not is_zotero_database(text)
    with pytest.raises(ParseError, match="^not a Zotero database: no "):
        parse_zotero(other)


def test_read_while_zotero_holds_its_exclusive_lock_and_not_a_byte_changes(
    library: tuple[ZoteroLibrary, dict[str, int]]
) -> None:
    lib, _ = library
    zotero = sqlite3.connect(lib.path, isolation_level=None)
    zotero.execute("PRAGMA locking_mode = EXCLUSIVE")  # as Zotero runs: the lock is kept until it quits
    zotero.execute("BEGIN EXCLUSIVE")
    zotero.execute("UPDATE items SET synced = 0")
    zotero.execute("COMMIT")  # the exclusive lock stays held after the commit
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):  # the lock is real: a plain reader fails
            sqlite3.connect(f"file:{lib.path}?mode=ro", uri=True, timeout=0).execute("SELECT 1 FROM items").fetchall()
        before = hashlib.sha256(lib.path.read_bytes()).hexdigest()
        files = sorted(p.name for p in lib.path.parent.iterdir())
        digest, result = read_zotero(lib.path)
        assert "zotero:1/ABCD2345" in {p.paper_id for p in result.papers}
        assert hashlib.sha256(lib.path.read_bytes()).hexdigest() == before == digest
        assert sorted(p.name for p in lib.path.parent.iterdir()) == files  # no journal, log or lock file left
        zotero.execute("INSERT INTO deletedItems (itemID) SELECT itemID FROM items WHERE key = 'PREP0004'")
    finally:
        zotero.close()
    assert "zotero:1/PREP0004" not in by_key(lib.path)  # Zotero's write is seen by the next read


def test_a_write_during_the_read_means_reading_again(
    library: tuple[ZoteroLibrary, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    lib, ids = library
    reads = []

    def parse_while_zotero_writes(path: Path) -> object:
        result = parse_zotero(path)
        if not reads:
            lib.trash(ids["preprint"])  # Zotero trashes an item while the first read runs
        reads.append(path)
        return result

    monkeypatch.setattr(zotero_db, "parse_zotero", parse_while_zotero_writes)
    digest, result = read_zotero(lib.path)
    assert len(reads) == 2 and digest == zotero_digest(lib.path)
    assert "zotero:1/PREP0004" not in {p.paper_id for p in result.papers}

    def parse_while_zotero_always_writes(path: Path) -> object:
        lib.edit(ids["article"], extra=f"read {len(reads)}")
        reads.append(path)
        return parse_zotero(path)

    monkeypatch.setattr(zotero_db, "parse_zotero", parse_while_zotero_always_writes)
    with pytest.raises(ParseError, match="^Zotero database: Zotero kept writing to it while it was read; run ingest"):
        read_zotero(lib.path)


def test_changes_still_in_the_write_ahead_log_are_read(tmp_path: Path) -> None:
    lib = ZoteroLibrary(tmp_path / "Zotero")
    lib.add(key="OLD00001", title="Checkpointed item")
    zotero = sqlite3.connect(lib.path, isolation_level=None)
    zotero.execute("PRAGMA journal_mode = WAL")
    zotero.execute("PRAGMA wal_autocheckpoint = 0")
    zotero.execute("PRAGMA locking_mode = EXCLUSIVE")
    try:
        zotero.execute("INSERT INTO items (itemTypeID, libraryID, key) VALUES (6, 1, 'NEW00001')")
        zotero.execute("INSERT INTO itemDataValues (value) VALUES ('Only in the log')")
        zotero.execute("INSERT INTO itemData SELECT i.itemID, 1, v.valueID FROM items i, itemDataValues v "
                       "WHERE i.key = 'NEW00001' AND v.value = 'Only in the log'")
        wal = lib.path.with_name("zotero.sqlite-wal")
        assert wal.stat().st_size > 0
        before = hashlib.sha256(lib.path.read_bytes() + wal.read_bytes()).hexdigest()
        assert {p.title for p in parse_zotero(lib.path).papers} == {"Checkpointed item", "Only in the log"}
        assert hashlib.sha256(lib.path.read_bytes() + wal.read_bytes()).hexdigest() == before
    finally:
        zotero.close()


def test_zotero_4_database_is_refused_with_what_to_do(tmp_path: Path) -> None:
    lib = ZoteroLibrary(tmp_path / "Zotero")
    with sqlite3.connect(lib.path) as db:  # Zotero 4 kept names in creatorData, not in creators
        db.executescript(
            "DROP TABLE creators; CREATE TABLE creators (creatorID INTEGER PRIMARY KEY, creatorDataID INT);"
        )
    db.close()
    with pytest.raises(ParseError, match="Zotero 4 or older: open it once in Zotero 5"):
        parse_zotero(lib.path)


def test_reingest_picks_up_edits_additions_and_trash(tmp_path: Path) -> None:
    lib, ids = sample(tmp_path / "Zotero")
    home = Assistant(home=tmp_path / "home")
    first = home.ingest([lib.path.parent])
    assert not first.files_failed and first.new == 5
    stored = home.paper("zotero:1/ABCD2345")  # collections, tags and attachments survive the store
    assert sorted(stored.collections) == sorted(["Thesis/Chapter 2", ODD])
    assert stored.keywords == ["graphs", "partitioning"] and len(stored.attachments) == 2
    assert home.ingest([lib.path.parent]).files_unchanged == 1

    lib.edit(ids["article"], title="Graph partitioning at scale, revised")
    lib.add(key="NEWW0010", title="A new paper on hypergraphs", abstractNote="Hypergraph cuts.")
    lib.trash(ids["chapter"], ids["preprint"])  # 2 of 5 papers: over the 20% a truncated export may lose
    report = home.ingest([lib.path.parent])
    assert not report.files_failed, report.files_failed
    assert (report.new, report.updated, report.removed) == (1, 1, 2)
    ids_now = {p.paper_id for p in home.papers()}
    assert ids_now == {"zotero:1/ABCD2345", "zotero:1/NEWW0010", "zotero:2/ABCD2345",
                       next(p.paper_id for p in home.papers() if p.title == "A talk given in spring")}
    assert home.paper("zotero:1/ABCD2345").title == "Graph partitioning at scale, revised"


def test_collection_filter_in_both_retrievers(tmp_path: Path) -> None:
    lib, _ = sample(tmp_path / "Zotero")
    home = Assistant(home=tmp_path / "home")
    home.ingest([lib.path])

    def found(mode: str, *names: str) -> set[str]:
        filters = Filters(collections=list(names))
        return {hit.paper_id for hit in home.search("partitioning spectral cuts", k=10, filters=filters, mode=mode)}

    for mode in ("dense", "lexical"):
        assert found(mode, ODD) == {"zotero:1/ABCD2345"}, mode
        assert found(mode, "chapter 2") == {"zotero:1/ABCD2345"}, mode  # its own name, any case
        assert found(mode, "Thesis") == {"zotero:1/ABCD2345", "zotero:1/BOOK0003"}, mode  # and its subcollection
        assert found(mode, "Thesis/Chapter 2") == {"zotero:1/ABCD2345"}, mode
        assert found(mode, "Chapter") == set(), mode  # a name is matched whole, not as a substring
        assert found(mode, "Chapter 2", ODD) == {"zotero:1/ABCD2345"}, mode  # any of several
    assert "collection" in Filters(collections=["Thesis"]).describe()


def test_cli_search_and_ask_by_collection(tmp_path: Path) -> None:
    lib, _ = sample(tmp_path / "Zotero")
    home = tmp_path / "home"
    ingest = run_cli(home, "ingest", str(lib.path.parent))
    assert ingest.returncode == 0, ingest.stderr
    search = run_cli(home, "search", "graphs", "--collection", ODD, "--json")
    assert search.returncode == 0, search.stderr
    assert [hit["paper_id"] for hit in json.loads(search.stdout)] == ["zotero:1/ABCD2345"]
    ask = run_cli(home, "ask", "How are graphs partitioned?", "--collection", "Thesis", "--json",
                  LITASSIST_LLM_PROVIDER="offline")
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert [(step["args"].get("collections"), step["summary"]) for step in answer["steps"]] == [
        (["Thesis"], "2 papers")
    ]
    assert [c["paper_id"] for c in answer["citations"]] == ["zotero:1/ABCD2345"]


def test_parse_time_grows_linearly(tmp_path: Path) -> None:
    def seconds(n: int) -> float:
        lib = ZoteroLibrary(tmp_path / str(n))
        collection = lib.collection("All")
        with sqlite3.connect(lib.path) as db:  # bulk rows: the builder's one-commit-per-item is too slow here
            db.executemany("INSERT INTO items (itemID, itemTypeID, libraryID, key) VALUES (?, 6, 1, ?)",
                           [(i, f"B{i:07d}") for i in range(1, n + 1)])
            db.executemany("INSERT INTO itemDataValues (valueID, value) VALUES (?, ?)",
                           [(i, f"Title number {i} " + "word " * 50) for i in range(1, n + 1)])
            db.executemany("INSERT INTO itemData VALUES (?, 1, ?)", [(i, i) for i in range(1, n + 1)])
            db.executemany("INSERT INTO collectionItems (collectionID, itemID) VALUES (?, ?)",
                           [(collection, i) for i in range(1, n + 1)])
        db.close()
        times = []
        for _ in range(3):  # the best of three: the machine is shared, a slow run is noise, not the parser
            started = time.process_time()  # CPU time: other processes on the machine do not count
            assert len(parse_zotero(lib.path).papers) == n
            times.append(time.process_time() - started)
        return min(times)

    small, large = seconds(3000), seconds(6000)
    assert large / small < 3, (small, large)


def test_app_offers_the_librarys_collections_and_they_bound_the_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib, _ = sample(tmp_path / "Zotero")
    plain = tmp_path / "plain.bib"
    plain.write_text("@article{k1, title={Sparse matrices}, abstract={We store sparse matrices compactly.}}\n")
    Assistant(home=tmp_path / "bib-only").ingest([plain])
    home = tmp_path / "home"
    Assistant(home=home).ingest([lib.path])

    def app(library: Path) -> AppTest:
        monkeypatch.setenv("LITASSIST_HOME", str(library))
        monkeypatch.setenv("LITASSIST_LLM_PROVIDER", "offline")
        st.cache_resource.clear()
        return AppTest.from_file(APP, default_timeout=180).run()

    assert "collections" not in [widget.key for widget in app(tmp_path / "bib-only").sidebar.multiselect]
    at = app(home)
    picker = at.sidebar.multiselect(key="collections")
    assert picker.options == [ODD, "Thesis", "Thesis/Chapter 2"]
    picker.set_value(["Thesis"]).run()
    at.chat_input[0].set_value("How are graphs partitioned?").run()
    assert not at.exception, at.exception
    wait_answered(Assistant(home=home), at.session_state["conversation_id"])  # answered in the background
    turn = Assistant(home=home).conversation(at.session_state["conversation_id"]).turns[-1]
    assert turn.answer.steps[0].args["collections"] == ["Thesis"]
    assert {e.paper.paper_id for e in turn.answer.evidence} == {"zotero:1/ABCD2345", "zotero:1/BOOK0003"}


# ---------------------------------------------------------------- PDFs attached to items (../shared/pdfs)

PDFS = Path(__file__).resolve().parents[2] / "shared" / "pdfs"
SHORT = PDFS / "2304.02623v1.pdf"  # 4 pages
ACL = PDFS / "2020.acl-main.447.pdf"  # 15 pages
needs_pdfs = pytest.mark.skipif(not SHORT.exists(), reason="the shared PDFs (../shared/pdfs) are not here")


def with_pdfs(folder: Path) -> ZoteroLibrary:
    """An item whose PDF Zotero stores (a copy under storage/<attachment key>/), one with a linked PDF (its own
    absolute path) and one whose stored PDF was never downloaded to this computer."""
    lib = ZoteroLibrary(folder)
    stored = lib.add(key="STOR0001", title="Beyond Summarization", abstractNote="AI support for expository writing.")
    lib.attach(stored, "storage:Shen 2023 - Beyond Summarization.pdf", key="ATTPDF01")
    (folder / "storage" / "ATTPDF01").mkdir(parents=True)
    (folder / "storage" / "ATTPDF01" / "Shen 2023 - Beyond Summarization.pdf").write_bytes(SHORT.read_bytes())
    linked = lib.add(key="LINK0002", title="S2ORC: The Semantic Scholar Open Research Corpus",
                     abstractNote="A corpus of 81.1M English-language academic papers.")
    lib.attach(linked, str(ACL), LINKED_FILE)
    missing = lib.add(key="MISS0003", title="A paper whose PDF is elsewhere", abstractNote="Its PDF never synced.")
    lib.attach(missing, "storage:never synced.pdf", key="ATTMISS1")
    return lib


@needs_pdfs
def test_attached_pdfs_are_read_with_pages_and_a_missing_one_is_one_warning(tmp_path: Path) -> None:
    lib = with_pdfs(tmp_path / "Zotero")
    home = Assistant(home=tmp_path / "home")
    report = home.ingest([lib.path.parent])
    assert not report.files_failed and report.new == 3
    stored, linked = home.paper("zotero:1/STOR0001"), home.paper("zotero:1/LINK0002")
    assert stored.pdf is not None and stored.pdf.pages == 4
    assert stored.pdf.path == str(
        lib.path.parent.resolve() / "storage" / "ATTPDF01" / "Shen 2023 - Beyond Summarization.pdf"
    )
    assert linked.pdf is not None and linked.pdf.pages == 15 and linked.abstract.startswith("A corpus of 81.1M")
    hit = home.search("majority voting to select canonical metadata values", k=1)[0]
    assert hit.paper_id == "zotero:1/LINK0002" and hit.location["page"] == 3  # a body passage, with its page
    (warning,) = [w for w in report.warnings if "MISS0003" in w]
    assert "never synced.pdf" in warning and "no such file" in warning and "\n" not in warning
    assert (
        home.paper("zotero:1/MISS0003").abstract == "Its PDF never synced."
        and home.paper("zotero:1/MISS0003").pdf is None
    )


@needs_pdfs
def test_reimport_reads_unchanged_pdfs_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zotero rewrites its database on any edit, so a re-import parses every item again: the PDFs' text comes from
    the cache (by content hash), and only a PDF whose bytes changed is extracted again."""
    from assistant.corpus import pdf

    cache = tmp_path / "cache"
    monkeypatch.setenv(pdf.CACHE_ENV, str(cache))
    extracted: list[str] = []
    read_pdf = pdf.read_pdf
    monkeypatch.setattr(pdf, "read_pdf", lambda data, path: extracted.append(Path(path).name) or read_pdf(data, path))
    pdf._CACHE.clear()  # what earlier tests read
    lib = with_pdfs(tmp_path / "Zotero")
    home = Assistant(home=tmp_path / "home")
    home.ingest([lib.path.parent])
    assert sorted(extracted) == sorted(["Shen 2023 - Beyond Summarization.pdf", ACL.name])
    entries = {entry.name: entry.stat().st_mtime_ns for entry in (cache / "pdf-text").iterdir()}
    assert len(entries) == 2

    pdf._CACHE.clear()  # as in a new process
    extracted.clear()
    lib.add(key="NEWW0004", title="An item added in Zotero", abstractNote="The database changed.")
    report = home.ingest([lib.path.parent])
    assert extracted == [] and report.new == 1 and report.updated == 0
    assert {e.name: e.stat().st_mtime_ns for e in (cache / "pdf-text").iterdir()} == entries

    stored_file = lib.path.parent / "storage" / "ATTPDF01" / "Shen 2023 - Beyond Summarization.pdf"
    stored_file.write_bytes((PDFS / "papermage.pdf").read_bytes())  # the user replaced the PDF
    lib.edit(lib.add(key="NEWW0005", title="Another item"), abstractNote="Changed again.")
    report = home.ingest([lib.path.parent])
    assert extracted == [stored_file.name] and home.paper("zotero:1/STOR0001").pdf.pages == 13


@needs_pdfs
def test_a_damaged_cache_entry_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.corpus import pdf

    monkeypatch.setenv(pdf.CACHE_ENV, str(tmp_path / "cache"))
    pdf._CACHE.clear()
    first = pdf.read_source(SHORT.read_bytes(), str(SHORT))[0]
    (entry,) = (tmp_path / "cache" / "pdf-text").iterdir()
    pdf._CACHE.clear()
    again = pdf.read_source(SHORT.read_bytes(), str(SHORT))[0]  # from the entry: the same text and character map
    assert [(p.text, p.body, p.headings, p.chars) for p in again.pages] == \
        [(p.text, p.body, p.headings, p.chars) for p in first.pages]
    entry.write_bytes(entry.read_bytes()[:100])
    pdf._CACHE.clear()
    assert pdf.read_source(SHORT.read_bytes(), str(SHORT))[0].pages[0].text == first.pages[0].text
    assert len(entry.read_bytes()) > 100  # replaced by a whole entry
