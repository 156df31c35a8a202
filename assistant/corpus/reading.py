"""Reading files: regular files only, gzip read as it is, a bounded head for sniffing, and lines one at a time.

A whole file in memory is fine for a 2 MB .bib, not for a 4.5 GB arXiv snapshot, so line-oriented formats are
read through `stream_lines`: each line is read with a bounded `readline`, so one 300 MB "record" is refused after
reading a few MB of it, and the file's SHA-256 is computed from the bytes as they pass.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import ParseError

GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 1 << 20  # what sniffers see of a streamed file: whole lines of its first MB
_READ_CHUNK = 1 << 20
_FILE_KINDS = {stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
               stat.S_ISSOCK: "a socket", stat.S_ISDIR: "a directory"}


def megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


@contextmanager
def open_regular(path: str | Path, max_bytes: int | None = None) -> Iterator[BinaryIO]:
    """A regular file opened for reading. FIFOs and devices (/dev/zero, /dev/urandom) are refused without reading,
    and so is a file over `max_bytes` (when given), before a byte is read: a sparse 3 GB file costs nothing."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)  # a FIFO must not block open()
    try:
        handle = os.open(path, flags)
    except OSError as err:
        raise ParseError(f"cannot open: {err.strerror or err}") from None
    with os.fdopen(handle, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _FILE_KINDS.items() if test(info.st_mode)), "not a regular file")
            raise ParseError(f"{kind}, not a regular file: only regular files are read")
        if max_bytes is not None and info.st_size > max_bytes:
            raise ParseError(f"{megabytes(info.st_size)} is over the {megabytes(max_bytes)} limit "
                             "(LITASSIST_MAX_FILE_MB)")
        yield file


