"""The catalog: one SQLite database (HOME/library.sqlite3, WAL) that is the library's source of truth.

It holds papers (records, content keys, paper vectors), their chunks' passages, duplicate keys, the papers each
source file holds, source hashes, the library version and the lexical index (bm25.py). Chroma holds only
vectors, under ids the catalog lists: a vector the catalog does not list is invisible. Every change is one SQLite
transaction proportional to the change, so a search (a read transaction) sees the library before a commit or
after it, and a killed writer leaves nothing half-published.

Writers stage new papers as rows marked with their transaction token (`txn`); a commit publishes them by clearing
the token, in the same transaction as removals, record updates, source changes and the lexical rows. Vectors a
change made obsolete go to `trash` in that transaction and leave Chroma after it (the next writer finishes a
killed one's trash). Small writes to a large library keep their vectors in `fresh` instead, until Chroma takes
them in bulk (store.py says when). Rows staged by a writer that died are that writer's garbage: the next writer reuses
the ones whose vectors were written (`ready`), so a killed ingest resumes without embedding again, and deletes the rest.

"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..corpus import Paper
from . import bm25

FILE_NAME = "library.sqlite3"
SCHEMA_VERSION = 5
SQL_BATCH = 500  # ids per `IN (...)`: well under SQLite's 32,766 host parameters

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS papers (
    id INTEGER PRIMARY KEY,
    paper_id TEXT NOT NULL,
    txn TEXT,
    ready INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL,
    content_key TEXT NOT NULL,
    vector_id TEXT NOT NULL,
    vector BLOB,
    n_chunks INTEGER NOT NULL,
    year INTEGER,
    venue TEXT,
    authors TEXT,
    collections TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS papers_published ON papers(paper_id) WHERE txn IS NULL;
CREATE INDEX IF NOT EXISTS papers_staged ON papers(txn, paper_id) WHERE txn IS NOT NULL;
CREATE INDEX IF NOT EXISTS papers_year ON papers(year);
CREATE TABLE IF NOT EXISTS chunks (
    vector_id TEXT PRIMARY KEY,
    paper INTEGER NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    location TEXT
);
CREATE INDEX IF NOT EXISTS chunks_paper ON chunks(paper);
CREATE TABLE IF NOT EXISTS keys (key TEXT NOT NULL, paper INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS keys_key ON keys(key);
CREATE INDEX IF NOT EXISTS keys_paper ON keys(paper);
CREATE TABLE IF NOT EXISTS paper_files (paper INTEGER NOT NULL, file TEXT NOT NULL, format TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS paper_files_paper ON paper_files(paper);
CREATE TABLE IF NOT EXISTS sources (file TEXT PRIMARY KEY, sha256 TEXT NOT NULL, format TEXT NOT NULL,
                                    papers INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS staged_lexical (paper INTEGER PRIMARY KEY, tokens TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trash (vector_id TEXT NOT NULL, collection TEXT NOT NULL);
""" + bm25.SCHEMA

_FRESH = """
CREATE TABLE IF NOT EXISTS fresh (vector_id TEXT PRIMARY KEY, collection TEXT NOT NULL, paper_id TEXT NOT NULL,
                                  vector BLOB NOT NULL);
"""
# A paper-level vector's id is looked up when vectors are dropped (is another published row still using it?) and
# by `similar`: without this index each lookup scanned every paper (11 s to remove one paper at 1M).
_PAPER_VECTOR_INDEX = """
CREATE INDEX IF NOT EXISTS papers_vector ON papers(vector_id);
"""
# The app's sidebar and Library tab count papers per file and format, and offer the Zotero collections as written
# (papers.collections is lower-cased, for narrowing), from covering indexes: at 1M papers no record is read.
_FACETS = """
CREATE INDEX IF NOT EXISTS paper_files_file_format ON paper_files(file, format);
CREATE TABLE IF NOT EXISTS paper_collections (paper INTEGER NOT NULL, name TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS paper_collections_name ON paper_collections(name);
CREATE INDEX IF NOT EXISTS paper_collections_paper ON paper_collections(paper)
"""
_SCHEMA += ";" + _FRESH + _PAPER_VECTOR_INDEX + ";" + _FACETS
_POSTINGS_BY_ROWID = """
CREATE TABLE postings_by_rowid (term TEXT NOT NULL, segment INTEGER NOT NULL, docs BLOB NOT NULL, tfs BLOB NOT NULL,
                                lengths BLOB NOT NULL);
INSERT INTO postings_by_rowid(term, segment, docs, tfs, lengths) SELECT term, segment, docs, tfs, lengths FROM postings;
DROP TABLE postings;
ALTER TABLE postings_by_rowid RENAME TO postings;
CREATE UNIQUE INDEX postings_term ON postings(term, segment);
CREATE INDEX postings_segment ON postings(segment);
"""

