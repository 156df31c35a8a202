"""A small Zotero database for the tests: the tables and columns Zotero 5-7 use, with our own DDL (only what the
reader needs, not Zotero's schema file), and a builder that adds items the way Zotero stores them."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

DDL = """
CREATE TABLE version (schema TEXT PRIMARY KEY, version INT NOT NULL);
CREATE TABLE libraries (libraryID INTEGER PRIMARY KEY, type TEXT NOT NULL, editable INT NOT NULL DEFAULT 1,
    filesEditable INT NOT NULL DEFAULT 1, version INT NOT NULL DEFAULT 0, storageVersion INT NOT NULL DEFAULT 0,
    lastSync INT NOT NULL DEFAULT 0, archived INT NOT NULL DEFAULT 0);
CREATE TABLE itemTypes (itemTypeID INTEGER PRIMARY KEY, typeName TEXT, templateItemTypeID INT, display INT DEFAULT 1);
CREATE TABLE itemTypesCombined (itemTypeID INT PRIMARY KEY, typeName TEXT NOT NULL, display INT NOT NULL DEFAULT 1,
    custom INT NOT NULL DEFAULT 0);
CREATE TABLE fields (fieldID INTEGER PRIMARY KEY, fieldName TEXT, fieldFormatID INT);
CREATE TABLE fieldsCombined (fieldID INT PRIMARY KEY, fieldName TEXT NOT NULL, label TEXT, fieldFormatID INT,
    custom INT NOT NULL DEFAULT 0);
CREATE TABLE items (itemID INTEGER PRIMARY KEY, itemTypeID INT NOT NULL,
    dateAdded TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, dateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    clientDateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, libraryID INT NOT NULL, key TEXT NOT NULL,
    version INT NOT NULL DEFAULT 0, synced INT NOT NULL DEFAULT 0, UNIQUE (libraryID, key));
CREATE TABLE itemDataValues (valueID INTEGER PRIMARY KEY, value UNIQUE);
CREATE TABLE itemData (itemID INT, fieldID INT, valueID, PRIMARY KEY (itemID, fieldID));
CREATE TABLE itemNotes (itemID INTEGER PRIMARY KEY, parentItemID INT, note TEXT, title TEXT);
CREATE TABLE itemAttachments (itemID INTEGER PRIMARY KEY, parentItemID INT, linkMode INT, contentType TEXT,
    charsetID INT, path TEXT, syncState INT DEFAULT 0, storageModTime INT, storageHash TEXT,
    lastProcessedModificationTime INT);
CREATE TABLE creatorTypes (creatorTypeID INTEGER PRIMARY KEY, creatorType TEXT);
CREATE TABLE creators (creatorID INTEGER PRIMARY KEY, firstName TEXT, lastName TEXT, fieldMode INT,
    UNIQUE (lastName, firstName, fieldMode));
CREATE TABLE itemCreators (itemID INT NOT NULL, creatorID INT NOT NULL, creatorTypeID INT NOT NULL DEFAULT 1,
    orderIndex INT NOT NULL DEFAULT 0, PRIMARY KEY (itemID, creatorID, creatorTypeID, orderIndex),
    UNIQUE (itemID, orderIndex));
CREATE TABLE collections (collectionID INTEGER PRIMARY KEY, collectionName TEXT NOT NULL,
    parentCollectionID INT DEFAULT NULL, clientDateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    libraryID INT NOT NULL, key TEXT NOT NULL, version INT NOT NULL DEFAULT 0, synced INT NOT NULL DEFAULT 0);
CREATE TABLE collectionItems (collectionID INT NOT NULL, itemID INT NOT NULL, orderIndex INT NOT NULL DEFAULT 0,
    PRIMARY KEY (collectionID, itemID));
