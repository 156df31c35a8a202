"""The Zotero database itself (`zotero.sqlite` in Zotero's data folder), read directly with SQLite.

Zotero keeps its database open and locked while it runs, so the file is opened with `immutable=1`: SQLite takes no
lock and never writes (not even a journal). A database in WAL mode whose log still holds changes is copied, with
its log, to a temporary folder and read there, so edits Zotero has not yet checkpointed are seen and the original
is still never touched. Items are read with their fields, creators in order, tags, collections (as paths) and the
paths of their attached files (the PDFs among them are read by `corpus.parse_zotero_file`, through the PDF text
cache); notes, attachments, annotations, feed items and anything in the trash are not papers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ParseError
from .exports import _paper, _result, _year_and_date
from .reading import hash_file
from .records import Paper, ParseResult, Skipped, SourceRef

FORMAT = "zotero"
DATABASE_NAME = "zotero.sqlite"
COLLECTION_SEPARATOR = "/"  # a nested collection is stored as its path: "Thesis/Chapter 2"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_ZOTERO_TABLES = frozenset({"items", "itemData", "itemDataValues", "itemCreators", "creators", "creatorTypes",
                            "collections", "collectionItems", "itemAttachments", "deletedItems", "tags", "itemTags"})
_NOT_PAPERS = ("note", "attachment", "annotation")
_TITLE_FIELDS = ("title", "caseName", "subject", "nameOfAct")  # the type-specific fields Zotero maps to "title"
_VENUE_FIELDS = ("publicationTitle", "proceedingsTitle", "bookTitle", "websiteTitle", "blogTitle", "forumTitle",
                 "encyclopediaTitle", "dictionaryTitle", "programTitle", "conferenceName", "repository",
                 "university", "institution")
_PRIMARY_CREATOR = "author"
_SINGLE_FIELD_NAME = 1  # creators.fieldMode: the whole name is in lastName (an organisation, a mononym)
_LINKED_FILE = 2  # itemAttachments.linkMode: a file outside Zotero's storage, by its own path
_STORED_PREFIX = "storage:"
_MULTIPART_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?: (.*))?")  # "2019-05-03 May 3, 2019": SQL date, as typed
_EXTRA_ID = re.compile(r"^\s*(arxiv|doi)\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
_READ_ATTEMPTS = 3


def database_file(path: str | Path) -> Path:
    """A Zotero data folder means the database in it; any other path is itself."""
    path = Path(path)
    return path / DATABASE_NAME if path.is_dir() and (path / DATABASE_NAME).is_file() else path


def is_zotero_database(path: str | Path) -> bool:
    """An SQLite file (by its header) that has Zotero's tables; any other file, or one that cannot be opened, is not."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size < 100:
            return False
        with open(path, "rb") as file:
            if file.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                return False
        with _opened(Path(path)) as db:
            return _ZOTERO_TABLES <= _tables(db)
    except (OSError, sqlite3.DatabaseError):
        return False


def read_zotero(path: str | Path) -> tuple[str, ParseResult]:
    """The database's fingerprint and its papers, read from one unchanging state: when Zotero writes while it is
    read (size or time of the file or its log changed), it is read again."""
    path = Path(path)
    for _ in range(_READ_ATTEMPTS):
        before = _stamp(path)
        try:
            digest, result = zotero_digest(path), parse_zotero(path)
        except sqlite3.DatabaseError as error:  # a page caught half-written reads as a malformed database
            failure = f"SQLite could not read it ({error})"
            continue
        if _stamp(path) == before:
            return digest, result
        failure = "Zotero kept writing to it while it was read"
    raise ParseError(f"Zotero database: {failure}; run ingest again (or close Zotero first)")


def zotero_digest(path: str | Path) -> str:
    """SHA-256 of the database and its write-ahead log: what ingest compares to see whether the library changed."""
    path = Path(path)
    digest = hashlib.sha256()
    for part in (path, _wal(path)):
        if part.exists():
            hash_file(digest, part)
    return digest.hexdigest()


