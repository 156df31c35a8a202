"""Streamed ingest (JSONL a line at a time), the per-record limit, gzip, and what an unreadable file looks like."""

from __future__ import annotations

import gzip
import importlib
import io
import json
import sqlite3
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant
from assistant.config import Settings, load_settings
from assistant.corpus import parse_file
from assistant.corpus.exports import stream_jsonl
from assistant.errors import ParseError
from assistant.index.ingest import _merged_papers, _scan

MB = 2**20
ingest_module = importlib.import_module("assistant.index.ingest")  # the module: assistant.index.ingest is a function


class TinyEmbedder:
    """Instant 8-dimensional vectors: these tests are about reading and storing, not about embedding."""

    name = "tiny-test"

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        vectors = np.array([[len(t) % 7 + 1, t.count(" ") % 5 + 1, 1, 2, 3, 4, 5, 6] for t in texts], np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def record(i: int, **extra: object) -> dict:
    return {"id": f"r{i}", "title": f"Study {i} of streamed parsing", "abstract": f"We measure case {i} of a stream.",
            **extra}


def write_jsonl(path: Path, rows: list[dict], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + tail, encoding="utf-8")
    return path


def library(tmp_path: Path, **settings: object) -> Assistant:
    lib = Assistant(settings=load_settings(tmp_path / "home", **settings))
    lib.__dict__["embedder"] = TinyEmbedder()  # what Assistant.embedder (built once) returns from now on
    return lib


def test_jsonl_stream_maps_every_field_and_skips_non_objects() -> None:
    lines = [
        "\ufeff"
        + json.dumps(
            {
                "_id": "4983",
                "title": "White matter",
                "text": "Alterations of <i>white</i> matter.",
                "authors": ["Ada Lovelace", "Grace Hopper"],
                "year": 2019,
                "date": "2019-05-02",
                "journal": "Brain",
                "url": "https://arxiv.org/abs/1905.00001v2",
                "doi": "10.1000/XYZ.1",
            }
        )
        + "\r",
        "",
        "[1, 2]",
    ]
    first, skipped = list(stream_jsonl(lines, "c.jsonl"))
    assert (first.paper_id, first.title, first.abstract) == ("4983", "White matter", "Alterations of white matter.")
    assert first.authors == ["Ada Lovelace", "Grace Hopper"]
    assert (first.year, first.date, first.venue) == (2019, "2019-05-02", "Brain")
    assert (first.doi, first.arxiv_id, first.url) == ("10.1000/xyz.1", "1905.00001", "https://arxiv.org/abs/1905.00001v2")
    assert first.sources[0].position == 1 and skipped.position == 2 and skipped.reason == "not a JSON object"


def _traced_peak(path: Path) -> int:
    tracemalloc.start()
    scanned = _scan(path, "jsonl", stream_jsonl, 8 * MB)
    count = sum(1 for _ in _merged_papers(scanned))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == scanned.papers
    return peak


def test_reading_a_file_does_not_hold_its_records(tmp_path: Path) -> None:
    """Both passes over N and 4N records: the peak grows by the 12-byte key hashes a record keeps, not by the
    records (a held Paper costs over 1 KB)."""
    n = 10_000
    small = write_jsonl(tmp_path / "small.jsonl", [record(i) for i in range(n)])
    big = write_jsonl(tmp_path / "big.jsonl", [record(i) for i in range(4 * n)])
    growth = _traced_peak(big) - _traced_peak(small)
    assert growth < 3 * n * 100, f"{growth} bytes more for {3 * n} more records"


def test_one_huge_line_is_refused_naming_it_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps(record(1)) + "\n" + json.dumps(record(2)) + "\n")
        out.write('{"abstract": "' + "x" * (20 * MB) + '"}\n')
    tracemalloc.start()
    with pytest.raises(ParseError, match=r"line 3 is over the 1\.0 MB limit .*LITASSIST_MAX_RECORD_MB"):
        _scan(path, "jsonl", stream_jsonl, 1 * MB)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 6 * MB


