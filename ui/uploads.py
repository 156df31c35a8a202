"""Uploaded files -> files under <home>/uploads/ -> ingest. Separate from the page so it is tested directly.

Uploads are kept (not temporary files) because the library records each paper's source file: keeping the
file lets a later upload of the same name update those papers in place, and "forget this file" name it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from assistant import Assistant, IngestReport, Paper, ProgressCallback

# Every extension ingest has a parser hint for, plus .txt (scraped pages, bare abstracts, Web of Science's
# savedrecs.txt: sniffed by content), .gz (any of them compressed) and .pdf (a paper's full text: the upload is
# the file the paper's pages are shown from). A zotero.sqlite is read from the command line, where the paths of its
# attached files still mean something.
UPLOAD_TYPES = ["txt", "gz", "bib", "ris", "json", "jsonl", "ndjson", "csv", "tsv", "xml", "atom", "nbib", "ciw", "rdf",
                "pdf"]
MAX_UPLOAD_MB = 50  # per file; a 50 MB export is ~100k abstracts, more than one browser upload should carry
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")  # control characters, path separators, Windows-reserved
MAX_NAME_BYTES = 200  # file names stay well under the 255-byte limit of common file systems


class Upload(Protocol):
    """What Streamlit's UploadedFile offers and this module uses."""

    name: str
    size: int

    def getvalue(self) -> bytes: ...


@dataclass
class UploadResult:
    saved: list[Path] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one line per file: name and why
    report: IngestReport | None = None
    added: list[Paper] = field(default_factory=list)  # the papers that are new in the library


def upload_folder(home: Path) -> Path:
    return Path(home).expanduser().resolve() / "uploads"


def safe_name(name: str) -> str:
    """The upload's own file name, kept as written where it is safe: its last path component (after `/` or
    `\\`), with control and reserved characters replaced, not hidden (ingest skips dotfiles), and short enough
    for the file system with its extension kept. Distinct ordinary names stay distinct ("my refs.jsonl" and
    "my_refs.jsonl" are two files), so one upload never replaces another's papers by accident."""
    last = re.split(r"[/\\]", name)[-1]
    cleaned = _UNSAFE.sub("_", last).strip().lstrip(".").strip() or "upload.txt"
    stem, suffix = _split_suffix(cleaned)
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return (stem.rstrip() or "upload") + suffix


def _split_suffix(name: str) -> tuple[str, str]:
    stem, dot, suffix = name.rpartition(".")
    return (stem, dot + suffix) if dot and stem and len(suffix) <= 10 else (name, "")


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or "name (2).ext", "name (3).ext", ... when an earlier file of the same batch took it."""
    stem, suffix = _split_suffix(name)
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        candidate = f"{stem} ({number}){suffix}"
    taken.add(candidate.casefold())
    return candidate


def save_uploads(files: Iterable[Upload], folder: Path, max_mb: float = MAX_UPLOAD_MB) -> UploadResult:
    """Write acceptable uploads into `folder` (the same name as an earlier upload = a new version of that file;
    two files of one batch never overwrite each other); reject the rest."""
    result = UploadResult()
    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    for upload in files:
        suffix = Path(upload.name).suffix.lower().lstrip(".")
        if suffix not in UPLOAD_TYPES:
            result.rejected.append(f"{upload.name}: .{suffix or '?'} is not a supported format "
                                   f"({', '.join('.' + t for t in UPLOAD_TYPES)})")
            continue
        if upload.size > max_mb * 1024 * 1024:
            result.rejected.append(f"{upload.name}: {upload.size / 1024 / 1024:.1f} MB is over the {max_mb:g} MB "
                                   "limit per file; split the export or ingest it with `litassist ingest`")
            continue
        target = folder / _unique(safe_name(upload.name), taken)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".upload-", suffix=".part", delete=False) as partial:
            try:
                partial.write(upload.getvalue())
            except BaseException:
                Path(partial.name).unlink(missing_ok=True)
                raise
        os.replace(partial.name, target)  # a reader never sees half a file; the staging name is short and unique
        result.saved.append(target)
    return result


def ingest_uploads(
    lib: Assistant, files: Iterable[Upload], progress: ProgressCallback | None = None, max_mb: float = MAX_UPLOAD_MB
) -> UploadResult:
    """Save the uploads under <home>/uploads/, ingest exactly those files, and name the papers that are new: those
    the saved files alone hold (each is saved under a name no file had, so a paper the library held before has
    another source; a duplicate merged into it is not new). Only the uploads' papers are read."""
    result = save_uploads(files, upload_folder(lib.settings.home), max_mb)
    if result.saved:
        result.report = lib.ingest(result.saved, progress=progress)
        saved = {str(path.resolve()) for path in result.saved}
        result.added = [p for p in lib.papers_of_files(sorted(saved)) if all(s.file in saved for s in p.sources)]
    return result