def parse_zotero(path: str | Path) -> ParseResult:
    """Every regular item of every (non-feed) library in the database, as papers."""
    path = Path(path)
    try:
        with _opened(path) as db:
            missing = _ZOTERO_TABLES - _tables(db)
            if missing:
                raise ParseError(f"not a Zotero database: no {', '.join(sorted(missing))} table; give the "
                                 "zotero.sqlite from Zotero's data folder (Settings > Advanced > Files and Folders)")
            if "firstName" not in _columns(db, "creators"):  # Zotero 4 kept names in creatorData
                raise ParseError("a database from Zotero 4 or older: open it once in Zotero 5 or later (which "
                                 "upgrades it), then ingest it again")
            return _result(FORMAT, _items(db, path))
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError) and "no such" in str(error):
            raise ParseError(f"Zotero database of an unknown version: {error}") from None
        raise


# ---------------------------------------------------------------- opening without a lock


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _stamp(path: Path) -> tuple[tuple[int, int] | None, ...]:
    def one(part: Path) -> tuple[int, int] | None:
        with contextlib.suppress(FileNotFoundError):
            info = part.stat()
            return info.st_size, info.st_mtime_ns
        return None

    return one(path), one(_wal(path))


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only view that takes no lock: `immutable=1` on the file itself, or, while a write-ahead log holds
    changes that `immutable` would not see, a private copy of the file and its log."""
    with contextlib.ExitStack() as stack:
        wal = _wal(path)
        if wal.exists() and wal.stat().st_size:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="litassist-zotero-")))
            copy = folder / DATABASE_NAME
            shutil.copyfile(path, copy)
            shutil.copyfile(wal, _wal(copy))
            uri = f"{copy.resolve().as_uri()}?mode=rw"  # opening it replays the log into the copy
        else:
            uri = f"{path.resolve().as_uri()}?immutable=1"
        db = sqlite3.connect(uri, uri=True)
        stack.callback(db.close)
        yield db


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


# ---------------------------------------------------------------- items


class _Rows:
    """The rows of one query ordered by item id, handed out item by item (a merge join): each item's creators,
    tags, collections and attachments are read alongside it, never the whole table at once."""

    def __init__(self, rows: Iterable[tuple]):
        self._rows = iter(rows)
        self._next = next(self._rows, None)

    def take(self, item_id: int) -> list[tuple]:
        found = []
        while self._next is not None and self._next[0] <= item_id:
            if self._next[0] == item_id:
                found.append(self._next[1:])
            self._next = next(self._rows, None)
        return found


def _items(db: sqlite3.Connection, path: Path) -> Iterator[Paper | Skipped]:
    tables = _tables(db)
    fields = "fieldsCombined" if "fieldsCombined" in tables else "fields"
    item_types = "itemTypesCombined" if "itemTypesCombined" in tables else "itemTypes"
    trashed = "SELECT itemID FROM deletedItems"
    feeds = (
        "SELECT libraryID FROM libraries WHERE type = 'feed'" if "type" in _columns(db, "libraries") else "SELECT NULL"
    )
    items = db.execute(
        f"SELECT i.itemID, i.libraryID, i.key FROM items i JOIN {item_types} t ON t.itemTypeID = i.itemTypeID "
        f"WHERE t.typeName NOT IN ({', '.join('?' * len(_NOT_PAPERS))}) AND i.itemID NOT IN ({trashed}) "
        f"AND i.libraryID NOT IN ({feeds}) ORDER BY i.itemID", _NOT_PAPERS)
    values = _Rows(db.execute(
        f"SELECT d.itemID, f.fieldName, v.value FROM itemData d JOIN {fields} f ON f.fieldID = d.fieldID "
        "JOIN itemDataValues v ON v.valueID = d.valueID ORDER BY d.itemID"))
    creators = _Rows(db.execute(
        "SELECT ic.itemID, c.firstName, c.lastName, c.fieldMode, ct.creatorType FROM itemCreators ic "
        "JOIN creators c ON c.creatorID = ic.creatorID JOIN creatorTypes ct ON ct.creatorTypeID = ic.creatorTypeID "
        "ORDER BY ic.itemID, ic.orderIndex"))
    tags = _Rows(db.execute("SELECT it.itemID, t.name FROM itemTags it JOIN tags t ON t.tagID = it.tagID "
                            "ORDER BY it.itemID, t.name"))
    paths = _collection_paths(db, tables)
    collections = _Rows(db.execute("SELECT itemID, collectionID FROM collectionItems ORDER BY itemID, collectionID"))
    attachments = _Rows(db.execute(
        "SELECT a.parentItemID, i.key, a.linkMode, a.path FROM itemAttachments a JOIN items i ON i.itemID = a.itemID "
        f"WHERE a.parentItemID IS NOT NULL AND a.path IS NOT NULL AND a.itemID NOT IN ({trashed}) "
        "ORDER BY a.parentItemID, a.itemID"))
    storage = path.parent / "storage"
    for position, (item_id, library_id, key) in enumerate(items, 1):
        source = SourceRef(file=str(path), format=FORMAT, position=position)
        data = {name: str(value) for name, value in values.take(item_id) if value is not None}
        in_collections = [paths[c] for (c,) in collections.take(item_id) if c in paths]
        yield _item_paper(
            source, key=key, library_id=library_id, data=data, creators=creators.take(item_id),
            keywords=[name for (name,) in tags.take(item_id)], collections=list(dict.fromkeys(in_collections)),
            attachments=[_attachment_path(storage, *row) for row in attachments.take(item_id)],
        )


def _item_paper(
    source: SourceRef, *, key: str, library_id: int | str, data: dict[str, str], creators: list[tuple],
    keywords: list[str], collections: list[str], attachments: list[str],
) -> Paper | Skipped:
    """The id is the item's key within its library: Zotero gives an item its key once and keeps it through edits,
    moves and syncs, and the library id tells the personal library (1) from group libraries, whose keys are
    unique only within themselves. So a re-ingest updates a paper in place instead of adding a second one."""
    extra = {name.lower(): value for name, value in _EXTRA_ID.findall(data.get("extra", ""))}
    year, date = _zotero_date(data.get("date"))
    return _paper(
        source,
        abstract=data.get("abstractNote"),
        title=next((data[f] for f in _TITLE_FIELDS if data.get(f)), None),
        label=key,
        source_id=f"zotero:{library_id}/{key}",
        authors=_authors(creators),
        year=year,
        date=date,
        venue=next((data[f] for f in _VENUE_FIELDS if data.get(f)), None),
        url=data.get("url"),
        doi=data.get("DOI") or extra.get("doi"),
        arxiv_id=extra.get("arxiv") or data.get("archiveID"),
        keywords=keywords,
        collections=collections,
        attachments=attachments,
    )


def _authors(creators: list[tuple]) -> list[str]:
    """The authors in Zotero's order; an item with none (an edited book, a film) is listed by all its creators."""
    names = [(kind, last if mode == _SINGLE_FIELD_NAME else " ".join(p for p in (first, last) if p))
             for first, last, mode, kind in creators]
    authors = [name for kind, name in names if kind == _PRIMARY_CREATOR]
    return authors or [name for _, name in names]