def test_a_streamed_file_has_no_file_size_limit_but_a_record_limit(tmp_path: Path) -> None:
    rows = [record(i, abstract="word " * 130) for i in range(2000)]  # ~1.4 MB, over a 1 MB file limit
    lib = library(tmp_path, max_file_mb=1, max_record_mb=1)
    report = lib.ingest([write_jsonl(tmp_path / "big.jsonl", rows)])
    assert not report.files_failed and report.new == 2000 == lib.store.paper_count()
    report = lib.ingest([write_jsonl(tmp_path / "huge.jsonl", [record(1, abstract="word " * 300_000)])])
    assert [f.reason[:37] for f in report.files_failed] == ["line 1 is over the 1.0 MB limit for o"]


def test_a_malformed_last_record_stores_nothing(tmp_path: Path) -> None:
    lib = library(tmp_path)
    path = write_jsonl(tmp_path / "cut.jsonl", [record(i) for i in range(600)], tail='{"id": "r600", "title": "Cu')
    report = lib.ingest([path])
    assert len(report.files_failed) == 1 and "invalid JSON on line 601" in report.files_failed[0].reason
    assert lib.store.paper_count() == 0 and lib.store.chunk_count() == 0 and lib.store.source_count() == 0


def test_reingest_skips_unchanged_guards_removals_and_merges_duplicates(tmp_path: Path) -> None:
    lib = library(tmp_path)
    rows = [record(i) for i in range(20)]
    dupes = [{"title": "Same paper", "abstract": "One abstract.", "doi": "10.1234/same"},
             {"title": "Same paper", "abstract": "One abstract, longer.", "doi": "10.1234/SAME", "year": 2020}]
    path = write_jsonl(tmp_path / "lib.jsonl", rows + dupes)
    first = lib.ingest([path])
    assert (first.new, first.merged_duplicates) == (21, 1)
    merged = lib.store.get_papers(["doi:10.1234/same"])["doi:10.1234/same"]
    assert (merged.abstract, merged.year, [s.position for s in merged.sources]) == (
        "One abstract, longer.",
        2020,
        [21, 22],
    )
    assert lib.ingest([path]).files_unchanged == 1

    write_jsonl(path, rows[:10])
    refused = lib.ingest([path])
    assert "would remove 11 of the 21 papers" in refused.files_failed[0].reason and lib.store.paper_count() == 21
    done = lib.ingest([path], allow_removals=True)
    assert (done.removed, done.unchanged, lib.store.paper_count()) == (11, 10, 10)


def test_a_file_changed_between_the_passes_stores_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = library(tmp_path)
    path = write_jsonl(tmp_path / "moving.jsonl", [record(i) for i in range(600)])
    original = ingest_module._write_new

    def edit_then_write(*args: object, **kwargs: object) -> object:
        write_jsonl(path, [record(i + 1) for i in range(600)])
        return original(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_write_new", edit_then_write)
    report = lib.ingest([path])
    assert "changed while it was being read" in report.files_failed[0].reason
    assert lib.store.paper_count() == 0 and lib.store.chunk_count() == 0
    assert lib.store.vectors.count("chunks") == 0  # what it had staged is gone, vectors too


BIB = "@article{key1, title={Gzipped {BibTeX}}, author={Doe, Jane and Roe, Rick}, year={2021}, abstract={Packed.}}\n"


def test_gzip_files_are_read_as_they_are(tmp_path: Path) -> None:
    lib = library(tmp_path)
    (tmp_path / "refs.bib.gz").write_bytes(gzip.compress(BIB.encode()))
    (tmp_path / "corpus.jsonl.gz").write_bytes(gzip.compress(b"".join(json.dumps(record(i)).encode() + b"\n"
                                                                      for i in range(3))))
    (tmp_path / "no-extension").write_bytes(gzip.compress(json.dumps(record(9)).encode() + b"\n"))
    files = [tmp_path / name for name in ("refs.bib.gz", "corpus.jsonl.gz", "no-extension")]
    report = lib.ingest(files)
    assert not report.files_failed and report.papers_by_format == {"bibtex": 1, "jsonl": 4}
    bib = next(p for p in lib.papers() if p.title == "Gzipped BibTeX")
    assert (bib.authors, bib.year, bib.abstract) == (["Jane Doe", "Rick Roe"], 2021, "Packed.")
    assert lib.ingest(files).files_unchanged == 3


def test_gzip_bombs_are_bounded(tmp_path: Path) -> None:
    lib = library(tmp_path, max_file_mb=1, max_record_mb=1)
    (tmp_path / "bomb.bib.gz").write_bytes(gzip.compress((BIB + "%" + " " * (3 * MB) + "\n").encode()))
    (tmp_path / "bomb.jsonl.gz").write_bytes(gzip.compress(b'{"abstract": "' + b"a" * (30 * MB) + b'"}\n'))
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(json.dumps(record(1)).encode() * 2000)[:-200])
    report = lib.ingest([tmp_path / "bomb.bib.gz", tmp_path / "bomb.jsonl.gz", tmp_path / "cut.jsonl.gz"])
    reasons = {Path(f.file).name: f.reason for f in report.files_failed}
    assert "decompresses to over the 1.0 MB limit" in reasons["bomb.bib.gz"]
    assert reasons["bomb.jsonl.gz"].startswith("line 1 is over the 1.0 MB limit")
    assert "gzip file is damaged or cut short" in reasons["cut.jsonl.gz"]
    assert lib.store.paper_count() == 0


