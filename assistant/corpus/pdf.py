"""PDF full text with pypdfium2 (Apache-2.0/BSD, CPU-only, character boxes, page rendering).

A page's text is built from pdfium's characters: lines (pdfium's own line ends, a superscript glued back on its
line), two-column pages read left column then right column between full-width lines, line-end hyphens joined,
NFKC. Each character of a page's text remembers the pdfium character it came from, so a span of the text maps
back to boxes on the page. Running headers and footers (a line repeated at the top or bottom of most pages, a
bare page number) and the arXiv margin stamp are moved to the page's start or end and left out of its body;
footnotes (smaller type below a column's last line of body type) and the references section are left out of
the body too. The body is what is embedded and cited; the whole page
text is kept for display.

pdfium is not thread-safe: every call into it holds `_PDFIUM` (the app renders while an ingest may run).
Measured on the shared papers (benchmarks/pdf_ingest.py): ~40-60 pages/s on one core.

What was read is kept twice, both keyed by the PDF's SHA-256: in memory (the last 256 PDFs: parsing, chunking and
the app reuse it within a process) and on disk (`pdf_cache_folder()`: a re-import of a Zotero library or an export
whose PDFs did not change reads ~2.5 KB of gzipped JSON a page: ~40x faster than extracting the page again).
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import gzip
import hashlib
import io
import json
import logging
import os
import re
import threading
import unicodedata
import zlib
from array import array
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

from ..errors import ParseError
from .records import Paper, ParseResult, PdfSource, SourceRef, find_arxiv_id, find_doi, make_paper

log = logging.getLogger("litassist.corpus")

PDF_MAGIC = b"%PDF-"
FORMAT = "pdf"
_PDFIUM = threading.RLock()
_LINE_END = {10, 13}
_SOFT_HYPHENS = {0x02, 0xAD}
_EDGE_SHARE = 0.09  # a running header or footer sits in the top or bottom 9% of the page (ACL page numbers: 7.6%)
_REPEATED_SHARE = 0.4  # ... and repeats (digits aside) on at least this share of the pages
_ABSTRACT_MAX_CHARS = 4000
_HEADING = re.compile(r"(?:\d{1,2}(?:\.\d{1,2})*\.?|[A-Z](?:\.\d{1,2})*\.?|[IVX]{1,4}\.)\s+[A-Z][^.,;:]{1,80}")
_NAMED_HEADINGS = re.compile(
    r"(?:abstract|introduction|background|related work|methods?|materials and methods|results|discussion|"
    r"conclusions?|limitations|acknowledge?ments|references|bibliography|appendix(?: [a-z])?|ethics statement)",
    re.IGNORECASE)
_REFERENCES = re.compile(r"(?:\d{1,2}\.?\s+)?(?:references|bibliography|literature cited)", re.IGNORECASE)
_AFTER_REFERENCES = re.compile(r"(?:appendix|supplementary)\b.*|[A-Z](?:\.\d{1,2})*\.?\s+[A-Z][^.,;:]{1,80}",
                               re.IGNORECASE)
_WORD_END = re.compile(r"\w$")


@dataclass
class PageText:
    """One page: `text` (all of it, reading order) for display, `body` ranges of it that are embedded and cited,
    `headings` (offset, heading) found in it, and `chars[i]`: the pdfium character of `text[i]` (-1: a space or
    line break we wrote)."""

    number: int
    text: str
    body: list[tuple[int, int]]
    headings: list[tuple[int, str]]
    chars: array
    width: float
    height: float


@dataclass
class PdfText:
    """A PDF's text by page, with what was found of its metadata."""

    path: str
    sha256: str
    pages: list[PageText]
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    doi: str | None = None
    arxiv_id: str | None = None
    abstract: str = ""
    empty_pages: int = 0

    def body(self) -> BodyText:
        return BodyText.of(self)


