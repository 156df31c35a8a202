"""Tagged-text exports: PubMed/MEDLINE (.nbib, PubMed's "Save -> PubMed format") and Web of Science
("Plain text file": savedrecs.txt, .ciw).

Both are line-oriented: a record is a run of "TAG value" lines whose values go on over indented lines. One reader
(`_records`) serves both; they differ in the tag's width ("TI  - " vs "TI "), in what opens and closes a record
and in the field map. Records are read one at a time from the file's lines (see STREAMS).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..errors import ParseError
from .exports import _BOM, _SNIFF_CHARS, _paper, _result
from .records import MAX_RECORD_CHARS, Paper, ParseResult, Skipped, SourceRef, month_day

_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_DATE_TOKENS = re.compile(r"[A-Za-z]+|\d+")
_DATE_CHARS = 64
_MEDLINE_TAG = re.compile(r"[A-Z][A-Z0-9]{1,3}")
_WOS_TAG = re.compile(r"[A-Z][A-Z0-9]")  # a date field longer than this is not a date; only its head is read


def pub_date(text: str | None, year: int | None = None) -> tuple[int | None, str | None]:
    """(year, ISO 'YYYY-MM[-DD]') from the ways bibliographic databases write a publication date: '2019 May 3',
    '2019 Spring' (a year only), '2018 Dec-2019 Jan' and '2004 Sep-Dec' (the first month), '20110221',
    '2011/09/01', or a month without its year ('DEC 24', 'Jan') given `year` from another field."""
    tokens = _DATE_TOKENS.findall((text or "")[:_DATE_CHARS])
    found = None
    for index, token in enumerate(tokens):
        if token.isdigit() and len(token) == 8:  # 20110221
            return _iso(int(token[:4]), int(token[4:6]), int(token[6:]))
        if token.isdigit() and len(token) == 4:
            if found is not None:
                break  # a second year ('2018-2019') before any month
            found = int(token)
            continue
        month = _MONTHS.get(token[:3].lower()) if token.isalpha() else int(token) if len(token) <= 2 else None
        if month and (month_year := found or year):
            following = tokens[index + 1] if index + 1 < len(tokens) else ""
            return _iso(month_year, month, int(following) if following.isdigit() and len(following) <= 2 else None)
    return found or year, None if found or year else month_day(text)


def _iso(year: int, month: int, day: int | None) -> tuple[int, str | None]:
    """A real calendar date as ISO; '2019 Feb 30' or month 13 keeps its year and invents no date."""
    try:
        datetime.date(year, month, day or 1)
    except ValueError:
        return year, None
    return year, f"{year:04d}-{month:02d}" + (f"-{day:02d}" if day else "")


# ---------------------------------------------------------------- the shared reader


@dataclass(frozen=True)
class _Layout:
    """What distinguishes one tagged format from another for the reader."""

    name: str  # the format's name, as SNIFFERS and STREAMS know it
    label: str  # how messages call it
    split: Callable[[str], tuple[str, str] | None]  # a tag line -> (tag, value); None: not a tag line
    opens: str  # the tag that starts a record
    closes: str | None  # the tag that ends one; None: a blank line ends it
    outside: frozenset[str]  # tags allowed between records (file header and end)
    listed: frozenset[str]  # tags whose continuation lines are further values (one author a line), not more text


Record = list[tuple[str, str]]  # (tag, value) in file order; repeated tags repeat


def _records(lines: Iterable[str], layout: _Layout) -> Iterator[tuple[int, Record]]:
    """Yield (line number where it starts, record) one at a time; only the current record is held."""
    record: list[tuple[str, list[str]]] = []
    start = 0
    size = 0

    def finished() -> Record:
        return [(tag, " ".join(parts)) for tag, parts in record]

    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r").lstrip(_BOM) if number == 1 else raw.rstrip("\r")
        if not line.strip():
            if layout.closes is None and record:
                yield start, finished()
                record, size = [], 0
            continue
        size += len(line)
        if size > MAX_RECORD_CHARS:
            raise ParseError(f"the {layout.label} record starting at line {start} is over "
                             f"{MAX_RECORD_CHARS:,} characters: not a real record; export the file again")
        if line[0] in " \t":  # a value going on over the next line
            if not record:
                raise ParseError(f"line {number}: an indented line outside any {layout.label} record; "
                                 "the file looks damaged: export it again")
            tag, parts = record[-1]
            if tag in layout.listed:
                record.append((tag, [line.strip()]))
            else:
                parts.append(line.strip())
            continue
        split = layout.split(line)
        if split is None:
            raise ParseError(f"line {number} ({line[:40]!r}) is not a {layout.label} tag line; "
                             "the file looks damaged: export it again")
        tag, value = split
        if tag == layout.opens and record and layout.closes is not None:
            raise ParseError(f"the {layout.label} record starting at line {start} has no '{layout.closes}' line "
                             f"before line {number}; the file looks damaged: export it again")
        if tag == layout.opens and record:  # MEDLINE without a blank line between records
            yield start, finished()
            record, size = [], len(line)
        if not record:
            if tag in layout.outside:
                continue
            if tag != layout.opens:
                raise ParseError(f"line {number}: a record must start with '{layout.opens}', found '{tag}'; "
                                 f"is this a {layout.label} file?")
            start = number
        if tag == layout.closes:
            yield start, finished()
            record, size = [], 0
            continue
        record.append((tag, [value.strip()]))
    if record and layout.closes is not None:
        raise ParseError(f"the last {layout.label} record (from line {start}) has no '{layout.closes}' line: "
                         "the file looks cut short; export it again")
    if record:
        yield start, finished()


def _values(record: Record, *tags: str) -> list[str]:
    return [value for tag, value in record if tag in tags and value]


def _first(record: Record, *tags: str) -> str | None:
    """The first value of the first tag (in `tags` order) the record has."""
    return next((values[0] for tag in tags if (values := _values(record, tag))), None)


def _stream(
    layout: _Layout, convert: Callable[[Record, SourceRef], Paper | Skipped]
) -> Callable[[Iterable[str], str], Iterator[Paper | Skipped]]:
    def stream(lines: Iterable[str], path: str) -> Iterator[Paper | Skipped]:
        for position, (_, record) in enumerate(_records(lines, layout), 1):
            yield convert(record, SourceRef(file=path, format=layout.name, position=position))

    stream.__doc__ = f"{layout.label} records from a file's lines, one at a time."
    return stream


def _first_line(text: str) -> str:
    return text[:_SNIFF_CHARS].lstrip(_BOM + " \t\r\n").split("\n", 1)[0].rstrip("\r")


# ---------------------------------------------------------------- PubMed / MEDLINE


def _medline_tag(line: str) -> tuple[str, str] | None:
    """'TI  - text', 'PMID- 123', 'FAU - Last, First': a tag of up to 4 capitals padded to 4, then '- '."""
    if line[4:5] != "-" or not _MEDLINE_TAG.fullmatch(tag := line[:4].rstrip()):
        return None
    return tag, line[6:] if line[5:6] == " " else line[5:]


def _pubmed_url(pmid: str | None, pmc: str | None) -> str | None:
    """The free full text in PubMed Central when there is one, else the PubMed page."""
    if pmc:
        return f"https://pmc.ncbi.nlm.nih.gov/articles/{pmc}/"
    return f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else None


def pubmed_dates(printed: str | None, electronic: str | None) -> tuple[int | None, str | None]:
    """The year of the issue (what citations give) and the most precise date of that year: the issue's own
    ('2015 Jul 30') or, when it gives only a year, the electronic publication date of the same year."""
    year, date = pub_date(printed)
    if date is None and electronic:
        early_year, early_date = pub_date(electronic)
        if year is None or early_year == year:
            year, date = year or early_year, early_date
    return year, date


def _medline_paper(record: Record, source: SourceRef) -> Paper | Skipped:
    """The PMID is the paper's id: PubMed's own stable identifier, the same in the .nbib and the XML of a record,
    so a paper exported twice (or in both formats) is recognised as one."""
    pmid = _first(record, "PMID")
    names = "FAU" if _values(record, "FAU") else "AU"
    year, date = pubmed_dates(_first(record, "DP"), _first(record, "DEP"))
    ids = _values(record, "AID", "LID")
    return _paper(
        source,
        abstract=_first(record, "AB"),
        title=_first(record, "TI", "BTI"),
        label=f"PMID {pmid}" if pmid else None,
        source_id=pmid,
        authors=_values(record, names, "CN"),
        year=year,
        date=date,
        venue=_first(record, "JT", "TA"),
        url=_pubmed_url(pmid, _first(record, "PMC")),
        doi=next((value.removesuffix("[doi]").strip() for value in ids if value.endswith("[doi]")), None),
        keywords=[*_values(record, "OT"), *(heading.replace("*", "") for heading in _values(record, "MH"))],
    )


MEDLINE = _Layout(name="medline", label="PubMed/MEDLINE", split=_medline_tag, opens="PMID", closes=None,
                  outside=frozenset(), listed=frozenset())
stream_medline = _stream(MEDLINE, _medline_paper)


def parse_medline(text: str, path: str) -> ParseResult:
    """A PubMed/MEDLINE tagged export (.nbib)."""
    return _result(MEDLINE.name, stream_medline(text.split("\n"), path))


def _sniff_medline(text: str) -> bool:
    """PubMed's export starts each record with 'PMID- ', the file's first line included."""
    return bool(re.match(r"PMID- ?\d", _first_line(text)))


# ---------------------------------------------------------------- Web of Science


def _wos_tag(line: str) -> tuple[str, str] | None:
    """'TI text', 'C1 text', 'ER': a capital and a capital or digit, a space, the value."""
    if line[2:3] not in ("", " ") or not _WOS_TAG.fullmatch(tag := line[:2]):
        return None
    return tag, line[3:]


def _wos_paper(record: Record, source: SourceRef) -> Paper | Skipped:
    """UT ('WOS:000311971500044'), Web of Science's accession number, is the paper's id. WoS gives no URL and
    no arXiv id; AR (an article number) and the cited references have no field in a Paper."""
    accession = _first(record, "UT")
    year_text = _first(record, "PY")
    year, date = pub_date(_first(record, "PD"), year=pub_date(year_text)[0])
    return _paper(
        source,
        abstract=_first(record, "AB"),
        title=_first(record, "TI"),
        label=accession,
        source_id=accession,
        authors=_values(record, "AF" if _values(record, "AF") else "AU", "CA"),
        year=year,
        date=date,
        venue=_first(record, "SO"),
        doi=_first(record, "DI"),
        keywords=[word.strip() for field in _values(record, "DE", "ID") for word in field.split(";") if word.strip()],
    )


WOS = _Layout(name="wos", label="Web of Science", split=_wos_tag, opens="PT", closes="ER",
              outside=frozenset({"FN", "VR", "EF"}), listed=frozenset({"AU", "AF", "BE", "CA", "CR", "C1", "C3"}))
stream_wos = _stream(WOS, _wos_paper)


def parse_wos(text: str, path: str) -> ParseResult:
    """A Web of Science tagged export (savedrecs.txt, .ciw)."""
    return _result(WOS.name, stream_wos(text.split("\n"), path))


def _sniff_wos(text: str) -> bool:
    """'FN Clarivate Analytics Web of Science' (or Thomson Reuters) heads the file; a bare 'PT J' also counts."""
    first = _first_line(text)
    return first.startswith("FN ") and "\nPT " in text[:_SNIFF_CHARS] or bool(re.match(r"PT [A-Z]\b", first))


TAGGED_SNIFFERS = [("medline", _sniff_medline, parse_medline), ("wos", _sniff_wos, parse_wos)]
STREAMS = {MEDLINE.name: stream_medline, WOS.name: stream_wos}
