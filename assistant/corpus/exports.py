"""Parsers for reference-manager and dataset exports: BibTeX, RIS, CSL-JSON, JSON, JSONL, CSV, arXiv Atom.

Each parser maps its format's fields onto `make_paper`, so cleaning and id rules live in one place
(records.py); what stays here is format knowledge and the markup exports leave in titles and abstracts.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XMLParseError

import bibtexparser
import rispy
from bibtexparser.exceptions import BlockAbortedException
from bibtexparser.library import Library
from bibtexparser.middlewares import NormalizeFieldKeys, RemoveEnclosingMiddleware, SeparateCoAuthors
from bibtexparser.middlewares.enclosing import REMOVED_ENCLOSING_KEY
from bibtexparser.middlewares.middleware import LibraryMiddleware, Middleware
from bibtexparser.model import Block, DuplicateBlockKeyBlock, DuplicateFieldKeyBlock, Entry, Field, ParsingFailedBlock
from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

from ..errors import ParseError
from .records import Paper, ParseResult, Skipped, SourceRef, clean_text, make_paper, month_day

try:  # defusedxml guards against entity-expansion tricks; the stdlib parser is the fallback
    from defusedxml.ElementTree import fromstring as _xml_fromstring
except ImportError:
    from xml.etree.ElementTree import fromstring as _xml_fromstring

Sniff = Callable[[str], bool]
Parser = Callable[..., ParseResult]

_BOM = "\ufeff"
_SNIFF_CHARS = 65536
_SNIFF_RECORD_CHARS = 4 * 2**20  # a first JSONL record up to this size is parsed to be sure it is one
_CSV_SNIFF_CHARS = 8192  # csv.Sniffer is quadratic in a line's length: 64 KB of one line took 16 s
MAX_FIELD_CHARS = 1_000_000  # one field of one entry; a longer one is refused (its entry is skipped), never decoded
_MAX_INT_DIGITS = 4300  # Python's int() refuses longer digit strings (sys.int_info.default_max_str_digits)
_YEAR_DATE = re.compile(r"(?<!\d)(\d{4})(?!\d)(?:[-/.](\d{1,2})(?!\d)(?:[-/.](\d{1,2})(?!\d))?)?")
# Years a library can hold: manuscripts and early prints to forthcoming issues. Outside it (5000, 0999) a year is a
# typo or hostile, and filtering by it (--year-min) would mislead more than leaving the entry undated.
MIN_YEAR, MAX_YEAR = 1000, 2100
# Our field -> the names other tools use for it, matched case-insensitively (JSON keys, CSV headers).
_ALIASES: dict[str, tuple[str, ...]] = {
    "abstract": ("abstract", "text", "summary", "abstract note"),  # "Abstract Note": Zotero CSV
    "title": ("title",),
    "authors": ("authors", "author"),
    "year": ("year", "publication year"),
    "date": ("date", "published"),
    "venue": ("venue", "journal", "category", "publication title", "source title"),  # Zotero, Scopus CSV
    "url": ("url", "link"),
    "doi": ("doi",),
    "arxiv_id": ("arxiv_id", "arxiv"),
    "source_id": ("id", "_id"),
    "keywords": ("keywords", "keyword", "tags", "manual tags"),  # "Manual Tags": Zotero CSV
}


# ---------------------------------------------------------------- shared record helpers


def _scalar(value: object) -> str | None:
    """A string or a finite number as text; objects, null, NaN and Infinity are not text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        return None if not math.isfinite(value) else str(int(value)) if value.is_integer() else str(value)
    return str(value)


def _plain(value: object) -> str | None:
    """One string from a field that may be a list (RIS repeats tags); make_paper does the cleaning.
    An object is not text: it gives None, never its Python repr ("{'x': 1}")."""
    parts = value if isinstance(value, list) else [value]
    texts = [text for part in parts if (text := _scalar(part)) is not None]
    return clean_text(" ".join(texts)) if texts else None