@dataclass
class BodyText:
    """The body of every page joined into one text (ranges joined by a space, so a sentence that runs over a page
    break reads whole), with the map from its offsets back to (page, offset on that page)."""

    text: str
    starts: list[int]  # offset in `text` where each segment starts
    segments: list[tuple[int, int, int]]  # (page number, start, end on that page)
    headings: list[tuple[int, str]]  # (offset in `text`, heading)
    heading_starts: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, pdf: PdfText) -> BodyText:
        parts, starts, segments, headings, offset = [], [], [], [], 0
        for page in pdf.pages:
            for start, end in page.body:
                if start >= end:
                    continue
                starts.append(offset)
                segments.append((page.number, start, end))
                headings += [(offset + at - start, name) for at, name in page.headings if start <= at < end]
                parts.append(page.text[start:end])
                offset += end - start + 1
        return cls(" ".join(parts), starts, segments, headings)

    def locate(self, offset: int) -> tuple[int, int]:
        """(page number, offset on that page) of a body offset (the joining space counts to the page before)."""
        index = max(0, bisect.bisect_right(self.starts, offset) - 1)
        page, start, end = self.segments[index]
        return page, min(start + offset - self.starts[index], end)

    def pieces(self, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        """(page, start, end on that page) of each page a body range [start, end) lies on."""
        first = max(0, bisect.bisect_right(self.starts, start) - 1)
        for index in range(first, len(self.segments)):
            seg_start = self.starts[index]
            page, page_start, page_end = self.segments[index]
            low, high = max(start, seg_start), min(end, seg_start + page_end - page_start)
            if seg_start >= end:
                break
            if low < high:
                yield page, page_start + low - seg_start, page_start + high - seg_start

    def section_at(self, offset: int) -> str | None:
        """The heading the offset lies under (headings are in reading order)."""
        if len(self.heading_starts) != len(self.headings):
            self.heading_starts = [at for at, _ in self.headings]
        index = bisect.bisect_right(self.heading_starts, offset) - 1
        return self.headings[index][1] if index >= 0 else None


# --- reading -----------------------------------------------------------------------------------------------


@dataclass
class _Line:
    """A line of pdfium characters: each one's text (after NFKC, one entry per output character) and index, and
    the line's box (PDF points, origin bottom-left) and largest font size."""

    text: list[str]
    chars: list[int]
    x0: float = 1e9
    x1: float = -1e9
    bottom: float = 1e9
    top: float = -1e9
    size: float = 0.0
    rotated: bool = False

    @property
    def string(self) -> str:
        return "".join(self.text).strip()

    @property
    def empty(self) -> bool:
        return self.x1 < self.x0


@functools.lru_cache(maxsize=4096)
def _normalized(code: int) -> str:
    """A character as it goes into the text: NFKC ("ﬁ" -> "fi"), control and format characters dropped."""
    char = chr(code) if 0 <= code < 0x110000 else ""
    if not char or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
        return ""
    return unicodedata.normalize("NFKC", char)


def _page_lines(page: object) -> list[_Line]:
    """pdfium's lines of a page, in its order, with a superscript's line glued back onto the line it sits on.
    pdfium is called directly per character (the helpers' per-call allocations were a third of the time)."""
    from pypdfium2 import raw

    textpage = page.get_textpage()  # type: ignore[attr-defined]
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    box_args = (ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top))
    try:
        handle = textpage.raw
        count = textpage.count_chars()
        codes = [raw.FPDFText_GetUnicode(handle, index) for index in range(count)]
        lines: list[_Line] = []
        line = _Line([], [])
        for index, code in enumerate(codes):
            if code in _SOFT_HYPHENS and index + 1 < count and chr(codes[index + 1]).isalpha():
                continue  # pdfium joined a word hyphenated at a line end and left the hyphen as 0x02: drop it
            if code in _LINE_END:
                if line.text:
                    lines.append(line)
                    line = _Line([], [])
                continue
            text = "\u00ad" if code in _SOFT_HYPHENS else " " if code == 32 else _normalized(code)
            if not text:
                continue
            if text != " ":
                raw.FPDFText_GetCharBox(handle, index, *box_args)
                if right.value > left.value or top.value > bottom.value:
                    line.x0, line.x1 = min(line.x0, left.value), max(line.x1, right.value)
                    line.bottom, line.top = min(line.bottom, bottom.value), max(line.top, top.value)
                    line.size = max(line.size, raw.FPDFText_GetFontSize(handle, index))
                    line.rotated = line.rotated or raw.FPDFText_GetCharAngle(handle, index) != 0.0
            for piece in text:
                line.text.append(piece)
                line.chars.append(index)
        if line.text:
            lines.append(line)
    finally:
        textpage.close()
    return _glue_superscripts([line for line in lines if line.string and not line.empty])