def _zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:  # a fixed date: the bytes are part of the test's id, which xdist's workers must agree on
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), "<x/>")
    return buffer.getvalue()


def _sqlite(path: Path) -> bytes:
    with sqlite3.connect(path) as db:
        db.execute("create table items (itemID integer)")
    return path.read_bytes()


@pytest.mark.parametrize(("name", "content", "words"), [
    ("refs.xlsx", _zip("[Content_Types].xml", "xl/workbook.xml"), "an Excel workbook (.xlsx): save it as CSV"),
    ("refs.docx", _zip("[Content_Types].xml", "word/document.xml"), "a Word document"),
    ("refs.zip", _zip("a.bib", "b.ris"), "a ZIP archive: unzip it"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "an Excel 97-2003 workbook (.xls)"),
    ("scan.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "an image"),
    ("scan.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(64), "an image"),
    ("refs.bib.bz2", b"BZh91AY&SY" + bytes(64), "a bzip2-compressed file: decompress it"),
    ("page.html", b"<!DOCTYPE html>\n<html><head><title>Results</title></head><body>x</body></html>\n",
     "an HTML page: save the page's references"),
])
def test_unreadable_files_say_what_they_look_like(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ParseError, match="looks like " + words.replace("(", r"\(").replace(")", r"\)")):
        parse_file(path)


def test_a_sqlite_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with pytest.raises(ParseError, match="looks like a SQLite database"):
        parse_file(path, data=_sqlite(path))


def test_nul_bytes_after_the_first_8_kb_are_refused(tmp_path: Path) -> None:
    bib = tmp_path / "late.bib"
    bib.write_bytes((BIB * 200).encode() + b"\x00" + BIB.encode())
    with pytest.raises(ParseError, match=f"binary file \\(a NUL byte at offset {len(BIB) * 200}\\)"):
        parse_file(bib)
    lib = library(tmp_path)
    jsonl = tmp_path / "late.jsonl"
    jsonl.write_bytes(b"".join(json.dumps(record(i)).encode() + b"\n" for i in range(300)) + b'{"x": "\x00"}\n')
    report = lib.ingest([jsonl])
    assert "a NUL byte on line 301" in report.files_failed[0].reason and lib.store.paper_count() == 0


def test_jsonl_stream_time_is_linear() -> None:
    def seconds(n: int) -> float:
        lines = [json.dumps(record(i)) for i in range(n)] + [""] * n
        started = time.perf_counter()
        for _ in stream_jsonl(lines, "t.jsonl"):
            pass
        return time.perf_counter() - started

    seconds(500)
    assert seconds(8000) / seconds(4000) < 3


def test_record_limit_is_a_setting() -> None:
    assert Settings().max_record_mb == 8