def _paper(
    source: SourceRef, *, abstract: object, title: object = None, label: str | None = None, **fields: Any
) -> Paper | Skipped:
    """Every parser ends here, so the rule is the same for all formats: an entry with an abstract, a title, a
    DOI or an arXiv id is a paper (without an abstract it is stored from its metadata alone); an entry with
    none of them is skipped, named by `label` (its citation key) or its title."""
    if oversized := _oversized({"abstract": abstract, "title": title, **fields}):
        return Skipped(position=source.position, reason=oversized, label=label)
    text = _plain(abstract) or ""
    heading = _plain(title)
    if not (text.strip() or heading or fields.get("doi") or fields.get("arxiv_id")):
        reason = "no title, abstract, DOI or arXiv id" if abstract in (None, "", []) or isinstance(abstract, str) \
            else "abstract is not text, and no title, DOI or arXiv id"
        return Skipped(position=source.position, reason=reason, label=label)
    paper = make_paper(abstract=text, title=heading, source=source, **fields)
    if fields.get("year") is None and fields.get("date") and (warning := _date_warning(fields["date"])):
        paper.warnings.append(warning)
    return paper


def _oversized(fields: Mapping[str, object]) -> str | None:
    """The reason to refuse an entry with a field over MAX_FIELD_CHARS (a list counts its items together): one
    hostile field must not cost gigabytes in cleaning, decoding and embedding. None when all fit."""
    for name, value in fields.items():
        size = sum(len(item) for item in value if isinstance(item, str)) if isinstance(value, list) else \
            len(value) if isinstance(value, str) else 0
        if size > MAX_FIELD_CHARS:
            return f"its {name} has {size:,} characters, over the {MAX_FIELD_CHARS:,} limit for one field"
    return None


def _result(fmt: str, items: Iterable[Paper | Skipped]) -> ParseResult:
    result = ParseResult(format=fmt)
    for item in items:
        if isinstance(item, Paper):
            result.add(item)
        else:
            result.skip(item)
    return result


def _year_and_date(*values: object) -> tuple[int | None, str | None]:
    """The first year found, and the first date that has at least a month, as ISO 'YYYY-MM[-DD]'.

    Exports spell dates as '2019///', '2019/05/01', '2021-01-04T18:59:59Z' or '2020-5'; '00' is an unknown part
    (Zotero stores a bare year as '2019-00-00'). A value holding an impossible date ('2020-13-45', Feb 30, year
    5000) makes the entry undated, with that value kept as written as its date: `_paper` warns about it.
    """
    found = [(text, m) for value in values if value is not None and (m := _YEAR_DATE.search(text := str(value)))]
    if impossible := next((text.strip() for text, m in found if _date_problem(m)), None):
        return None, impossible
    year = int(found[0][1][1]) if found else None
    date = next((_iso_date(m) for _, m in found if m[2] and int(m[2])), None)
    if year is None:  # a month and day without a year ("May 24") is kept as written, and the paper stays undated
        date = next((written for value in values if (written := month_day(value))), None)
    return year, date


def _iso_date(match: re.Match[str]) -> str:
    year, month, day = match.groups()
    return "-".join([year, month.zfill(2), *([day.zfill(2)] if day and int(day) else [])])


def _date_problem(match: re.Match[str]) -> str | None:
    """Why a `_YEAR_DATE` match is no date at all, or None."""
    year_text, month_text, day_text = match.groups()
    year, month, day = int(year_text), int(month_text) if month_text else None, int(day_text) if day_text else None
    if not MIN_YEAR <= year <= MAX_YEAR:
        return f"year outside {MIN_YEAR}-{MAX_YEAR}"
    if month is not None and month > 12:
        return "no such month"
    if day and (not month or day > calendar.monthrange(year, month)[1]):
        return "no such day"
    return None


def _date_warning(date: str) -> str | None:
    """The warning for a date `_year_and_date` kept as written because it is impossible."""
    match = _YEAR_DATE.search(date)
    problem = match and _date_problem(match)
    return f"impossible date {date!r} ({problem}): kept as written, treated as undated" if problem else None


def _name(value: object) -> str | None:
    """One author: a plain string, a CSL name object, or a {'name': ...} object (Semantic Scholar).
    Anything else (42, null) is not a name."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return None
    parts = [_scalar(value.get(key)) for key in ("given", "non-dropping-particle", "family")]
    return _scalar(value.get("literal")) or _scalar(value.get("name")) or " ".join(p for p in parts if p) or None


def _keywords(value: object) -> list[str]:
    """Keywords as a list, or as one string separated by ';' or ','."""
    if isinstance(value, list):
        return [text for item in value if (text := _scalar(item))]
    text = _scalar(value)
    return [part.strip() for part in re.split(";" if text and ";" in text else ",", text or "") if part.strip()]


def _authors(value: object) -> list[str]:
    """Authors arrive as a list, or as one string joined by ';' or ' and '."""
    if isinstance(value, str):
        return re.split(r"\s*;\s*" if ";" in value else r"\s+and\s+", value)
    if isinstance(value, list):
        return [name for author in value if (name := _name(author))]
    return []


def _match_columns(names: Sequence[str], mapping: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our field -> the source's key: first alias present (case-insensitive); `mapping` (field -> column) wins."""
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.strip().lower(), name)
    columns: dict[str, str] = {}
    for field, aliases in _ALIASES.items():
        if present := [by_lower[alias] for alias in aliases if alias in by_lower]:
            columns[field] = present[0]
    for field, column in (mapping or {}).items():
        if field not in _ALIASES:
            raise ParseError(f"cannot map unknown field {field!r} (fields: {', '.join(_ALIASES)})")
        if column.strip().lower() not in by_lower:
            raise ParseError(f"mapped column {column!r} not found (columns: {', '.join(names)})")
        columns[field] = by_lower[column.strip().lower()]
    return columns