def _glue_superscripts(lines: list[_Line]) -> list[_Line]:
    """pdfium ends a line at a raised footnote mark ("S2ORC,¹" / "a large corpus of"): a line that continues to
    the right on the same baseline is the same line."""
    glued: list[_Line] = []
    for line in lines:
        last = glued[-1] if glued else None
        if (last is not None and not last.rotated and not line.rotated
                and line.x0 >= last.x1 - 1 and line.x0 - last.x1 < 2 * max(last.size, line.size, 1)
                and min(last.top, line.top) - max(last.bottom, line.bottom) > 0.3 * min(last.size, line.size)):
            last.text.append(" ")
            last.chars.append(-1)
            for text, index in zip(line.text, line.chars):
                last.text.append(text)
                last.chars.append(index)
            last.x0, last.x1 = min(last.x0, line.x0), max(last.x1, line.x1)
            last.bottom, last.top = min(last.bottom, line.bottom), max(last.top, line.top)
            last.size = max(last.size, line.size)
        else:
            glued.append(line)
    return glued


def _sides(lines: list[_Line], width: float) -> list[str]:
    """Each line's place: "left" or "right" of the middle of the page's text, or "full" (across it)."""
    left_edge, right_edge = min(line.x0 for line in lines), max(line.x1 for line in lines)
    middle, slack = (left_edge + right_edge) / 2, 0.02 * width
    return ["left" if line.x1 <= middle + slack else "right" if line.x0 >= middle - slack else "full"
            for line in lines]


def _reading_order(lines: list[_Line], width: float) -> list[_Line]:
    """Top to bottom; on a two-column page, between lines that cross the gutter, the left column then the right.
    A page is two-column when at least a fifth of its lines lie wholly on each side of the middle."""
    if not lines:
        return []
    side = _sides(lines, width)
    by_top = sorted(range(len(lines)), key=lambda i: -lines[i].top)
    if min(side.count("left"), side.count("right")) < 0.2 * len(lines):
        return [lines[i] for i in by_top]
    ordered: list[_Line] = []
    band: dict[str, list[int]] = {"left": [], "right": []}
    for i in by_top:
        if side[i] == "full":
            ordered += [lines[j] for j in band["left"] + band["right"]]
            band = {"left": [], "right": []}
            ordered.append(lines[i])
        else:
            band[side[i]].append(i)
    return ordered + [lines[j] for j in band["left"] + band["right"]]


def _footnotes(lines: list[_Line], width: float, body_size: float) -> list[_Line]:
    """Lines in smaller type below the last line of body type on their side of the page: footnotes, which would
    otherwise cut a sentence that runs on into the next column or page."""
    if not lines:
        return []
    side = _sides(lines, width)
    lowest: dict[str, float] = {}
    for line, place in zip(lines, side):
        if round(line.size) >= body_size:
            lowest[place] = min(lowest.get(place, line.bottom), line.bottom)
    floor = {place: min(lowest.get(place, 1e9), lowest.get("full", 1e9)) for place in ("left", "right", "full")}
    return [line for line, place in zip(lines, side) if line.size < 0.9 * body_size and line.top <= floor[place] + 1]


def _is_heading(line: _Line, body_size: float) -> bool:
    text = line.string
    words = len(text.split())
    if (
        len(text) > 90
        or words > 10
        or text.endswith((".", ",", ";", ":"))
        or (re.match(r"\d+\.\s", text) and words > 5)
    ):
        return False  # "1. We propose ..." is a list item, not a heading
    if _NAMED_HEADINGS.fullmatch(re.sub(r"^\d{1,2}\.?\s+", "", text)):
        return True
    return bool(_HEADING.fullmatch(text)) and line.size >= body_size * 0.95