# Schema migrations: MIGRATIONS[v] takes a catalog at user_version v to v + 1.
MIGRATIONS: dict[int, str] = {
    1: _FRESH,  # v2: small writes to a large library keep their vectors here until Chroma takes them (store.py)
    2: _PAPER_VECTOR_INDEX,  # v3: paper vectors found by id without a scan
    3: _POSTINGS_BY_ROWID,  # v4: postings in a rowid table (bm25.SCHEMA says why); 1.7 GB copied once at 1M
    # v5: _FACETS, filled from the records of the papers that have collections (the lower-cased column says which)
    4: "DROP INDEX IF EXISTS paper_files_file;" + _FACETS + ";INSERT INTO paper_collections(paper, name) SELECT p.id, "
       "c.value FROM papers p, json_each(p.record, '$.collections') c WHERE p.collections != ''",
}


@dataclass(frozen=True)
class StoredPaper:
    paper: Paper
    content_key: str
    n_chunks: int


@dataclass(frozen=True)
class PaperColumns:
    """Ids, content keys, years and (optionally) paper-level vectors of published papers, rows aligned, in paper-id
    order: what clustering needs, without parsing a 3-4 KB record per paper."""

    ids: list[str]
    content_keys: list[str]
    years: list[int | None]
    vectors: np.ndarray  # float32 (n, d); (0, 0) when not asked for


@dataclass(frozen=True)
class PaperQuery:
    """What `query_ids` asks of the published papers; every given condition must hold (retrieve.Filters becomes
    one). Substrings are lower-cased as the columns are; names are exact, as stored."""

    year_min: int | None = None
    year_max: int | None = None
    undated: bool = True  # with a year bound: papers without a year pass too
    paper_ids: Sequence[str] | None = None
    authors: str | None = None  # part of one author's name (names are one line, the column joins them by newlines)
    venue: str | None = None
    formats: Sequence[str] | None = None  # with `files`: held by a source file of any of these formats
    files: Sequence[str] | None = None  # with `formats`: held by any of these source files
    collections: Sequence[str] | None = None  # in any of these collections
    text: str | None = None  # part of the title, authors, abstract, venue or id (`_text_holds`)


class PaperText(NamedTuple):
    """What a topic's keywords and its map points read of a paper: its title and abstract, from the record's JSON
    by SQLite (json_extract) without building the Paper (records are validated when written)."""

    title: str
    abstract: str
    title_derived: bool


@dataclass(frozen=True)
class Facets:
    """Published papers counted per year (None: undated), per (source file, format) and per collection."""

    years: dict[int | None, int]
    files: dict[tuple[str, str], int]
    collections: dict[str, int]


@dataclass(frozen=True)
class SourceRecord:
    file: str
    sha256: str
    format: str
    papers: int


@dataclass(frozen=True)
class StagedChunk:
    vector_id: str
    position: int
    text: str
    location: dict[str, Any] | None = None


@dataclass(frozen=True)
class StagedPaper:
    """A paper's new row: its record, keys, lexical tokens and the ids its vectors get in Chroma."""

    paper: Paper
    vector_id: str
    vector: np.ndarray
    chunks: list[StagedChunk]
    keys: list[str]
    tokens: str


def _batches(items: Sequence[Any], size: int = SQL_BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))


def _record(text: str) -> Paper:
    """A stored record; one that no longer parses is a damaged database (one line, not a traceback)."""
    try:
        return Paper.model_validate_json(text)
    except (ValueError, TypeError) as error:
        raise sqlite3.DatabaseError(f"a paper record is malformed ({' '.join(str(error).split())[:80]})") from None


def _stored(row: sqlite3.Row | tuple) -> StoredPaper:
    return StoredPaper(_record(row[0]), row[1], int(row[2]))


def _refuse_truncated(db: sqlite3.Connection, path: Path) -> None:
    """SQLite reads the pages a truncated file lost as zeros and fails only on the commands that touch them (a
    search whose pages sat in the first half answered from a catalog cut in two), so a file shorter than the pages
    SQLite says it holds is refused up front. With a non-empty WAL beside it the pages may be there, so only a
    checkpointed file is judged. Asked of SQLite and `stat`, never by opening the file: closing any descriptor of
    it would drop every POSIX lock this process holds on it, SQLite's own included (an app thread reading the
    header that way made another process miss a committed removal)."""
    db.execute("BEGIN")
    try:
        pages = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
        wal = path.with_name(path.name + "-wal")
        checkpointed = not wal.exists() or wal.stat().st_size == 0
        size = path.stat().st_size
    finally:
        db.execute("COMMIT")
    if checkpointed and size < pages:
        raise sqlite3.DatabaseError(f"the file is shorter than its pages ({size} of {pages} bytes): it was truncated")