def _record_paper(record: Mapping[Any, Any], columns: Mapping[str, str], source: SourceRef) -> Paper | Skipped:
    """Shared by JSON, JSONL and CSV, whose records differ only in the key names they use."""
    raw = {field: record.get(column) for field, column in columns.items()}
    if oversized := _oversized(raw):  # before any field is cleaned
        return Skipped(position=source.position, reason=oversized)

    def text(field: str) -> str | None:
        return _plain(raw.get(field))

    year, date = _year_and_date(text("year"), text("date"))
    source_id = (text("source_id") or "").strip() or None
    return _paper(
        source,
        abstract=raw.get("abstract"),
        title=text("title"),
        label=source_id,
        source_id=source_id,
        authors=_authors(raw.get("authors")),
        year=year,
        date=date,
        venue=text("venue"),
        url=text("url"),
        doi=text("doi"),
        arxiv_id=text("arxiv_id"),
        keywords=_keywords(raw.get("keywords")),
    )


def _plain_object(record: dict[str, Any], source: SourceRef) -> Paper | Skipped:
    return _record_paper(record, _match_columns(list(record)), source)


def _objects(
    items: Iterable[object], path: str, fmt: str, convert: Callable[[dict[str, Any], SourceRef], Paper | Skipped]
) -> ParseResult:
    """Turn JSON values into papers; a value that is not an object is skipped, not fatal."""
    return _result(
        fmt,
        (
            convert(item, SourceRef(file=path, format=fmt, position=position))
            if isinstance(item, dict)
            else Skipped(position=position, reason="not a JSON object")
            for position, item in enumerate(items, 1)
        ),
    )


# ---------------------------------------------------------------- BibTeX


def _latex_decoder() -> LatexNodes2Text:
    """Like bibtexparser's LatexDecodingMiddleware, but math becomes text ($\\alpha$ -> α) for search."""
    context = get_default_latex_context_db()
    context.add_context_category("urls-verbatim", prepend=True, macros=[MacroTextSpec("url", simplify_repl="%s")])
    return LatexNodes2Text(latex_context=context, math_mode="text")


_LATEX = _latex_decoder()
_LATEX_MARKUP = re.compile(r"[\\{}$~`]|--|''")


def _latex(value: str) -> str:
    """LaTeX -> unicode. pylatexenc costs ~3 µs a character, so text without markup is passed through.
    A bare % or & (common in exported abstracts) would be a comment or a column separator to LaTeX and
    eat text, so they are escaped first."""
    if not _LATEX_MARKUP.search(value):
        return value
    try:
        return _LATEX.latex_to_text(re.sub(r"(?<!\\)([%&])", r"\\\1", value))
    except RecursionError:  # hundreds of nested braces: keep the words, drop the markup
        return _verbatim(value)


def _verbatim(value: str) -> str:
    """url/doi/eprint are verbatim in biblatex: only drop braces and escapes such as '\\_', never decode."""
    return re.sub(r"\\([_%&#$~])", r"\1", value).replace("{", "").replace("}", "")


_UNESCAPED_SEMICOLON = re.compile(r"(?<!\\);")
_UNESCAPED_COLON = re.compile(r"(?<!\\):")


def attached_files(value: object) -> list[str]:
    """Paths in a `file` field as Zotero and Better BibTeX write it: `desc:path:mime` or a bare path, several
    joined by ';', with ':' and ';' in a path escaped by a backslash ("C\\:\\\\Users..." on Windows)."""
    text = value if isinstance(value, str) else ""
    paths = []
    for part in _UNESCAPED_SEMICOLON.split(text.replace("{", "").replace("}", "")):
        fields = _UNESCAPED_COLON.split(part.strip())
        path = fields[1] if len(fields) >= 3 else part.strip()
        if path:
            paths.append(re.sub(r"\\([\\:;])", r"\1", path))
    return paths