def _edge_key(line: _Line) -> str:
    return re.sub(r"\d+", "#", line.string).lower()


def _at_edge(line: _Line, height: float) -> bool:
    return line.bottom > height * (1 - _EDGE_SHARE) or line.top < height * _EDGE_SHARE


@dataclass
class _Builder:
    """A page's text and its character map, written line by line."""

    text: list[str] = field(default_factory=list)
    chars: list[int] = field(default_factory=list)
    headings: list[tuple[int, str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.text)

    def write(self, text: str, index: int = -1) -> None:
        self.text.append(text)
        self.chars.append(index)

    def line(self, line: _Line, joiner: str) -> None:
        """Append a line after `joiner` (" " or "\n"); a line-end hyphen before a lower-case letter is joined."""
        if self.text and self.text[-1] in ("-", "\u00ad") and len(self.text) > 1 and self.text[-2].isalpha() \
                and line.string[:1].islower() and joiner == " ":
            self.text.pop()
            self.chars.pop()
        elif self.text:
            if self.text[-1] == "\u00ad":
                self.text[-1] = "-"
            if self.text[-1] not in (" ", "\n"):
                self.write(joiner)
        first = next((i for i, text in enumerate(line.text) if text != " "), len(line.text))
        last = next((i for i in range(len(line.text) - 1, -1, -1) if line.text[i] != " "), -1)
        for text, index in zip(line.text[first : last + 1], line.chars[first : last + 1]):
            if text == " " and self.text and self.text[-1] == " ":
                continue
            self.write(text, index)

    def finish(self) -> tuple[str, array]:
        if self.text and self.text[-1] == "\u00ad":
            self.text[-1] = "-"
        return "".join(self.text), array("i", self.chars)


def _page_text(number: int, lines: list[_Line], edges: set[str], width: float, height: float) -> PageText:
    """The page's text: edge lines (running headers and footers, the margin stamp) first and last, the body
    in reading order between them, headings on lines of their own, a paragraph break at a wide vertical gap."""
    top = [line for line in lines if line.rotated or (_at_edge(line, height) and line.bottom > height / 2
                                                      and _edge_key(line) in edges)]
    bottom = [line for line in lines if not line.rotated and _at_edge(line, height) and line.top < height / 2
              and line.bottom <= height / 2 and _edge_key(line) in edges]
    edge = {id(line) for line in top + bottom}
    rest = [line for line in lines if id(line) not in edge]
    sizes = Counter(round(line.size) for line in rest)
    body_size = sizes.most_common(1)[0][0] if sizes else 0.0
    notes = _footnotes(rest, width, body_size)
    noted = {id(line) for line in notes}
    body = _reading_order([line for line in rest if id(line) not in noted], width)
    bottom = _reading_order(notes, width) + bottom
    out = _Builder()
    for line in top:
        out.line(line, "\n")
    if out.size:
        out.write("\n")
    body_start = out.size
    previous: _Line | None = None
    previous_heading = False
    for line in body:
        heading = _is_heading(line, body_size)
        gap = previous is not None and previous.bottom - line.top > 0.9 * max(previous.size, line.size) \
            and previous.x0 <= line.x1 and line.x0 <= previous.x1  # a wide gap within one column
        out.line(line, "\n" if heading or previous_heading or gap else " ")
        if heading:
            out.headings.append((out.size - len(line.string), line.string))
        previous, previous_heading = line, heading
    body_end = out.size
    for line in bottom:
        out.line(line, "\n")
    text, chars = out.finish()
    return PageText(number, text, [(body_start, body_end)] if body_end > body_start else [], out.headings, chars,
                    width, height)


def _running_edges(pages: list[list[_Line]], heights: list[float]) -> set[str]:
    """Edge-line keys (digits as '#') seen on enough pages to be running headers or footers; a bare page number
    always is one."""
    seen: Counter[str] = Counter()
    for lines, height in zip(pages, heights):
        seen.update({_edge_key(line) for line in lines if _at_edge(line, height)})
    needed = max(2, _REPEATED_SHARE * len(pages))
    return {key for key, count in seen.items() if count >= needed or re.fullmatch(r"[#\s\-–—]+|page #( of #)?", key)}


def _drop_references(pages: list[PageText]) -> None:
    """Cut the references section out of the body: from its heading to the first appendix heading after it (or
    the end); the text stays on the page for display."""
    inside = False
    for page in pages:
        kept: list[tuple[int, int]] = []
        for start, end in page.body:
            cursor = start
            for at, name in page.headings:
                if not start <= at < end:
                    continue
                if not inside and _REFERENCES.fullmatch(name):
                    if at > cursor:
                        kept.append((cursor, at))
                    inside = True
                elif inside and _AFTER_REFERENCES.fullmatch(name) and not _REFERENCES.fullmatch(name):
                    inside, cursor = False, at
            if not inside and cursor < end:
                kept.append((cursor, end))
        page.body = kept


def _drop_front_matter(first: PageText) -> None:
    """Title, authors and abstract are the paper's record, not its body: the first page's body starts at the
    heading after "Abstract" (when there is one)."""
    named = [at for at, name in first.headings if name.lower() == "abstract"]
    following = [at for at, _ in first.headings if named and at > named[0]]
    if following:
        first.body = [(max(start, following[0]), end) for start, end in first.body if end > following[0]]


def _damaged(error: Exception) -> ParseError:
    return ParseError(f"a damaged or truncated PDF ({error}): it cannot be read; download or save it again")


def _open(data: bytes, path: str) -> object:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        if "password" in str(error).lower():
            raise ParseError("an encrypted (password-protected) PDF: its text cannot be read; save a copy without "
                             "the password and ingest that") from None
        raise _damaged(error) from None


def read_pdf(data: bytes, path: str) -> PdfText:
    """The text of a PDF's pages, or a one-line ParseError (encrypted, damaged, no text layer)."""
    import pypdfium2 as pdfium

    sha256 = hashlib.sha256(data).hexdigest()
    with _PDFIUM:
        document = _open(data, path)
        try:
            raw_pages, sizes = [], []
            for index in range(len(document)):  # type: ignore[arg-type]
                page = document[index]  # type: ignore[index]
                try:
                    sizes.append(page.get_size())
                    raw_pages.append(_page_lines(page))
                finally:
                    page.close()
            info = document.get_metadata_dict(skip_empty=True)  # type: ignore[attr-defined]
        except pdfium.PdfiumError as error:
            raise _damaged(error) from None
        finally:
            document.close()  # type: ignore[attr-defined]
    if not raw_pages:
        raise ParseError("a PDF without pages: it may be cut short; download or save it again")
    if not any(raw_pages):
        counted = f"{len(raw_pages)} page{'s' if len(raw_pages) > 1 else ''}"
        raise ParseError(f"a PDF without a text layer ({counted} of images only: a scan?): run OCR on it "
                         "(e.g. ocrmypdf) and ingest the result")
    edges = _running_edges(raw_pages, [h for _, h in sizes])
    pages = [_page_text(n, lines, edges, w, h) for n, (lines, (w, h)) in enumerate(zip(raw_pages, sizes), 1)]
    _drop_references(pages)
    _drop_front_matter(pages[0])
    pdf = PdfText(path=path, sha256=sha256, pages=pages, empty_pages=sum(not lines for lines in raw_pages))
    _metadata(pdf, info, raw_pages[0] if raw_pages else [])
    return pdf


_JUNK_TITLE = re.compile(r"(?:microsoft word|untitled|\S+\.(?:dvi|docx?|pdf|tex))\b", re.IGNORECASE)


def _metadata(pdf: PdfText, info: dict[str, str], first_page: list[_Line]) -> None:
    """Title from the document info (unless it is a file name or blank), else the first page's largest type in
    its upper half; authors from the document info; DOI and arXiv id found in the first pages' text; the
    abstract: the first page's text after an "Abstract" heading, up to the next heading."""
    title = " ".join(info.get("Title", "").split())
    if not title or _JUNK_TITLE.match(title) or len(title) < 8:
        upper = [line for line in first_page if not line.rotated and line.top > pdf.pages[0].height / 2]
        largest = max((line.size for line in upper), default=0)
        title = " ".join(line.string for line in upper if line.size >= largest - 0.5 and largest > 0)
    pdf.title = title[:300] or None
    pdf.authors = [name.strip() for name in re.split(r"\s*(?:;|,|\band\b)\s*", info.get("Author", "")) if name.strip()]
    head = pdf.pages[0].text  # a DOI further on is more likely a cited paper's
    pdf.doi = find_doi(head)
    stamp = re.search(r"arXiv:\s*(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})", head)
    pdf.arxiv_id = find_arxiv_id(stamp.group(1)) if stamp else None
    date = re.match(r"D:(\d{4})", info.get("CreationDate", ""))
    pdf.year = int(date.group(1)) if date else None
    first = pdf.pages[0]
    named = [(at, name) for at, name in first.headings if name.lower() == "abstract"]
    if named:
        start = named[0][0] + len(named[0][1])
        following = [at for at, _ in first.headings if at > start]
        pdf.abstract = " ".join(first.text[start : following[0] if following else None].split())[:_ABSTRACT_MAX_CHARS]


# --- the cache, papers, boxes and images ---------------------------------------------------------------------


_CACHE: OrderedDict[str, PdfText] = OrderedDict()
_CACHE_SIZE = 256  # ~0.3 MB each (text and character map): an ingest re-reads a PDF only past this many
CACHE_ENV = "LITASSIST_PDF_CACHE"  # the environment variable of `Settings.pdf_cache` (tests point it elsewhere)


def _remember(pdf: PdfText) -> PdfText:
    with _PDFIUM:
        _CACHE[pdf.sha256] = pdf
        _CACHE.move_to_end(pdf.sha256)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return pdf


def pdf_cache_folder() -> Path:
    """Where the text of every PDF read is kept: `LITASSIST_PDF_CACHE` (the environment or .env), by default the
    user's cache folder. Not the library's home: parsing knows no home (one PDF in two libraries is read once),
    and the entries are derived data that may be deleted at any time."""
    return _cache_folder(os.environ.get(CACHE_ENV), os.getcwd())


@functools.lru_cache(maxsize=8)
def _cache_folder(variable: str | None, working_folder: str) -> Path:
    """Settings take ~5 ms to read (.env included): read once per value of the variable and working folder (where
    .env is found), not once per PDF."""
    from ..config import Settings

    return Settings().pdf_cache / "pdf-text"


@functools.cache
def _extractor_version() -> str:
    """This reader's source and pdfium's version: a cache entry written by another version of either is read
    again (and overwritten), so a fix to the extraction reaches every cached PDF."""
    from importlib.metadata import version

    return hashlib.sha256(Path(__file__).read_bytes() + version("pypdfium2").encode()).hexdigest()[:16]


def _deltas(values: array) -> list[int]:
    """A character map as differences (mostly 1s: gzip makes ~7x less of them than of the indices)."""
    return [value - previous for previous, value in zip([0, *values], values)]


def _cache_entry(pdf: PdfText) -> dict:
    pages = [{"number": p.number, "text": p.text, "body": p.body, "headings": p.headings, "chars": _deltas(p.chars),
              "width": p.width, "height": p.height} for p in pdf.pages]
    return {"version": _extractor_version(), "sha256": pdf.sha256, "title": pdf.title, "authors": pdf.authors,
            "year": pdf.year, "doi": pdf.doi, "arxiv_id": pdf.arxiv_id, "abstract": pdf.abstract,
            "empty_pages": pdf.empty_pages, "pages": pages}


def _from_entry(entry: dict, path: str) -> PdfText:
    pages = []
    for page in entry["pages"]:
        pages.append(PageText(page["number"], page["text"], [tuple(r) for r in page["body"]],
                              [tuple(h) for h in page["headings"]], array("i", accumulate(page["chars"])),
                              page["width"], page["height"]))
    fields = {name: entry[name] for name in ("sha256", "title", "authors", "year", "doi", "arxiv_id", "abstract",
                                             "empty_pages")}
    return PdfText(path=path, pages=pages, **fields)


def _cached_on_disk(sha256: str, path: str) -> PdfText | None:
    """The text read earlier from a PDF with these bytes; None when there is none, it is from another version of
    the reader, or it cannot be read (a damaged entry is read again from the PDF and replaced)."""
    entry_path = pdf_cache_folder() / f"{sha256}.json.gz"
    try:
        entry = json.loads(gzip.decompress(entry_path.read_bytes()))
        if entry.get("version") == _extractor_version() and entry.get("sha256") == sha256:
            return _from_entry(entry, path)
    except FileNotFoundError:
        return None
    except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError) as error:
        log.warning("%s: cached PDF text unreadable (%s); reading the PDF again", entry_path, error)
    return None