CREATE TABLE tags (tagID INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE itemTags (itemID INT NOT NULL, tagID INT NOT NULL, type INT NOT NULL DEFAULT 0,
    PRIMARY KEY (itemID, tagID));
CREATE TABLE deletedItems (itemID INTEGER PRIMARY KEY, dateDeleted DEFAULT CURRENT_TIMESTAMP NOT NULL);
CREATE TABLE deletedCollections (collectionID INTEGER PRIMARY KEY, dateDeleted DEFAULT CURRENT_TIMESTAMP NOT NULL);
"""
ITEM_TYPES = ["annotation", "attachment", "book", "bookSection", "conferencePaper", "journalArticle", "note",
              "preprint", "thesis", "webpage"]
FIELDS = ["title", "abstractNote", "date", "publicationTitle", "proceedingsTitle", "bookTitle", "websiteTitle", "DOI",
          "url", "extra", "archiveID", "repository", "university", "caseName"]
CREATOR_TYPES = ["author", "editor", "contributor", "translator"]
STORED, LINKED_FILE, LINKED_URL = 1, 2, 3  # itemAttachments.linkMode (0 is a stored file too)


class ZoteroLibrary:
    """zotero.sqlite in `folder`, built and changed one committed step at a time, as Zotero would."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "zotero.sqlite"
        self._keys = 0
        with self._db() as db:
            db.executescript(DDL)
            db.execute("INSERT INTO version VALUES ('userdata', 120)")
            db.executemany("INSERT INTO libraries (libraryID, type) VALUES (?, ?)",
                           [(1, "user"), (2, "group"), (3, "feed")])
            for table in ("itemTypes", "itemTypesCombined"):
                db.executemany(f"INSERT INTO {table} (itemTypeID, typeName) VALUES (?, ?)", enumerate(ITEM_TYPES, 1))
            for table in ("fields", "fieldsCombined"):
                db.executemany(f"INSERT INTO {table} (fieldID, fieldName) VALUES (?, ?)", enumerate(FIELDS, 1))
            db.executemany("INSERT INTO creatorTypes VALUES (?, ?)", enumerate(CREATOR_TYPES, 1))

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One committed change, and the connection closed: Zotero's lock is what the tests take, not ours."""
        db = sqlite3.connect(self.path)
        try:
            with db:
                yield db
        finally:
            db.close()

    def _next_key(self) -> str:
        self._keys += 1
        return f"K{self._keys:07d}"

    def add(self, kind: str = "journalArticle", *, key: str | None = None, library: int = 1,
            creators: list[tuple[str, str, str]] = (), tags: list[str] = (), collections: list[int] = (),
            **fields: str) -> int:
        """An item; creators as (first, last, type) with first "" for a single-field name. Returns its itemID."""
        with self._db() as db:
            item = db.execute("INSERT INTO items (itemTypeID, libraryID, key) VALUES (?, ?, ?)",
                              (ITEM_TYPES.index(kind) + 1, library, key or self._next_key())).lastrowid
            for name, value in fields.items():
                self._set(db, item, name, value)
            for order, (first, last, role) in enumerate(creators):
                mode = 0 if first else 1
                db.execute("INSERT OR IGNORE INTO creators (firstName, lastName, fieldMode) VALUES (?, ?, ?)",
                           (first, last, mode))
                (creator,) = db.execute("SELECT creatorID FROM creators WHERE firstName = ? AND lastName = ? "
                                        "AND fieldMode = ?", (first, last, mode)).fetchone()
                db.execute("INSERT INTO itemCreators VALUES (?, ?, ?, ?)",
                           (item, creator, CREATOR_TYPES.index(role) + 1, order))
            for tag in tags:
                db.execute("INSERT OR IGNORE INTO tags (name) VALUES (?)", (tag,))
                db.execute("INSERT INTO itemTags SELECT ?, tagID, 0 FROM tags WHERE name = ?", (item, tag))
            db.executemany("INSERT INTO collectionItems (collectionID, itemID) VALUES (?, ?)",
                           [(c, item) for c in collections])
        return item

    @staticmethod
    def _set(db: sqlite3.Connection, item: int, field: str, value: str) -> None:
        db.execute("INSERT OR IGNORE INTO itemDataValues (value) VALUES (?)", (value,))
        db.execute("INSERT OR REPLACE INTO itemData SELECT ?, f.fieldID, v.valueID FROM fieldsCombined f, "
                   "itemDataValues v WHERE f.fieldName = ? AND v.value = ?", (item, field, value))

    def edit(self, item: int, **fields: str) -> None:
        with self._db() as db:
            for name, value in fields.items():
                self._set(db, item, name, value)

    def collection(self, name: str, parent: int | None = None, library: int = 1) -> int:
        with self._db() as db:
            return db.execute("INSERT INTO collections (collectionName, parentCollectionID, libraryID, key) "
                              "VALUES (?, ?, ?, ?)", (name, parent, library, self._next_key())).lastrowid

    def attach(self, parent: int | None, path: str | None, link_mode: int = STORED, key: str | None = None) -> int:
        item = self.add("attachment", key=key, title="Full Text PDF")
        with self._db() as db:
            db.execute("INSERT INTO itemAttachments (itemID, parentItemID, linkMode, contentType, path) "
                       "VALUES (?, ?, ?, 'application/pdf', ?)", (item, parent, link_mode, path))
        return item

    def note(self, parent: int | None, text: str) -> int:
        item = self.add("note")
        with self._db() as db:
            db.execute("INSERT INTO itemNotes VALUES (?, ?, ?, ?)", (item, parent, f"<p>{text}</p>", text))
        return item

    def trash(self, *items: int) -> None:
        with self._db() as db:
            db.executemany("INSERT INTO deletedItems (itemID) VALUES (?)", [(i,) for i in items])