def _bibtex_failure(block: ParsingFailedBlock) -> str:
    error = block.error
    reason = error.abort_reason if isinstance(error, BlockAbortedException) else str(error)
    first_line = ((block.raw or "").strip().splitlines() or [""])[0]
    snippet = first_line if len(first_line) <= 60 else first_line[:60] + "…"
    line = "?" if block.start_line is None else block.start_line + 1  # bibtexparser counts lines from 0
    return " ".join(f"malformed BibTeX entry near line {line} ({snippet!r}): {reason}".split())


def _bibtex_entry(entry: Entry, source: SourceRef) -> Paper | Skipped:
    fields = {field.key: field.value for field in entry.fields}
    if oversized := _oversized(fields):  # before LaTeX decoding, which costs ~3 µs a character
        return Skipped(position=source.position, reason=oversized, label=entry.key)

    def first(*keys: str, convert: Callable[[str], str] = _latex) -> str | None:
        return next((convert(fields[key]) for key in keys if fields.get(key)), None)

    eprint_type = (fields.get("archiveprefix") or fields.get("eprinttype") or "").strip("{} ").lower()
    year, date = _year_and_date(first("year"), first("date"))
    return _paper(
        source,
        abstract=first("abstract"),
        title=first("title"),
        label=entry.key,
        authors=[_latex(author) for author in fields.get("author") or []],
        year=year,
        date=date,
        venue=first("journal", "journaltitle", "booktitle", "publisher"),
        url=first("url", convert=_verbatim),
        doi=first("doi", convert=_verbatim),
        arxiv_id=first("eprint" if eprint_type == "arxiv" else "arxivid", convert=_verbatim),
        keywords=_keywords(first("keywords")),
        attachments=attached_files(fields.get("file")),
    )


_BIBTEX_MONTHS = {name[:3].lower(): name for name in calendar.month_name[1:]}  # predefined by BibTeX: jan, feb…
_CONCATENATION_MARKS = re.compile(r'(?<!\\)[{}"#]')