def _keep_on_disk(pdf: PdfText) -> None:
    """Written to a temporary name and renamed: a reader never sees half an entry. A cache that cannot be written
    costs the next import its speed, not its result."""
    folder = pdf_cache_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{pdf.sha256}.{os.getpid()}.{threading.get_ident()}.tmp"
        partial.write_bytes(gzip.compress(json.dumps(_cache_entry(pdf)).encode(), 6))
        os.replace(partial, folder / f"{pdf.sha256}.json.gz")
    except OSError as error:
        log.warning("%s: PDF text not cached (%s)", folder, error)


def _text_of(data: bytes, path: str) -> PdfText:
    """The text of these PDF bytes: from memory, from the disk cache, or read (and then kept in both)."""
    sha256 = hashlib.sha256(data).hexdigest()
    with _PDFIUM:
        cached = _CACHE.get(sha256)
    if cached is None and (cached := _cached_on_disk(sha256, path)) is None:
        cached = read_pdf(data, path)
        _keep_on_disk(cached)
    return _remember(cached)


def pdf_text(source: PdfSource) -> PdfText:
    """The text of a stored paper's PDF (from a cache when its bytes are unchanged); a ParseError when the file is
    gone or its bytes are not the ones ingested."""
    with _PDFIUM:
        if (cached := _CACHE.get(source.sha256)) is not None:
            return cached
    try:
        data = Path(source.path).read_bytes()
    except OSError as error:
        raise ParseError(f"{source.path}: the PDF cannot be read ({error.strerror or error}); ingest it again "
                         "from where it is now") from None
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise ParseError(f"{source.path}: the PDF changed since it was ingested; ingest it again")
    return _text_of(data, source.path)