def _zotero_date(value: str | None) -> tuple[int | None, str | None]:
    """Zotero stores a date as "YYYY-MM-DD as typed", with 00 for an unknown part ("2019-00-00 2019"); a date it
    could not parse ("0000-00-00 Spring term") is read from the text as typed."""
    match = _MULTIPART_DATE.match(value or "")
    if not match or match[1] == "0000":
        return _year_and_date(match[4] if match else value)
    year, month, day = match[1], match[2], match[3]
    date = None if month == "00" else f"{year}-{month}" if day == "00" else f"{year}-{month}-{day}"
    return int(year), date


def _collection_paths(db: sqlite3.Connection, tables: set[str]) -> dict[int, str]:
    """Collection id -> its path ("Thesis/Chapter 2"). The path, not only the name, is stored: names repeat under
    different parents ("2019" in two projects), and a filter on a parent's path can then take in its
    subcollections. Trashed collections (Zotero 7) are left out."""
    trashed = "SELECT collectionID FROM deletedCollections" if "deletedCollections" in tables else "SELECT NULL"
    rows = {cid: (name, parent) for cid, name, parent in db.execute(
        f"SELECT collectionID, collectionName, parentCollectionID FROM collections "
        f"WHERE collectionID NOT IN ({trashed})")}
    paths: dict[int, str] = {}
    for cid in rows:
        names, seen, current = [], set(), cid
        while current in rows and current not in seen:  # a cycle (a damaged database) ends the walk
            seen.add(current)
            name, current = rows[current]
            names.append(str(name))
        if current not in seen:  # not a cycle (a trashed or missing ancestor cuts the path short: kept as is)
            paths[cid] = COLLECTION_SEPARATOR.join(reversed(names))
    return paths


