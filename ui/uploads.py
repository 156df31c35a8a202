"""Uploaded files -> files under <home>/uploads/ -> ingest. Separate from the page so it is tested directly.

Uploads are kept (not temporary files) because the library records each paper's source file: keeping the
file lets a later upload of the same name update those papers in place, and "forget this file" name it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from assistant.api import Assistant
from assistant.index import IngestReport, ProgressCallback

# Every extension ingest has a parser hint for, plus .txt (scraped pages, bare abstracts: sniffed by content).
UPLOAD_TYPES = ["txt", "bib", "ris", "json", "jsonl", "ndjson", "csv", "tsv", "xml", "atom"]
MAX_UPLOAD_MB = 50  # per file; a 50 MB export is ~100k abstracts, more than one browser upload should carry
_UNSAFE = re.compile(r"[^\w.\-]+")


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


def upload_folder(home: Path) -> Path:
    return Path(home).expanduser().resolve() / "uploads"


def safe_name(name: str) -> str:
    """A file name that stays inside the uploads folder and is not hidden (ingest skips dotfiles)."""
    cleaned = _UNSAFE.sub("_", Path(name).name).lstrip("._")
    return cleaned or "upload.txt"


def save_uploads(files: Iterable[Upload], folder: Path, max_mb: float = MAX_UPLOAD_MB) -> UploadResult:
    """Write acceptable uploads into `folder` (same name = a new version of that file); reject the rest."""
    result = UploadResult()
    folder.mkdir(parents=True, exist_ok=True)
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
        target = folder / safe_name(upload.name)
        partial = target.with_name(f".{target.name}.part")
        partial.write_bytes(upload.getvalue())
        partial.replace(target)  # a reader never sees half a file
        result.saved.append(target)
    return result


def ingest_uploads(
    lib: Assistant, files: Iterable[Upload], progress: ProgressCallback | None = None, max_mb: float = MAX_UPLOAD_MB
) -> UploadResult:
    """Save the uploads under <home>/uploads/ and ingest exactly those files."""
    result = save_uploads(files, upload_folder(lib.settings.home), max_mb)
    if result.saved:
        result.report = lib.ingest(result.saved, progress=progress)
    return result