class Catalog:
    """The SQLite catalog of one library. One connection per thread (sqlite3 connections are not shared)."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    # --- connections ---------------------------------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=600, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA foreign_keys=OFF")
                _refuse_truncated(db, self.path)
                db.create_function("paper_text_holds", 2, _text_holds, deterministic=True)
            except sqlite3.Error:
                db.close()
                raise
            self._local.db = db
            with self._guard:
                self._connections.append(db)
        return db

    def close(self) -> None:
        with self._guard:
            for db in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            self._connections.clear()
        self._local = threading.local()

    def create(self) -> bool:
        """Create the tables if this is a new catalog, or migrate an older schema; True when it was new."""
        db = self.connection()
        with self.transaction():
            version = db.execute("PRAGMA user_version").fetchone()[0]
            new = version == 0 and not db.execute("SELECT 1 FROM sqlite_master WHERE name='papers'").fetchone()
            if new:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            else:
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step].split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version={step + 1}")
        return new

    def schema_version(self) -> int:
        return int(self.connection().execute("PRAGMA user_version").fetchone()[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: the writer's lock is taken at once), committed on success."""
        db = self.connection()
        if db.in_transaction:  # nested: part of the caller's transaction
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every read inside sees one committed state of the library."""
        db = self.connection()
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    # --- meta ----------------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.connection().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, db: sqlite3.Connection, **values: str | None) -> None:
        for key, value in values.items():
            if value is None:
                db.execute("DELETE FROM meta WHERE key=?", (key,))
            else:
                db.execute(
                    "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (key, str(value)),
                )

    # --- papers --------------------------------------------------------------------------------------------
    def paper_count(self) -> int:
        return int(self.connection().execute("SELECT count(*) FROM papers WHERE txn IS NULL").fetchone()[0])

    def chunk_count(self) -> int:
        return int(self.connection().execute(
            "SELECT coalesce(sum(n_chunks), 0) FROM papers WHERE txn IS NULL").fetchone()[0])

    def all_papers(self) -> Iterator[StoredPaper]:
        """Every published paper, streamed (a million records are not one list unless the caller makes it one)."""
        cursor = self.connection().execute(
            "SELECT record, content_key, n_chunks FROM papers WHERE txn IS NULL ORDER BY paper_id")
        for row in cursor:
            yield _stored(row)

    def paper_vectors(self) -> tuple[list[StoredPaper], np.ndarray]:
        stored, vectors = [], []
        with self.snapshot() as db:
            for record, content_key, n_chunks, vector in db.execute(
                    "SELECT record, content_key, n_chunks, vector FROM papers WHERE txn IS NULL ORDER BY paper_id"):
                stored.append(_stored((record, content_key, n_chunks)))
                vectors.append(np.frombuffer(vector, dtype=np.float32))
        return stored, np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)

    def paper_columns(self, paper_ids: Sequence[str] | None = None, vectors: bool = True) -> PaperColumns:
        """Every published paper (or those of `paper_ids`) as PaperColumns. Rows are streamed and each vector is
        copied into one preallocated float32 matrix: peak memory is the matrix, not a million blobs beside it."""
        select = (
            "SELECT paper_id, content_key, year" + (", vector" if vectors else "") + " FROM papers WHERE txn IS NULL"
        )
        ids: list[str] = []
        keys: list[str] = []
        years: list[int | None] = []
        matrix: np.ndarray | None = None
        with self.snapshot() as db:
            if paper_ids is None:
                most = self.paper_count()
                cursors: Iterable[sqlite3.Cursor] = [db.execute(f"{select} ORDER BY paper_id")]
            else:
                wanted = sorted(set(paper_ids))
                most = len(wanted)
                cursors = (db.execute(f"{select} AND paper_id IN ({_marks(b)}) ORDER BY paper_id", list(b))
                           for b in _batches(wanted))
            for cursor in cursors:
                for row in cursor:
                    if vectors:
                        if matrix is None:
                            matrix = np.empty((most, len(row[3]) // 4), dtype=np.float32)
                        matrix[len(ids)] = np.frombuffer(row[3], dtype=np.float32)
                    ids.append(row[0])
                    keys.append(row[1])
                    years.append(row[2])
        return PaperColumns(
            ids, keys, years, matrix[: len(ids)] if matrix is not None else np.zeros((0, 0), np.float32)
        )

    def stored_papers(self, paper_ids: Iterable[str]) -> dict[str, StoredPaper]:
        return self._stored_where("paper_id IN ({marks})", paper_ids)

    def known_ids(self, paper_ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(paper_ids))
        db = self.connection()
        return {row[0] for batch in _batches(wanted) for row in db.execute(
            f"SELECT paper_id FROM papers WHERE txn IS NULL AND paper_id IN ({_marks(batch)})", list(batch))}

    def key_owners(self, keys: Iterable[str]) -> dict[str, str]:
        """Duplicate key -> the published paper that has it (the first stored, as a dict built in order would)."""
        wanted = list(dict.fromkeys(keys))
        owners: dict[str, str] = {}
        db = self.connection()
        for batch in _batches(wanted):
            for key, pid in db.execute(
                    f"SELECT k.key, p.paper_id FROM keys k JOIN papers p ON p.id = k.paper "
                    f"WHERE p.txn IS NULL AND k.key IN ({_marks(batch)}) ORDER BY p.id", list(batch)):
                owners.setdefault(key, pid)
        return owners

    def papers_of_files(self, files: Iterable[str]) -> dict[str, StoredPaper]:
        """The published papers any of these source files holds."""
        return self._stored_where("id IN (SELECT paper FROM paper_files WHERE file IN ({marks}))", files)

    def _stored_where(self, condition: str, values: Iterable[str]) -> dict[str, StoredPaper]:
        """Published papers matching `condition` (whose `{marks}` takes a batch of `values`), by id."""
        found: dict[str, StoredPaper] = {}
        db = self.connection()
        for batch in _batches(list(dict.fromkeys(values))):
            for pid, *row in db.execute(
                    f"SELECT paper_id, record, content_key, n_chunks FROM papers WHERE txn IS NULL AND "
                    f"{condition.format(marks=_marks(batch))}", list(batch)):
                found[pid] = _stored(row)
        return found

    def paper_texts(self, paper_ids: Iterable[str]) -> dict[str, PaperText]:
        """Title, abstract and title_derived of the published papers asked for. At 1M papers the map reads 200k
        of them: as Paper records that was 0.55 GB of the peak RSS and 5% of the time of a recompute (memray,
        py-spy)."""
        found: dict[str, PaperText] = {}
        db = self.connection()
        for batch in _batches(list(dict.fromkeys(paper_ids))):
            for pid, title, abstract, derived in db.execute(
                    "SELECT paper_id, json_extract(record, '$.title'), json_extract(record, '$.abstract'), "
                    "json_extract(record, '$.title_derived') FROM papers WHERE txn IS NULL AND "
                    f"paper_id IN ({_marks(batch)})", list(batch)):
                found[pid] = PaperText(title or "", abstract or "", bool(derived))
        return found

    def query_ids(self, query: PaperQuery) -> list[tuple[str, int | None]]:
        """(id, year) of the published papers `query` admits, in id order. SQL decides every condition from the
        columns and tables, so no record is parsed, except by a `text` condition (see `_text_holds`)."""
        clauses: list[str] = ["txn IS NULL"]
        params: list[int | str] = []
        dated = [(f"year {op} ?", bound) for op, bound in ((">=", query.year_min), ("<=", query.year_max))
                 if bound is not None]
        if dated:
            within = " AND ".join(clause for clause, _ in dated)
            clauses.append(f"(year IS NULL OR ({within}))" if query.undated else f"({within})")
            params += [bound for _, bound in dated]
        for column, needle in (("authors", query.authors), ("venue", query.venue)):
            if needle is not None:
                clauses.append(f"instr({column}, ?) > 0")
                params.append(needle)
        if query.formats is not None or query.files is not None:  # a few names (what a filter matched): lists
            held = [(column, names) for column, names in (("format", query.formats), ("file", query.files)) if names]
            either = " OR ".join(f"{column} IN ({_marks(names)})" for column, names in held) or "0"
            clauses.append(f"id IN (SELECT paper FROM paper_files WHERE {either})")
            params += [name for _, names in held for name in names]
        if query.collections is not None:
            clauses.append(f"id IN (SELECT paper FROM paper_collections WHERE name IN ({_marks(query.collections)}))")
            params += list(query.collections)
        if query.text is not None:
            clauses.append("paper_text_holds(record, ?)")
            params.append(query.text)
        db = self.connection()
        sql = f"SELECT paper_id, year FROM papers WHERE {' AND '.join(clauses)}"
        if query.paper_ids is None:
            return db.execute(f"{sql} ORDER BY paper_id", params).fetchall()
        return sorted(row for batch in _batches(sorted(set(query.paper_ids)))
                      for row in db.execute(f"{sql} AND paper_id IN ({_marks(batch)})", [*params, *batch]))

    def id_page(self, offset: int, limit: int) -> list[str]:
        """Published ids `offset` to `offset + limit` in id order, from the index of published ids."""
        return [pid for (pid,) in self.connection().execute(
            "SELECT paper_id FROM papers WHERE txn IS NULL ORDER BY paper_id LIMIT ? OFFSET ?", (limit, offset))]

    def source_pairs(self) -> list[tuple[str, str]]:
        """Every (source file, format) a paper row names: what a source filter is matched against."""
        return self.connection().execute("SELECT DISTINCT file, format FROM paper_files").fetchall()

    def collection_names(self) -> list[str]:
        """Every Zotero collection a paper row is in, as written: what a collection filter is matched against."""
        return [name for (name,) in self.connection().execute("SELECT DISTINCT name FROM paper_collections")]

    def facets(self) -> Facets:
        """Published papers per year, per (source file, format) and per collection, from covering indexes: no
        record is read (at 50k papers: see docs/app.md). The indexes hold staged rows too, so the rows an ingest
        has staged (none between ingests, a batch during one) are counted apart and taken off."""
        with self.snapshot() as db:
            staged = db.execute("SELECT 1 FROM papers WHERE txn IS NOT NULL LIMIT 1").fetchone() is not None
            of_staged = "WHERE paper IN (SELECT id FROM papers WHERE txn IS NOT NULL)"

            def published(select: str, staged_where: str) -> dict[Any, int]:
                counts: dict[Any, int] = {}
                for wheres, sign in (("", 1), (staged_where, -1)) if staged else (("", 1),):
                    for *key, count in db.execute(select.format(where=wheres)):
                        counts[tuple(key)] = counts.get(tuple(key), 0) + sign * count
                return {key: count for key, count in counts.items() if count > 0}

            years = published("SELECT year, count(*) FROM papers {where} GROUP BY year", "WHERE txn IS NOT NULL")
            files = published("SELECT file, format, count(*) FROM paper_files {where} GROUP BY file, format",
                              of_staged)
            names = published("SELECT name, count(*) FROM paper_collections {where} GROUP BY name", of_staged)
        return Facets(years={year: n for (year,), n in years.items()}, files=files,
                      collections={name: n for (name,), n in names.items()})

    def vector_ids_of(self, paper_ids: Sequence[str]) -> dict[str, list[str]]:
        """Published paper -> its chunks' vector ids."""
        found: dict[str, list[str]] = {}
        db = self.connection()
        for batch in _batches(list(paper_ids)):
            for pid, vector_id in db.execute(
                    f"SELECT p.paper_id, c.vector_id FROM chunks c JOIN papers p ON p.id = c.paper "
                    f"WHERE p.txn IS NULL AND p.paper_id IN ({_marks(batch)}) ORDER BY c.position", list(batch)):
                found.setdefault(pid, []).append(vector_id)
        return found

    def paper_vector_rows(self, paper_ids: Sequence[str]) -> dict[str, tuple[str, np.ndarray]]:
        """Published paper -> (its paper-level vector id, the vector the catalog keeps of it)."""
        found = {}
        db = self.connection()
        for batch in _batches(list(paper_ids)):
            for pid, vid, vector in db.execute(
                f"SELECT paper_id, vector_id, vector FROM papers WHERE txn IS NULL AND paper_id IN ({_marks(batch)})",
                list(batch),
            ):
                found[pid] = (vid, np.frombuffer(vector, dtype=np.float32))
        return found

    def paper_vector_id(self, paper_id: str) -> str | None:
        row = self.connection().execute(
            "SELECT vector_id FROM papers WHERE txn IS NULL AND paper_id=?", (paper_id,)).fetchone()
        return row[0] if row else None

    def papers_by_vector_ids(self, vector_ids: Sequence[str]) -> dict[str, StoredPaper]:
        found: dict[str, StoredPaper] = {}
        db = self.connection()
        for batch in _batches(list(vector_ids)):
            for vid, *row in db.execute(
                    f"SELECT vector_id, record, content_key, n_chunks FROM papers "
                    f"WHERE txn IS NULL AND vector_id IN ({_marks(batch)})", list(batch)):
                found[vid] = _stored(row)
        return found

    # --- chunks --------------------------------------------------------------------------------------------
    def published_chunks(self, vector_ids: Sequence[str]) -> dict[str, tuple[str, str, dict | None]]:
        """Vector id -> (paper id, passage, location) for the ids that belong to published papers."""
        found = {}
        db = self.connection()
        for batch in _batches(list(vector_ids)):
            for vid, pid, text, location in db.execute(
                    f"SELECT c.vector_id, p.paper_id, c.text, c.location FROM chunks c JOIN papers p ON p.id = c.paper "
                    f"WHERE p.txn IS NULL AND c.vector_id IN ({_marks(batch)})", list(batch)):
                found[vid] = (pid, text, json.loads(location) if location else None)
        return found

    def first_chunks(self, paper_ids: Sequence[str]) -> dict[str, str]:
        found = {}
        db = self.connection()
        for batch in _batches(list(paper_ids)):
            for pid, text in db.execute(
                    f"SELECT p.paper_id, c.text FROM chunks c JOIN papers p ON p.id = c.paper "
                    f"WHERE p.txn IS NULL AND c.position = 0 AND p.paper_id IN ({_marks(batch)})", list(batch)):
                found[pid] = text
        return found

    # --- lexical -------------------------------------------------------------------------------------------
    def lexical_search(self, terms: Sequence[str], k: int, allowed: set[str] | None,
                       cache: bm25.PostingsCache) -> list[tuple[str, float]]:
        """Published papers best matching the query's `terms` by BM25, best first."""
        db = self.connection()
        rows = None
        if allowed is not None:
            rows = np.array(sorted(row for batch in _batches(sorted(allowed)) for (row,) in db.execute(
                f"SELECT id FROM papers WHERE txn IS NULL AND paper_id IN ({_marks(batch)})", list(batch))),
                dtype=np.int64)
        hits = bm25.search(db, cache, terms, k, rows)
        names: dict[int, str] = {}
        for batch in _batches([row for row, _ in hits]):
            names.update(db.execute(f"SELECT id, paper_id FROM papers WHERE id IN ({_marks(batch)})", list(batch)))
        return [(names[row], score) for row, score in hits if row in names]

    # --- sources -------------------------------------------------------------------------------------------
    def source_records(self) -> list[SourceRecord]:
        return [SourceRecord(*row) for row in self.connection().execute(
            "SELECT file, sha256, format, papers FROM sources ORDER BY file")]

    def source_hash(self, file: str) -> str | None:
        row = self.connection().execute("SELECT sha256 FROM sources WHERE file=?", (file,)).fetchone()
        return row[0] if row else None

    def source_count(self) -> int:
        return int(self.connection().execute("SELECT count(*) FROM sources").fetchone()[0])

    # --- writing (each called inside `transaction()`) -------------------------------------------------------
    def stage(self, db: sqlite3.Connection, txn: str, papers: Sequence[StagedPaper]) -> None:
        """Rows for new papers (or new versions of stored ones), hidden under `txn` until `publish`; not `ready`
        until their vectors are in Chroma (`mark_ready`)."""
        for staged in papers:
            paper = staged.paper
            cursor = db.execute(
                "INSERT INTO papers(paper_id, txn, record, content_key, vector_id, vector, n_chunks, year, venue, "
                "authors, collections) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                (paper.paper_id, txn, paper.model_dump_json(), paper.content_key(), staged.vector_id,
                 np.asarray(staged.vector, dtype=np.float32).tobytes(), len(staged.chunks), paper.year,
                 *_filter_columns(paper)))
            row = cursor.lastrowid
            assert row is not None  # an INSERT into a rowid table always sets it
            db.executemany("INSERT INTO chunks(vector_id, paper, position, text, location) VALUES(?,?,?,?,?) "
                           "ON CONFLICT(vector_id) DO UPDATE SET paper=excluded.paper, text=excluded.text, "
                           "location=excluded.location",
                           [(c.vector_id, row, c.position, c.text, json.dumps(c.location) if c.location else None)
                            for c in staged.chunks])
            db.executemany("INSERT INTO keys(key, paper) VALUES(?, ?)", [(key, row) for key in staged.keys])
            _write_files(db, row, paper)
            db.execute("INSERT INTO staged_lexical(paper, tokens) VALUES(?, ?)", (row, staged.tokens))

    def mark_ready(self, db: sqlite3.Connection, txn: str, paper_ids: Sequence[str]) -> None:
        for batch in _batches(list(paper_ids)):
            db.execute(f"UPDATE papers SET ready=1 WHERE txn=? AND paper_id IN ({_marks(batch)})", [txn, *batch])

    def has_reusable_rows(self, txn: str) -> bool:
        """Whether a dead writer left rows whose vectors are stored (`adopt` can take them over)."""
        return self.connection().execute("SELECT 1 FROM papers WHERE txn IS NOT NULL AND txn != ? AND ready=1 LIMIT 1",
                                         (txn,)).fetchone() is not None

    def adopt(self, db: sqlite3.Connection, txn: str, paper_id: str, vector_id: str) -> bool:
        """Take over a dead writer's ready row for this paper version (its vectors are in Chroma): no embedding."""
        row = db.execute("SELECT id FROM papers WHERE txn IS NOT NULL AND txn != ? AND ready=1 AND paper_id=? "
                         "AND vector_id=?", (txn, paper_id, vector_id)).fetchone()
        if row is None:
            return False
        db.execute("UPDATE papers SET txn=? WHERE id=?", (txn, row[0]))
        return True

    def dead_rows(self, db: sqlite3.Connection, live_txn: str | None) -> list[tuple[str, str]]:
        """Drop every staged row not of `live_txn` (writers that died); returns their vectors (id, collection)
        to delete from Chroma, minus those a published row still uses."""
        rows = [row[0] for row in db.execute(
            "SELECT id FROM papers WHERE txn IS NOT NULL AND txn IS NOT ?", (live_txn,))]
        return self._drop(db, rows)

    def _drop(self, db: sqlite3.Connection, rows: Sequence[int]) -> list[tuple[str, str]]:
        vectors: list[tuple[str, str]] = []
        for batch in _batches(list(rows)):
            marks = _marks(batch)
            vectors += [(vid, "chunks") for (vid,) in db.execute(
                f"SELECT vector_id FROM chunks WHERE paper IN ({marks})", list(batch))]
            vectors += [(vid, "papers") for (vid,) in db.execute(
                f"SELECT vector_id FROM papers WHERE id IN ({marks})", list(batch))]
            for table, column in (("chunks", "paper"), ("keys", "paper"), ("paper_files", "paper"),
                                  ("paper_collections", "paper"), ("staged_lexical", "paper")):
                db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", list(batch))
            bm25.delete(db, list(batch))
            db.execute(f"DELETE FROM papers WHERE id IN ({marks})", list(batch))
        if not vectors:
            return []
        in_use = set()
        for batch in _batches([vid for vid, _ in vectors]):
            marks = _marks(batch)
            in_use |= {vid for (vid,) in db.execute(f"SELECT vector_id FROM chunks WHERE vector_id IN ({marks})",
                                                      list(batch))}
            in_use |= {vid for (vid,) in db.execute(f"SELECT vector_id FROM papers WHERE vector_id IN ({marks})",
                                                      list(batch))}
        return [(vid, collection) for vid, collection in vectors if vid not in in_use]

    def publish(self, db: sqlite3.Connection, txn: str) -> int:
        """Make `txn`'s staged rows the library: each replaces the published row of its paper (whose vectors go to
        the trash), and its lexical row is indexed. The lexical rows are streamed: a million staged papers' tokens
        are never held at once. Returns how many papers were published."""
        replaced = [row for (row,) in db.execute("SELECT p.id FROM papers p JOIN papers s ON s.paper_id = p.paper_id "
                                                 "WHERE s.txn = ? AND p.txn IS NULL", (txn,))]
        for batch in _batches(replaced):  # read whole first: rows are deleted while they are dropped
            self.trash(db, self._drop(db, batch))
        staged = "SELECT id FROM papers WHERE txn = ?"
        bm25.add(db, db.execute(f"SELECT paper, tokens FROM staged_lexical WHERE paper IN ({staged}) ORDER BY paper",
                                (txn,)))
        db.execute(f"DELETE FROM staged_lexical WHERE paper IN ({staged})", (txn,))
        return db.execute("UPDATE papers SET txn=NULL, ready=1 WHERE txn=?", (txn,)).rowcount

    def update_records(self, db: sqlite3.Connection, papers: Sequence[Paper]) -> None:
        """New records for published papers whose embedded content is unchanged (their sources changed)."""
        for paper in papers:
            row = db.execute("SELECT id FROM papers WHERE txn IS NULL AND paper_id=?", (paper.paper_id,)).fetchone()
            if row is None:
                continue
            db.execute("UPDATE papers SET record=?, year=?, venue=?, authors=?, collections=? WHERE id=?",
                       (paper.model_dump_json(), paper.year, *_filter_columns(paper), row[0]))
            db.execute("DELETE FROM paper_files WHERE paper=?", (row[0],))
            db.execute("DELETE FROM paper_collections WHERE paper=?", (row[0],))
            _write_files(db, row[0], paper)

    def delete_papers(self, db: sqlite3.Connection, paper_ids: Sequence[str]) -> None:
        rows = []
        for batch in _batches(list(paper_ids)):
            rows += [row for (row,) in db.execute(
                f"SELECT id FROM papers WHERE txn IS NULL AND paper_id IN ({_marks(batch)})", list(batch))]
        self.trash(db, self._drop(db, rows))

    def set_sources(self, db: sqlite3.Connection, records: Sequence[SourceRecord]) -> None:
        db.executemany(
            "INSERT INTO sources(file, sha256, format, papers) VALUES(?,?,?,?) ON CONFLICT(file) DO UPDATE SET "
            "sha256=excluded.sha256, format=excluded.format, papers=excluded.papers",
            [(r.file, r.sha256, r.format, r.papers) for r in records])

    def delete_sources(self, db: sqlite3.Connection, files: Sequence[str]) -> None:
        db.executemany("DELETE FROM sources WHERE file=?", [(f,) for f in files])

    # --- fresh vectors: those of small writes to a large library, kept here until Chroma takes them ----------
    def add_fresh(self, db: sqlite3.Connection, rows: Iterable[tuple[str, str, str, np.ndarray]]) -> None:
        """(vector id, collection, paper id, vector) rows."""
        db.executemany("INSERT OR REPLACE INTO fresh(vector_id, collection, paper_id, vector) VALUES(?,?,?,?)",
                       [(vid, collection, pid, np.asarray(vector, dtype=np.float32).tobytes())
                        for vid, collection, pid, vector in rows])

    def fresh_count(self) -> int:
        return int(self.connection().execute("SELECT count(*) FROM fresh").fetchone()[0])

    def fresh_vectors(self, collection: str | None = None) -> list[tuple[str, str, str, np.ndarray]]:
        """Every fresh (vector id, collection, paper id, vector), of one collection or all (at most the store's
        cap: a few tens of thousands)."""
        where, params = ("WHERE collection=?", (collection,)) if collection else ("", ())
        return [(vid, where_, pid, np.frombuffer(vector, dtype=np.float32)) for vid, where_, pid, vector in
                self.connection().execute(f"SELECT vector_id, collection, paper_id, vector FROM fresh {where}", params)]

    def fresh_embeddings(self, vector_ids: Sequence[str]) -> dict[str, np.ndarray]:
        found = {}
        db = self.connection()
        for batch in _batches(list(vector_ids)):
            for vid, vector in db.execute(f"SELECT vector_id, vector FROM fresh WHERE vector_id IN ({_marks(batch)})",
                                          list(batch)):
                found[vid] = np.frombuffer(vector, dtype=np.float32)
        return found

    def forget_fresh(self, db: sqlite3.Connection, vector_ids: Sequence[str]) -> None:
        for batch in _batches(list(vector_ids)):
            db.execute(f"DELETE FROM fresh WHERE vector_id IN ({_marks(batch)})", list(batch))

    # --- the trash: vectors to delete from Chroma once the change that dropped them is committed --------------
    def trash(self, db: sqlite3.Connection, vectors: Sequence[tuple[str, str]]) -> None:
        """Dropped vectors: a fresh one is simply deleted (Chroma never had it), the rest wait for Chroma."""
        fresh = {vid for batch in _batches([vid for vid, _ in vectors]) for (vid,) in db.execute(
            f"SELECT vector_id FROM fresh WHERE vector_id IN ({_marks(batch)})", list(batch))}
        self.forget_fresh(db, sorted(fresh))
        db.executemany("INSERT INTO trash(vector_id, collection) VALUES(?, ?)",
                       [(vid, collection) for vid, collection in vectors if vid not in fresh])

    def trash_count(self, collection: str | None = None, limit: int = -1) -> int:
        """Trashed vectors (of one collection), counted up to `limit` (-1: all)."""
        where, params = ("WHERE collection=?", (collection,)) if collection else ("", ())
        return int(self.connection().execute(f"SELECT count(*) FROM (SELECT 1 FROM trash {where} LIMIT ?)",
                                             (*params, limit)).fetchone()[0])

    def trashed(self, limit: int) -> list[tuple[int, str, str]]:
        return self.connection().execute("SELECT rowid, vector_id, collection FROM trash LIMIT ?", (limit,)).fetchall()

    def empty_trash(self, rowids: Sequence[int]) -> None:
        with self.transaction() as db:
            for batch in _batches(list(rowids)):
                db.execute(f"DELETE FROM trash WHERE rowid IN ({_marks(batch)})", list(batch))

    # --- checks --------------------------------------------------------------------------------------------
    def integrity_errors(self) -> list[str]:
        """SQLite's own check of every page (what `backup` runs on its copy)."""
        rows = [row[0] for row in self.connection().execute("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows


def _filter_columns(paper: Paper) -> tuple[str | None, str, str]:
    """What SQL narrows filters on, lower-cased (the exact test is made on the record: see retrieve.Filters)."""
    return ((paper.venue or "").lower() or None, "\n".join(a.lower() for a in paper.authors),
            "\n".join(c.lower() for c in paper.collections))


def _text_holds(record: str, needle: str) -> bool:
    """Whether `needle` (lower-cased) is in the paper's title, authors, abstract, venue or id joined by spaces,
    lower-cased: the Library tab's text filter, decided in SQL. The record is parsed only when each of the needle's
    words is in the record's lower-cased JSON text (a word never spans two fields; JSON writes every character of a
    word as itself unless it is a quote, a backslash or a control character, and such words are not looked for)."""
    low = record.lower()
    plain = [word for word in needle.split() if not any(c in '"\\' or c < " " for c in word)]
    if not all(word in low for word in plain):
        return False
    fields = json.loads(record)
    text = " ".join([fields["title"], *fields["authors"], fields["abstract"], fields.get("venue") or "",
                     fields["paper_id"]])
    return needle in text.lower()


def _write_files(db: sqlite3.Connection, row: int, paper: Paper) -> None:
    """The paper's source files and its collections as written (the facets and exact filters read these)."""
    db.executemany("INSERT INTO paper_files(paper, file, format) VALUES(?,?,?)",
                   [(row, s.file, s.format) for s in paper.sources])
    db.executemany("INSERT INTO paper_collections(paper, name) VALUES(?,?)", [(row, c) for c in paper.collections])