def _concatenated_parts(value: str) -> list[str]:
    """`abs # " and more" # {!}` -> ['abs', '" and more"', '{!}']: split at the '#' outside braces and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for mark in _CONCATENATION_MARKS.finditer(value):
        char = mark.group()
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
        elif depth == 0 and char == '"':
            quoted = not quoted
        elif depth == 0 and not quoted:  # a top-level '#'
            parts.append(value[start : mark.start()].strip())
            start = mark.end()
    parts.append(value[start:].strip())
    return parts


class _ResolveMacros(LibraryMiddleware):
    """@string macros and '#' concatenation, which bibtexparser leaves as written (`abs # " and more"`).

    Runs after RemoveEnclosingMiddleware, so a value still marked unenclosed is a macro name, a number or a
    concatenation. Undefined names stay as written. Expansion is bounded: no value may pass MAX_FIELD_CHARS, and
    all expansions together may add at most `budget` characters (@string{b = a # a} doubles a per level, and a
    million references to a long macro would otherwise be a million copies)."""

    def __init__(self, budget: int, macros: Mapping[str, str] | None = None):
        super().__init__(allow_inplace_modification=True)
        self.budget = budget
        self.known = dict(macros or {})  # macros the file defined, already expanded (for entries parsed apart)

    @classmethod
    def metadata_key(cls) -> str:
        return "litassist_resolve_macros"

    def transform(self, library: Library) -> Library:
        macros = dict(_BIBTEX_MONTHS) | self.known
        for string in library.strings:  # in file order: a macro may use the ones defined above it
            if self._unenclosed(string.value, string.parser_metadata.get(REMOVED_ENCLOSING_KEY)):
                string.value = self._expand(string.value, macros, f"@string {string.key!r}")
            macros[string.key.lower()] = string.value
        for entry in library.entries:
            enclosings = entry.parser_metadata.get(REMOVED_ENCLOSING_KEY, {})
            for field in entry.fields:
                if self._unenclosed(field.value, enclosings.get(field.key)):
                    field.value = self._expand(field.value, macros, f"entry {entry.key!r}")
        return library

    @staticmethod
    def _unenclosed(value: object, enclosing: object) -> bool:
        return enclosing == "no-enclosing" and isinstance(value, str) and not value.isdigit()

    def _expand(self, value: str, macros: dict[str, str], where: str) -> str:
        parts = [part[1:-1] if len(part) >= 2 and part[0] + part[-1] in ('""', "{}") else macros.get(part.lower(), part)
                 for part in _concatenated_parts(value)]
        size = sum(len(part) for part in parts)
        self.budget -= max(0, size - len(value))
        if size > MAX_FIELD_CHARS or self.budget < 0:
            raise ParseError(f"BibTeX @string macros in {where} expand past the size limit ({MAX_FIELD_CHARS:,} "
                             "characters for one value, as much as the file itself for all): not a bibliography")
        return "".join(parts)


def parse_bibtex(text: str, path: str) -> ParseResult:
    """A .bib export. Any malformed block fails the whole file: bibtexparser resumes after a broken
    entry, and silently losing papers from a user's library is worse than a clear error."""
    text = text.lstrip(_BOM)
    budget = len(text) + MAX_FIELD_CHARS
    library = bibtexparser.parse_string(text, parse_stack=_bibtex_stack(budget))
    recovered = _recover_duplicates(library, budget)
    if failed := [block for block in library.failed_blocks if not isinstance(block, _DUPLICATES)]:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise ParseError(_bibtex_failure(failed[0]) + more)
    entries = sorted([*library.entries, *recovered], key=lambda entry: entry.start_line or 0)
    if not entries:
        raise ParseError("no BibTeX entries found")
    return _result(
        "bibtex",
        (
            _bibtex_entry(entry, SourceRef(file=path, format="bibtex", position=position))
            for position, entry in enumerate(entries, 1)
        ),
    )


def _bibtex_stack(budget: int, macros: Mapping[str, str] | None = None) -> list[Middleware]:
    # co-authors are split before LaTeX decoding so "{Barnes and Noble}" stays one name
    return [RemoveEnclosingMiddleware(), _ResolveMacros(budget, macros), NormalizeFieldKeys(), SeparateCoAuthors()]


_DUPLICATES = (DuplicateBlockKeyBlock, DuplicateFieldKeyBlock)


def _recover_duplicates(library: Library, budget: int) -> list[Entry]:
    """Entries bibtexparser sets aside for a citation key used twice (Mendeley exports repeat keys) or a field
    repeated within an entry (Scopus repeats `funding_details`): real papers, so they are kept (the first value of
    a repeated field wins; two entries under one key are two records, merged only if they are the same paper),
    passed through the same middleware as the other entries, with the file's @string macros."""
    entries: list[Block] = []  # Entry objects; Library.add takes the wider list
    for block in library.failed_blocks:
        if isinstance(block, _DUPLICATES) and isinstance(entry := block.ignore_error_block, Entry):
            first: dict[str, Field] = {}
            for field in entry.fields:
                first.setdefault(field.key.lower(), field)
            entries.append(Entry(entry.entry_type, entry.key, list(first.values()), entry.start_line, entry.raw))
    if not entries:
        return []
    recovered = Library()
    recovered.add(entries, fail_on_duplicate_key=False)
    for middleware in _bibtex_stack(budget, {string.key.lower(): string.value for string in library.strings}):
        recovered = middleware.transform(recovered)
    return list(recovered.entries)


# ---------------------------------------------------------------- RIS


def _close_ris_records(text: str) -> str:
    """rispy drops a record that lacks its 'ER' line and merges it into the next 'TY'; add the missing ERs.
    A last record without its 'ER' is different: the export was cut short, so the file is refused rather
    than read as an update that loses (or truncates) papers."""
    lines: list[str] = []
    open_record = 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("TY  -"):
            if open_record:
                lines.append("ER  - ")
            open_record = number
        elif line.startswith("ER  -"):
            open_record = 0
        lines.append(line)
    if open_record:
        raise ParseError(
            f"the last RIS record (from line {open_record}) has no 'ER  - ' line: the file looks cut short; "
            "export it again"
        )
    return "\n".join(lines)


def _ris_record(record: dict[str, Any], source: SourceRef) -> Paper | Skipped:
    def first(*keys: str) -> Any:
        return next((record[key] for key in keys if record.get(key)), None)

    year, date = _year_and_date(first("year"), first("publication_year"), first("date"))
    return _paper(
        source,
        abstract=first("abstract", "notes_abstract"),  # AB, N2
        title=first("title", "primary_title"),  # TI, T1
        label=_plain(first("id")),  # ID: the record's key in the exporting library
        authors=first("authors", "first_authors") or [],  # AU, A1
        year=year,
        date=date,
        venue=first("journal_name", "alternate_title3", "secondary_title"),  # JO, JF, T2
        url=(first("urls") or [None])[0],
        doi=first("doi"),
        keywords=_keywords(first("keywords")),  # KW
    )


def parse_ris(text: str, path: str) -> ParseResult:
    """A .ris export (Zotero, EndNote, Mendeley, publishers); rispy joins continuation lines."""
    text = text.lstrip(_BOM)
    if not _sniff_ris(text):
        raise ParseError("not RIS: no record starts with a 'TY  - ' line")
    try:
        records = rispy.loads(_close_ris_records(text))
    except (KeyError, IndexError, TypeError, ValueError) as err:  # rispy trips on misplaced continuation lines
        raise ParseError(f"malformed RIS ({type(err).__name__}: {err}); export the file again") from None
    return _result(
        "ris",
        (
            _ris_record(record, SourceRef(file=path, format="ris", position=position))
            for position, record in enumerate(records, 1)
        ),
    )


# ---------------------------------------------------------------- JSON, CSL-JSON, JSONL


def _json_number(digits: str) -> int | str:
    """Integers past Python's 4,300-digit conversion limit stay text (they are never years or usable ids)."""
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else digits


def _load_json(text: str, jsonl_line: int | None = None) -> Any:
    """json.loads that fails with one ParseError line for anything: bad syntax, 100,000-deep nesting; NaN and
    Infinity are not JSON and read as null. `jsonl_line`: the line's number when `text` is one JSONL line."""
    try:
        return json.loads(text, parse_int=_json_number, parse_constant=lambda _: None)
    except json.JSONDecodeError as err:
        where = f"at line {err.lineno}" if jsonl_line is None else f"on line {jsonl_line}"
        raise ParseError(f"invalid JSON {where}, column {err.colno}: {err.msg}") from None
    except RecursionError:
        where = "" if jsonl_line is None else f" on line {jsonl_line}"
        raise ParseError(f"JSON nested too deeply{where} to be a record") from None


def _json_array(text: str) -> list[Any]:
    data = _load_json(text.lstrip(_BOM))
    if not isinstance(data, list):
        found = "an object" if isinstance(data, dict) else type(data).__name__
        raise ParseError(f"expected a JSON array of records, found {found}")
    return data


def _looks_like_csl(item: object) -> bool:
    return isinstance(item, dict) and (
        "issued" in item
        or "container-title" in item
        or (isinstance(item.get("author"), list) and any(isinstance(a, dict) for a in item["author"]))
    )


def _date_parts(issued: dict[str, Any]) -> list[str]:
    """CSL "date-parts" is [[2021, 3, 15]]; exports also write [2021, 3], [[null]] or [null]."""
    parts = issued.get("date-parts")
    if isinstance(parts, list) and parts and isinstance(parts[0], list):
        parts = parts[0]
    if not isinstance(parts, list):
        return []
    return [text for part in parts if (text := _scalar(part))]


def _csl_item(item: dict[str, Any], source: SourceRef) -> Paper | Skipped:
    """A CSL item; its `id` is a citation key, local to the user's library, so it is not the paper id."""
    if oversized := _oversized({key: item.get(key) for key in ("title", "abstract", "container-title", "URL", "DOI")}):
        return Skipped(position=source.position, reason=oversized)
    issued = written if isinstance(written := item.get("issued"), dict) else {}
    container = item.get("container-title")
    issued_text = "-".join(_date_parts(issued)) or _plain(issued.get("raw")) or _plain(issued.get("literal"))
    year, date = _year_and_date(issued_text)
    return _paper(
        source,
        abstract=item.get("abstract"),
        title=item.get("title"),
        label=_plain(item.get("id")),
        authors=_authors(item.get("author")),
        year=year,
        date=date,
        venue=_plain(container[:1] if isinstance(container, list) else container),
        url=_plain(item.get("URL")),
        doi=_plain(item.get("DOI")),
        keywords=_keywords(item.get("keyword")),
        attachments=attached_files(item.get("file")),
    )


def parse_csl_json(text: str, path: str) -> ParseResult:
    """CSL-JSON, as Zotero's "Better CSL JSON" and pandoc-citeproc write it."""
    return _objects(_json_array(text), path, "csl-json", _csl_item)


def parse_json(text: str, path: str) -> ParseResult:
    """A JSON array of plain records (same field aliases as JSONL); CSL arrays go to the CSL mapping."""
    items = _json_array(text)
    if any(_looks_like_csl(item) for item in items):
        return _objects(items, path, "csl-json", _csl_item)
    return _objects(items, path, "json", _plain_object)


def stream_jsonl(lines: Iterable[str], path: str) -> Iterator[Paper | Skipped]:
    """One JSON record per line (BEIR corpus.jsonl, dataset dumps), a line at a time; `id`/`_id` is kept as the
    paper id. Blank lines are not records; a line that is not a JSON object is skipped, invalid JSON is fatal."""
    position = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        value = _load_json(line.lstrip(_BOM) if number == 1 else line, number)
        position += 1
        yield (_plain_object(value, SourceRef(file=path, format="jsonl", position=position))
               if isinstance(value, dict) else Skipped(position=position, reason="not a JSON object"))


def parse_jsonl(text: str, path: str) -> ParseResult:
    # split on "\n" only: str.splitlines() would also break at U+2028 inside JSON strings
    return _result("jsonl", stream_jsonl(text.split("\n"), path))


# ---------------------------------------------------------------- CSV


def _csv_dialect(text: str) -> type[csv.Dialect] | None:
    """Excel quoting with the sniffed delimiter. Only the delimiter is trusted: the Sniffer often reports
    doublequote=False (then '""' and '&amp;' inside quotes split fields) and may take apostrophes for quotes."""
    sample = text[:_CSV_SNIFF_CHARS]
    if (last_line := sample.rfind("\n")) > 0:
        sample = sample[:last_line]  # whole lines: a cut quoted field confuses the Sniffer
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        return None
    return type("SniffedDialect", (_StrictExcel,), {"delimiter": delimiter})


def parse_csv(text: str, path: str, mapping: dict[str, str] | None = None) -> ParseResult:
    """A spreadsheet export; `mapping` (our field -> their column) covers headers no alias matches."""
    text = text.lstrip(_BOM)
    reader = csv.reader(io.StringIO(text), dialect=_csv_dialect(text) or _StrictExcel)
    try:
        header = next((row for row in reader if row), None)
        if not header:
            raise ParseError("empty CSV file")
        columns = _match_columns(header, mapping)
        if "abstract" not in columns and "title" not in columns:
            shown = ", ".join(name[:40] for name in header[:20]) + (", …" if len(header) > 20 else "")
            raise ParseError(f"no abstract or title column (columns: {shown}); map one with --csv-map abstract=COLUMN")
        return _result("csv", _csv_rows(reader, header, columns, path))
    except csv.Error as err:
        raise ParseError(f"malformed CSV near line {reader.line_num}: {err}") from err


class _StrictExcel(csv.excel):
    strict = True  # a quote left open at the end of the file is an error, not a field that swallows the rest


def _csv_rows(reader: Any, header: list[str], columns: dict[str, str], path: str) -> Iterator[Paper | Skipped]:
    """Rows as papers. A row with more or fewer fields than the header means a file cut mid-row or an
    unquoted delimiter: the file is refused, so a damaged export never updates the library."""
    for position, row in enumerate((row for row in reader if row), 1):
        if len(row) != len(header):
            raise ParseError(
                f"row {position} (line {reader.line_num}) has {len(row)} fields but the header has {len(header)}: "
                "the file may be cut short or have an unquoted delimiter"
            )
        record = dict(zip(header, row))
        yield _record_paper(record, columns, SourceRef(file=path, format="csv", position=position))


# ---------------------------------------------------------------- arXiv Atom

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"


def _atom_entry(entry: Element, source: SourceRef) -> Paper | Skipped:
    entry_id = entry.findtext(f"{_ATOM}id", "").strip()
    summary = entry.findtext(f"{_ATOM}summary")
    if "/api/errors" in entry_id:  # the arXiv API reports a bad query as an entry
        return Skipped(position=source.position, reason=f"arXiv API error: {' '.join((summary or '').split())}")
    links = entry.findall(f"{_ATOM}link")
    category = entry.find(f"{_ARXIV}primary_category")
    year, date = _year_and_date(entry.findtext(f"{_ATOM}published"))
    return _paper(
        source,
        abstract=summary,
        title=entry.findtext(f"{_ATOM}title"),
        authors=[author.findtext(f"{_ATOM}name", "") for author in entry.findall(f"{_ATOM}author")],
        year=year,
        date=date,
        venue=None if category is None else category.get("term"),
        url=next((link.get("href") for link in links if link.get("rel") == "alternate"), entry_id or None),
        doi=entry.findtext(f"{_ARXIV}doi"),
        arxiv_id=entry_id or None,
    )


def parse_arxiv_atom(text: str, path: str) -> ParseResult:
    """A saved arXiv API response (export.arxiv.org/api/query)."""
    try:
        root = _xml_fromstring(text.lstrip(_BOM))
    except (XMLParseError, ValueError) as err:  # defusedxml refuses entity tricks with ValueError subclasses
        raise ParseError(f"malformed Atom XML: {err}") from err
    if root.tag != f"{_ATOM}feed":
        raise ParseError(f"not an Atom feed (root element {root.tag!r})")
    return _result(
        "arxiv-atom",
        (
            _atom_entry(entry, SourceRef(file=path, format="arxiv-atom", position=position))
            for position, entry in enumerate(root.findall(f"{_ATOM}entry"), 1)
        ),
    )


# ---------------------------------------------------------------- sniffing


_FIRST_CHAR = re.compile(r"[^\s\ufeff]")


def _head_start(text: str) -> int:
    first = _FIRST_CHAR.search(text)
    return first.start() if first else len(text)


def _head(text: str) -> str:
    """What a sniffer looks at: `_SNIFF_CHARS` from the first non-blank character, so guessing a format costs
    the same for a 1 KB file and a 500 MB one, and blank lines in front cost one scan."""
    start = _head_start(text)
    return text[start : start + _SNIFF_CHARS]


def _sniff_atom(text: str) -> bool:
    head = _head(text)  # [^<>]*, not [^>]*: each '<feed' scans only to the next tag, never to the end of the head
    return head.startswith("<") and bool(re.search(r"<feed\b[^<>]*http://www\.w3\.org/2005/Atom", head))


def _sniff_json(text: str) -> bool:
    return bool(re.match(r"\[\s*[{\]]", _head(text)))


def _sniff_jsonl(text: str) -> bool:
    """The first non-blank line is a JSON object. A first line over _SNIFF_RECORD_CHARS is not parsed here (a
    300 MB record would be read twice): it counts if it starts with '{' and ends with '}'."""
    start = _head_start(text)
    if not text.startswith("{", start):
        return False
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    if end - start > _SNIFF_RECORD_CHARS:
        return text[max(start, end - 64) : end].rstrip().endswith("}")
    try:
        return isinstance(_load_json(text[start:end]), dict)
    except ParseError:
        return False


def _sniff_ris(text: str) -> bool:
    return bool(re.search(r"^\ufeff?TY  - ", text, re.MULTILINE))


def _sniff_bibtex(text: str) -> bool:
    """'@type{key,' rather than any '@word{', so prose with an @handle does not count. The indentation before
    '@' stays on its line: a leading \\s* would span every blank line below each line start (quadratic)."""
    return bool(re.search(r"^[^\S\n]*@\w+\s*[{(]\s*[^\s,={}()]+\s*,", text, re.MULTILINE))


def _sniff_csv(text: str) -> bool:
    """A delimiter the Sniffer trusts, a header of short column names and rows as wide as the header, read
    from the head only: a quote left open would otherwise make the reader walk the whole file."""
    start = 1 if text.startswith(_BOM) else 0
    head = text[start : start + _SNIFF_CHARS]
    cut = start + len(head) < len(text)
    dialect = _csv_dialect(head)
    if dialect is None:
        return False
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(head), dialect):
            if row:
                rows.append(row)
            if len(rows) == 6:
                break
    except csv.Error:
        if not cut:
            return False
    if cut and len(rows) < 6:
        rows = rows[:-1]  # the head may end inside the last row
    if len(rows) < 2:
        return False
    header, *rows = rows
    return (
        sum(1 for name in header if name.strip()) >= 2
        and all(len(name) <= 40 for name in header)
        and all(len(row) == len(header) for row in rows)
    )


EXPORT_SNIFFERS: list[tuple[str, Sniff, Parser]] = [
    ("arxiv-atom", _sniff_atom, parse_arxiv_atom),
    ("json", _sniff_json, parse_json),
    ("jsonl", _sniff_jsonl, parse_jsonl),
    ("ris", _sniff_ris, parse_ris),
    ("bibtex", _sniff_bibtex, parse_bibtex),
    ("csv", _sniff_csv, parse_csv),
]
STREAMS: dict[str, Callable[[Iterable[str], str], Iterator[Paper | Skipped]]] = {"jsonl": stream_jsonl}