def read_source(data: bytes, path: str) -> tuple[PdfText, PdfSource]:
    pdf = _text_of(data, path)
    return pdf, PdfSource(path=str(Path(path).resolve()), sha256=pdf.sha256, pages=len(pdf.pages))


def parse_pdf(data: bytes, path: str) -> ParseResult:
    """A loose PDF: one paper, its metadata from the PDF, its full text attached."""
    pdf, source = read_source(data, path)
    result = ParseResult(format=FORMAT)
    paper = make_paper(abstract=pdf.abstract, title=pdf.title, authors=pdf.authors, year=pdf.year, doi=pdf.doi,
                       arxiv_id=pdf.arxiv_id, source=SourceRef(file=path, format=FORMAT, position=1))
    result.add(paper.model_copy(update={"pdf": source}))
    if pdf.empty_pages:
        result.warnings.append(f"{pdf.empty_pages} of {len(pdf.pages)} pages have no text layer (scanned?): "
                               "their text is not read")
    return result


def attach_pdfs(result: ParseResult, base: Path, max_bytes: int) -> None:
    """`attach_pdf` for every paper of a parsed file; each paper whose PDFs cannot be read is one warning."""
    for position, paper in enumerate(result.papers):
        result.papers[position], failure = attach_pdf(paper, base, max_bytes)
        if failure:
            result.warn(failure)


