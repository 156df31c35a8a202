"""Parsing: any supported file -> Paper records. Formats are detected from content, not only the extension."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .exports import EXPORT_SNIFFERS, parse_csv
from .records import Paper, ParseError, ParseResult, Skipped, SourceRef, normalize_abstract, normalize_title
from .scraped import SCRAPED_SNIFFERS

__all__ = [
    "Paper",
    "ParseError",
    "ParseResult",
    "ParsedFile",
    "Skipped",
    "SourceRef",
    "discover_files",
    "duplicate_keys",
    "file_sha256",
    "merge_duplicates",
    "merge_into",
    "parse_file",
    "parse_text",
]

Parser = Callable[[str, str], ParseResult]
SNIFFERS: list[tuple[str, Callable[[str], bool], Parser]] = [*EXPORT_SNIFFERS, *SCRAPED_SNIFFERS]
_EXTENSION_HINTS = {
    ".bib": "bibtex",
    ".ris": "ris",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".xml": "arxiv-atom",
    ".atom": "arxiv-atom",
}


@dataclass(frozen=True)
class ParsedFile:
    """A file read and parsed in full before anything is stored, so a bad file stores nothing."""

    path: str
    sha256: str
    result: ParseResult


def discover_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories recursively (skipping hidden entries); keep explicit files as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        else:
            found.append(path)
    return list(dict.fromkeys(p.resolve() for p in found))


def decode(data: bytes) -> str:
    """UTF-8 text or a one-line ParseError saying why not (empty, binary, other encoding)."""
    if not data.strip():
        raise ParseError("empty file")
    if b"\x00" in data[:8192]:
        raise ParseError("binary file (contains NUL bytes), not a text export")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ParseError(
            f"not UTF-8: invalid byte 0x{data[err.start]:02x} at offset {err.start}; re-save the file as UTF-8"
        ) from None


def detect_format(text: str, path: str) -> tuple[str, Parser]:
    """Pick the parser whose sniffer accepts the content; the extension only breaks ties."""
    accepted = [(name, parser) for name, sniff, parser in SNIFFERS if sniff(text)]
    hint = _EXTENSION_HINTS.get(Path(path).suffix.lower())
    if not accepted and hint:  # e.g. a ragged .csv: its own parser gives the precise error
        return next((name, parser) for name, _, parser in SNIFFERS if name == hint)
    if not accepted:
        raise ParseError(
            "unrecognized format (expected BibTeX, RIS, CSL-JSON, JSON/JSONL, CSV, arXiv Atom, "
            "or a scraped listing of abstracts)"
        )
    return next(((n, p) for n, p in accepted if n == hint), accepted[0])


def parse_text(text: str, path: str, csv_mapping: dict[str, str] | None = None) -> ParseResult:
    name, parser = detect_format(text, path)
    if name == "csv":
        return parse_csv(text, path, mapping=csv_mapping)
    return parser(text, path)


def parse_file(path: str | Path, csv_mapping: dict[str, str] | None = None, data: bytes | None = None) -> ParsedFile:
    """Read (unless `data` is given), decode and parse one file; raises ParseError with a one-line reason."""
    data = Path(path).read_bytes() if data is None else data
    text = decode(data)
    result = parse_text(text, str(path), csv_mapping)
    if not result.papers and not result.skipped:
        raise ParseError(f"no papers found in this {result.format} file")
    return ParsedFile(path=str(path), sha256=file_sha256(data), result=result)


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def duplicate_keys(paper: Paper) -> Iterator[str]:
    """Every key under which two records are the same paper: id, DOI, arXiv id, title, abstract."""
    yield f"id:{paper.paper_id}"
    if paper.doi:
        yield f"doi:{paper.doi}"
    if paper.arxiv_id:
        yield f"arxiv:{paper.arxiv_id}"
    if not paper.title_derived and (title := normalize_title(paper.title)):
        yield f"title:{title}"
    if abstract := normalize_abstract(paper.abstract):
        yield f"abstract:{abstract}"


def merge_into(kept: Paper, other: Paper) -> Paper:
    """Combine two records of one paper: kept's id wins, missing fields are filled, sources are unioned."""
    update: dict[str, object] = {}
    for field in ("authors", "author_count", "year", "date", "venue", "url", "doi", "arxiv_id"):
        if not getattr(kept, field) and getattr(other, field):
            update[field] = getattr(other, field)
    if kept.title_derived and not other.title_derived:
        update.update(title=other.title, title_derived=False)
    if len(other.abstract) > len(kept.abstract):
        update["abstract"] = other.abstract
    sources = list(kept.sources)
    sources += [s for s in other.sources if s not in sources]
    update["sources"] = sources
    return kept.model_copy(update=update)


def merge_duplicates(papers: Iterable[Paper]) -> tuple[list[Paper], int]:
    """Collapse records of the same paper (first seen keeps its id); returns (papers, number merged)."""
    merged: list[Paper] = []
    index_of: dict[str, int] = {}
    count = 0
    for paper in papers:
        keys = list(duplicate_keys(paper))
        hit = next((index_of[k] for k in keys if k in index_of), None)
        if hit is None:
            hit = len(merged)
            merged.append(paper)
        else:
            merged[hit] = merge_into(merged[hit], paper)
            count += 1
        for key in duplicate_keys(merged[hit]):
            index_of.setdefault(key, hit)
    return merged, count