def read_file(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a regular file (as stored: a .gz file stays compressed, see `unpack`)."""
    with open_regular(path, max_bytes) as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while being read
        raise ParseError(f"over the {megabytes(max_bytes)} limit (LITASSIST_MAX_FILE_MB)")
    return data


def _gzip_failure(error: Exception) -> ParseError:
    return ParseError(f"the gzip file is damaged or cut short ({error}); download or compress it again")


def unpack(data: bytes, max_bytes: int) -> bytes:
    """The file's content: gzip (found by its magic bytes, whatever the name) is decompressed, at most `max_bytes`
    of it, so a gzip bomb (1 MB that inflates to 1 GB) is refused after `max_bytes`, not after filling memory."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
            content = unzipped.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise _gzip_failure(error) from None
    if len(content) > max_bytes:
        raise ParseError(f"decompresses to over the {megabytes(max_bytes)} limit (LITASSIST_MAX_FILE_MB)")
    return content


_NOT_READ = "export the references from your reference manager as BibTeX, RIS or CSL-JSON and ingest that"
_COMPRESSED = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd", b"7z\xbc\xaf\x27\x1c": "7-Zip"}
_IMAGES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")


def describe_binary(head: bytes, path: str) -> str | None:
    """What a file we cannot read looks like, from its magic bytes, and what to do: "a PDF", "an Excel workbook"."""
    suffix = Path(path).suffix.lower()
    if head.startswith(b"PK\x03\x04"):  # Office files are ZIP archives; their part names come first
        if b"xl/" in head:
            return "an Excel workbook (.xlsx): save it as CSV (File > Save As > CSV UTF-8) and ingest the CSV"
        if b"word/" in head:
            return f"a Word document (.docx), not a reference export: {_NOT_READ}"
        if b"opendocument.spreadsheet" in head:
            return "an OpenDocument spreadsheet (.ods): save it as CSV and ingest the CSV"
        return "a ZIP archive: unzip it and ingest the files inside"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):  # OLE2: Office 97-2003
        if suffix == ".xls":
            return "an Excel 97-2003 workbook (.xls): save it as CSV and ingest the CSV"
        return f"an old Microsoft Office file (.doc or .xls): save a workbook as CSV; for a document, {_NOT_READ}"
    if head.startswith(_IMAGES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "an image, not a reference export"
    if head.startswith(b"SQLite format 3\x00"):
        return "a SQLite database, not an export: only a Zotero library's zotero.sqlite is read as a database"
    if kind := next((name for magic, name in _COMPRESSED.items() if head.startswith(magic)), None):
        return f"a {kind}-compressed file: decompress it first (gzip files are read as they are)"
    return None


def describe_text(head: str) -> str | None:
    """What an unrecognized text file looks like, when it looks like something we know (a saved web page)."""
    start = head.lstrip("\ufeff \t\r\n")[:200].lower()
    if start.startswith(("<!doctype html", "<html")):
        return ("an HTML page: save the page's references (most sites offer BibTeX or RIS), "
                "or copy its text into a .txt file")
    return None


def check_binary(data: bytes, path: str) -> None:
    """Refuse bytes that are not text with one line saying what they look like; NUL bytes anywhere count."""
    if description := describe_binary(data[:4096], path):
        raise ParseError(f"a binary file that looks like {description}")
    if (nul := data.find(b"\x00")) >= 0:
        raise ParseError(f"binary file (a NUL byte at offset {nul}), not a text export")


class _Hashing(io.RawIOBase):
    """A raw reader that feeds every byte it passes on into `digest` (the file's SHA-256, read once)."""

    def __init__(self, file: BinaryIO, digest: hashlib._Hash):
        self.file, self.digest = file, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self.file.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self.digest.update(buffer[:count])
        return count or 0


def read_head(path: str | Path) -> bytes:
    """The first HEAD_BYTES of the file's content (decompressed when it is gzip), for sniffing."""
    with open_regular(path) as file:
        magic = file.read(2)
        file.seek(0)
        try:
            return (gzip.GzipFile(fileobj=file) if magic == GZIP_MAGIC else file).read(HEAD_BYTES)
        except (OSError, EOFError, zlib.error) as error:
            raise _gzip_failure(error) from None


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file as stored, read in chunks (a multi-GB file is never in memory)."""
    digest = hashlib.sha256()
    hash_file(digest, path)
    return digest.hexdigest()


def hash_file(digest: hashlib._Hash, path: str | Path) -> None:
    """Feed a file's bytes to `digest` in chunks (several files may make one fingerprint: a database and its log)."""
    with open_regular(path) as file:
        while chunk := file.read(_READ_CHUNK):
            digest.update(chunk)


def head_text(head: bytes) -> str:
    """Whole lines of a head (a multi-byte character cut at its end is dropped with the cut line)."""
    if len(head) == HEAD_BYTES and (end := head.rfind(b"\n")) > 0:
        head = head[:end]
    return head.decode("utf-8-sig", errors="replace")


def stream_lines(path: str | Path, max_line_bytes: int, digest: hashlib._Hash) -> Iterator[str]:
    """The file's lines (gzip decompressed), decoded, without their line ends, one at a time.

    A line over `max_line_bytes` is refused (naming it) after reading only that much of it; so is a line with NUL
    bytes or one that is not UTF-8. `digest` receives every byte of the file as stored, for the unchanged-file check.
    """
    with open_regular(path) as file:
        raw = _Hashing(file, digest)
        buffered = io.BufferedReader(raw, _READ_CHUNK)
        reader: gzip.GzipFile | io.BufferedReader[_Hashing] = (
            gzip.GzipFile(fileobj=buffered) if buffered.peek(2)[:2] == GZIP_MAGIC else buffered
        )
        number = 0
        try:
            while line := reader.readline(max_line_bytes + 2):  # + "\r\n"
                number += 1
                yield _decoded(line.rstrip(b"\r\n") if line.endswith(b"\n") else line, number, max_line_bytes)
            while raw.read(_READ_CHUNK):  # bytes gzip left unread still belong to the file's hash
                pass
        except (OSError, EOFError, zlib.error) as error:
            raise _gzip_failure(error) from None


def _decoded(line: bytes, number: int, max_line_bytes: int) -> str:
    if len(line) > max_line_bytes:
        raise ParseError(f"line {number} is over the {megabytes(max_line_bytes)} limit for one record "
                         "(LITASSIST_MAX_RECORD_MB): the file may be damaged; raise the limit if the record is real")
    if (nul := line.find(b"\x00")) >= 0:
        raise ParseError(f"binary content: a NUL byte on line {number} (column {nul + 1}), not a text export")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ParseError(f"not UTF-8: invalid byte 0x{line[err.start]:02x} on line {number}, column {err.start + 1}; "
                         "re-save the file as UTF-8") from None
    return text.removeprefix("\ufeff") if number == 1 else text
