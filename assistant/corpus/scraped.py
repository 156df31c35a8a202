"""Parsers for pages scraped as plain text: author listings, daily-paper listings, bare abstracts, paper pages.

Scraped text has no markup, so every parser works on the same idea: an abstract is a line of prose (many
words), and the short lines around it are its title and metadata. Site chrome ("Subscribe", menus,
non-English UI strings) is short, so it never becomes a paper.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..errors import ParseError
from .records import ParseResult, SourceRef, make_paper, split_name

PROSE_MIN_WORDS = 30
SNIFF_CHARS = 2**20  # a scraped page is a few hundred KB at most; sniffing a 500 MB export reads only this much
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_MONTH_NUMBER = {name: i for i, name in enumerate(_MONTHS.split("|"), start=1)}
_LISTING_DATE = re.compile(rf"^({_MONTHS})[a-z]*\.? (\d{{1,2}})(?:, (\d{{4}}))?(?: \d+)?$")
_AUTHOR_COUNT = re.compile(r"^•\s*(\d+)\s+authors?$")
_ARXIV_CATEGORY = re.compile(r"^arXiv\.org\s+(\S.*)$")
# '<views> - <Authors> <year>' is matched in two anchored pieces: one regex with '.+?' between them backtracks
# quadratically over a long line of spaces (a 61 KB line took 57 s).
_RELATED_HEAD = re.compile(r"(\d+)\s+-\s+")
_RELATED_YEAR = re.compile(r"(?:19|20)\d{2}")
_PUBLICATION_DATE = re.compile(r"^Publication date\s+((?:19|20)\d{2})\b")
_STATS_LINE = re.compile(r"^[\d\s.()]+$")
_ABSTRACT_PREFIX = re.compile(r"^Abstract:\s*")


def is_prose(line: str) -> bool:
    """True for an abstract-length line; titles, metadata and site chrome are all much shorter."""
    return len(line.split()) >= PROSE_MIN_WORDS


def _lines(text: str) -> list[str]:
    return [line.replace("\u00a0", " ").strip() for line in text.splitlines()]


def _head_lines(text: str) -> list[str]:
    """The lines a sniffer looks at: those of the first SNIFF_CHARS characters."""
    return _lines(text[:SNIFF_CHARS])


def _previous_nonblank(lines: list[str], index: int) -> tuple[int, str]:
    for j in range(index - 1, -1, -1):
        if lines[j]:
            return j, lines[j]
    return -1, ""


def _next_nonblank(lines: list[str], index: int) -> tuple[int, str]:
    for j in range(index + 1, len(lines)):
        if lines[j]:
            return j, lines[j]
    return len(lines), ""


def _title_before(lines: list[str], index: int) -> str | None:
    """The short line just above an abstract is its title, unless it is metadata or another abstract."""
    _, line = _previous_nonblank(lines, index)
    if not line or is_prose(line) or _AUTHOR_COUNT.match(line) or line == "·" or _LISTING_DATE.match(line):
        return None
    return line


# --- author page: title / "arXiv.org <category>" / abstract ---------------------------------------------


def sniff_author_page(text: str) -> bool:
    lines = _head_lines(text)
    return any(_ARXIV_CATEGORY.match(line) for line in lines) and any(is_prose(line) for line in lines)


def parse_author_page(text: str, path: str) -> ParseResult:
    lines = _lines(text)
    page_author = None
    if "Collaborating Authors" in lines:
        _, page_author = _next_nonblank(lines, lines.index("Collaborating Authors"))
    result = ParseResult(format="author-page")
    for i, line in enumerate(lines):
        category = _ARXIV_CATEGORY.match(line)
        if not category:
            continue
        _, abstract = _next_nonblank(lines, i)
        if not is_prose(abstract):
            continue
        _, title = _previous_nonblank(lines, i)
        result.papers.append(
            make_paper(
                abstract=abstract,
                title=title or None,
                authors=[split_name(page_author)] if page_author else None,
                venue=f"arXiv {category.group(1)}",
                source=SourceRef(file=path, format=result.format, position=len(result.papers) + 1),
            )
        )
    return result


# --- daily-papers listing: title / abstract / "• N authors" / "·" / date -----------------------------------


def sniff_daily_papers(text: str) -> bool:
    lines = _head_lines(text)
    return "Daily Papers" in lines or sum(1 for line in lines if _AUTHOR_COUNT.match(line)) >= 2


def _listing_date(line: str) -> tuple[str | None, int | None]:
    """'Apr 25, 2023' -> ('2023-04-25', 2023); 'Feb 3' or 'Jun 11 2' (upvotes) -> ('Feb 3', None)."""
    match = _LISTING_DATE.match(line)
    if not match:
        return None, None
    month, day, year = match.groups()
    if year:
        return f"{year}-{_MONTH_NUMBER[month[:3]]:02d}-{int(day):02d}", int(year)
    return f"{month[:3]} {int(day)}", None


def parse_daily_papers(text: str, path: str) -> ParseResult:
    lines = _lines(text)
    result = ParseResult(format="daily-papers")
    for i, line in enumerate(lines):
        if not is_prose(line):
            continue
        author_count = date = year = None
        j, following = _next_nonblank(lines, i)
        if count := _AUTHOR_COUNT.match(following):
            author_count = int(count.group(1))
            j, following = _next_nonblank(lines, j)
        if following == "·":
            _, following = _next_nonblank(lines, j)
            date, year = _listing_date(following)
        result.papers.append(
            make_paper(
                abstract=line,
                title=_title_before(lines, i),
                author_count=author_count,
                date=date,
                year=year,
                source=SourceRef(file=path, format=result.format, position=len(result.papers) + 1),
            )
        )
    return result


# --- bare "Abstract:" lines ----------------------------------------------------------------------------------


def sniff_abstract_lines(text: str) -> bool:
    lines = [line for line in _head_lines(text) if line]
    return bool(lines) and sum(1 for line in lines if _ABSTRACT_PREFIX.match(line)) >= max(1, len(lines) // 2)


def parse_abstract_lines(text: str, path: str) -> ParseResult:
    result = ParseResult(format="abstract-lines")
    for line in _lines(text):
        if _ABSTRACT_PREFIX.match(line) and (abstract := _ABSTRACT_PREFIX.sub("", line)):
            result.papers.append(
                make_paper(
                    abstract=abstract,
                    source=SourceRef(file=path, format=result.format, position=len(result.papers) + 1),
                )
            )
    return result


# --- single paper page with related papers -----------------------------------------------------------------


def sniff_paper_page(text: str) -> bool:
    return any(_PUBLICATION_DATE.match(line) for line in _head_lines(text))


def _related_header(line: str) -> tuple[list[str] | None, int | None]:
    """'12 - Ann Lee, Bo Chen 2021' -> (['Ann Lee', 'Bo Chen'], 2021); (None, None) for any other line."""
    head = _RELATED_HEAD.match(line)
    middle = line[head.end() : -4] if head else ""
    if not (middle[-1:].isspace() and middle.strip() and _RELATED_YEAR.fullmatch(line[-4:])):
        return None, None
    return [a.strip() for a in middle.strip().split(",")], int(line[-4:])


def parse_paper_page(text: str, path: str) -> ParseResult:
    """Main paper (title above the stats line, year from 'Publication date'), then related abstracts.

    Related entries carry '<views> - <Authors> <year>' above their abstract, but some have no header: those
    become papers with only an abstract.
    """
    lines = _lines(text)
    result = ParseResult(format="paper-page")
    dated = next(((i, match) for i, line in enumerate(lines) if (match := _PUBLICATION_DATE.match(line))), None)
    if dated is None:
        raise ParseError("not a paper page: no 'Publication date YYYY' line")
    date_index, year = dated[0], int(dated[1].group(1))
    title_index = date_index
    while True:
        title_index, title = _previous_nonblank(lines, title_index)
        if title_index < 0 or not _STATS_LINE.match(title):
            break
    main_found = False
    for i in range(date_index + 1, len(lines)):
        if not is_prose(lines[i]):
            continue
        position = len(result.papers) + 1
        source = SourceRef(file=path, format=result.format, position=position)
        if not main_found:
            main_found = True
            paper = make_paper(abstract=lines[i], title=title or None, year=year, source=source)
        else:
            authors, related_year = _related_header(_previous_nonblank(lines, i)[1])
            paper = make_paper(abstract=lines[i], authors=authors, year=related_year, source=source)
        result.papers.append(paper)
    return result


SCRAPED_SNIFFERS: list[tuple[str, Callable[[str], bool], Callable[[str, str], ParseResult]]] = [
    ("abstract-lines", sniff_abstract_lines, parse_abstract_lines),
    ("paper-page", sniff_paper_page, parse_paper_page),
    ("daily-papers", sniff_daily_papers, parse_daily_papers),
    ("author-page", sniff_author_page, parse_author_page),
]