def _attachment_path(storage: Path, key: str, link_mode: int, stored: str) -> str:
    """A file Zotero stores lives in storage/<attachment key>/<name>; a linked file keeps its own path (one
    relative to Zotero's base folder, "attachments:...", is kept as written: that folder is set in Zotero's
    preferences, not in the database)."""
    if stored.startswith(_STORED_PREFIX) and link_mode != _LINKED_FILE:
        return str(storage / key / stored[len(_STORED_PREFIX):])
    return stored


# ---------------------------------------------------------------- the Zotero Web API's JSON

API_FORMAT = "zotero-api"
_API_HEAD = re.compile(r'^\s*\[\s*\{[^\[\]]{0,4000}?"key"\s*:\s*"[A-Z0-9]{8}"')  # bounded: no backtracking past 4 KB
_PERSONAL_LIBRARY = 1  # the user's own library is library 1 in the database, whatever their user id on zotero.org


def _sniff_zotero_api(text: str) -> bool:
    """An array of Zotero Web API items (`/users/N/items?format=json`, as saved by scripts): objects with the
    item's 8-character `key` and its fields under `data`, with an `itemType`."""
    head = text.lstrip("\ufeff")[:65536]
    return bool(_API_HEAD.match(head)) and '"data"' in head and '"itemType"' in head


def parse_zotero_api(text: str, path: str) -> ParseResult:
    """Items of the Zotero Web API: the same fields as the database (mapped by `_item_paper`), creators as objects,
    tags as objects; attachments become their parent's `attachments` (a stored file as `storage/KEY/name`, relative
    to the Zotero data folder, as the database has it), notes and attachments are not papers. The id matches the
    database's for the personal library, so the API's and the database's copy of an item are one paper."""
    from .exports import _json_array

    items = [item for item in _json_array(text) if isinstance(item, dict) and isinstance(item.get("data"), dict)]
    files: dict[str, list[str]] = {}
    for item in items:
        data = item["data"]
        if data.get("itemType") == "attachment" and data.get("parentItem"):
            stored = (
                f"storage/{data.get('key') or item.get('key')}/{data['filename']}" if data.get("filename") else None
            )
            if where := data.get("path") or stored:
                files.setdefault(str(data["parentItem"]), []).append(str(where))
    papers = [item for item in items if item["data"].get("itemType") not in _NOT_PAPERS]
    return _result(API_FORMAT, (_api_item(item, files, SourceRef(file=path, format=API_FORMAT, position=position))
                                for position, item in enumerate(papers, 1)))


def _api_item(item: dict, files: dict[str, list[str]], source: SourceRef) -> Paper | Skipped:
    data = item["data"]
    library = item.get("library")
    if not isinstance(library, dict):
        library = {}
    library_id = _PERSONAL_LIBRARY if library.get("type", "user") == "user" else f"group-{library.get('id')}"
    creators = [(c.get("firstName"), c.get("lastName") or c.get("name"), _SINGLE_FIELD_NAME if "name" in c else 0,
                 c.get("creatorType")) for c in data.get("creators") or [] if isinstance(c, dict)]
    key = str(data.get("key") or item.get("key") or "")
    return _item_paper(
        source, key=key, library_id=library_id,
        data={name: str(value) for name, value in data.items() if isinstance(value, (str, int)) and value != ""},
        creators=creators,
        keywords=[str(t["tag"]) for t in data.get("tags") or [] if isinstance(t, dict) and t.get("tag")],
        collections=[], attachments=files.get(key, []),
    )


ZOTERO_SNIFFERS = [(API_FORMAT, _sniff_zotero_api, parse_zotero_api)]