def attach_pdf(paper: Paper, base: Path, max_bytes: int) -> tuple[Paper, str | None]:
    """The paper with the full text of the first readable PDF among its attachments (relative paths are relative
    to `base`: the export's or Zotero data folder), and None; or the paper as it was and, when it has PDFs and none
    can be read (missing, encrypted, damaged), one line naming the entry and the first file: the paper keeps its
    metadata and abstract."""
    failure = None
    for attached in paper.attachments:
        path = base / os.path.expanduser(attached)  # "~nobody/x.pdf" stays as written (Path.expanduser raises)
        if path.suffix.lower() != ".pdf":
            continue
        try:
            return paper.model_copy(update={"pdf": _attached(path, max_bytes)}), None
        except (ParseError, OSError) as error:
            failure = failure or f"{path}: {(error.strerror if isinstance(error, OSError) else None) or error}"
    if failure is None:
        return paper, None
    return (
        paper,
        f'{paper.paper_id} "{paper.title[:60]}": attached PDF {failure}; only its metadata and abstract are read',
    )


def _attached(path: Path, max_bytes: int) -> PdfSource:
    if not path.is_file():
        raise ParseError("no such file (not downloaded to this computer, or moved since it was attached)")
    if path.stat().st_size > max_bytes:
        raise ParseError("over the size limit (LITASSIST_MAX_FILE_MB)")
    return read_source(path.read_bytes(), str(path))[1]


@dataclass(frozen=True)
class PageSpan:
    """A stretch of one page's text: `PageText.text[start:end] == text`, with its boxes (see `span_boxes`)."""

    page: int
    start: int
    end: int
    text: str
    rects: list[list[float]]


def place(source: PdfSource, location: dict, passage: str, start: int, end: int) -> list[PageSpan]:
    """Where passage[start:end] of a stored body passage (with its `Chunk.location()`) lies: one PageSpan per page
    it runs over. When the PDF cannot be read again (moved, changed), the passage's first page and offsets
    counted from its start, without boxes."""
    try:
        pdf = pdf_text(source)
    except ParseError:
        page, offset = int(location["page"]), int(location["start"])
        return [PageSpan(page, offset + start, offset + end, passage[start:end], [])]
    body, first = pdf.body(), int(location["body_start"])
    return [PageSpan(page, low, high, pdf.pages[page - 1].text[low:high], span_boxes(source, page, low, high))
            for page, low, high in body.pieces(first + start, first + end)]


def span_boxes(source: PdfSource, page: int, start: int, end: int) -> list[list[float]]:
    """Rectangles of a span of a page's text, one per line it runs over: [x0, y0, x1, y1] as fractions of the
    page's width and height, from its top-left corner (for drawing on a rendered page of any size)."""
    pdf = pdf_text(source)
    page_text = pdf.pages[page - 1]
    indices = sorted({i for i in page_text.chars[start:end] if i >= 0})
    if not indices:
        return []
    import pypdfium2 as pdfium

    boxes: list[list[float]] = []
    with _PDFIUM:
        document = pdfium.PdfDocument(source.path)
        try:
            textpage = document[page - 1].get_textpage()
            for index in indices:
                left, bottom, right, top = textpage.get_charbox(index)
                if right <= left and top <= bottom:
                    continue
                if boxes and boxes[-1][1] - 1 <= (bottom + top) / 2 <= boxes[-1][3] + 1 and left >= boxes[-1][0] - 1:
                    last = boxes[-1]
                    boxes[-1] = [last[0], min(last[1], bottom), max(last[2], right), max(last[3], top)]
                else:
                    boxes.append([left, bottom, right, top])
        finally:
            document.close()
    w, h = page_text.width, page_text.height
    return [
        [round(x0 / w, 4), round(1 - y1 / h, 4), round(x1 / w, 4), round(1 - y0 / h, 4)] for x0, y0, x1, y1 in boxes
    ]


def render_page(source: PdfSource, page: int, width_px: int = 1000) -> bytes:
    """The page as a PNG `width_px` wide (the app shows it inline, as data)."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        document = pdfium.PdfDocument(source.path)
        try:
            pdf_page = document[page - 1]
            scale = width_px / pdf_page.get_width()
            image = pdf_page.render(scale=scale).to_pil()
        finally:
            document.close()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
