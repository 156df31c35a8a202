"""HOME/enrich.sqlite3: what `enrich` fetched (every answer of the services, and what was filled into which paper),
and re-applying it when `ingest` parses a paper again (`refiller`, `refilled`), offline.

Its own module, below both `enrich` (which fills the cache) and `index.ingest` (which re-applies it), so neither
imports the other. Schema changes are `@migration` steps, recorded by name in the file's `_migrations` table (the
pattern of Simon Willison's `llm`).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .corpus import Paper, ParsedFile, merge_into
from .corpus.records import normalize_title

CACHE_FILE = "enrich.sqlite3"


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []


def migration(step: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection], None]:
    """Register a schema change; each runs once per file, in order, recorded by name in `_migrations`."""
    MIGRATIONS.append(step)
    return step


@migration
def m001_responses_and_filled(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, status INTEGER NOT NULL, body TEXT NOT NULL, "
               "fetched TEXT NOT NULL)")
    db.execute("CREATE TABLE filled (key TEXT PRIMARY KEY, services TEXT NOT NULL, record TEXT NOT NULL, "
               "filled TEXT NOT NULL)")


def migrate(db: sqlite3.Connection) -> None:
    """Bring the file to the current schema; its version is the list of migrations applied (`_migrations`)."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
    done = {name for (name,) in db.execute("SELECT name FROM _migrations")}
    for step in MIGRATIONS:
        if step.__name__ in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            if not db.execute("SELECT 1 FROM _migrations WHERE name = ?", (step.__name__,)).fetchone():
                step(db)  # (another process may have applied it while this one waited for the lock)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (step.__name__, _now()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Cache:
    """Answers of the services (by request, found or not found) and what was filled into which paper."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)  # each statement commits on its own
        migrate(self.db)

    def close(self) -> None:
        self.db.close()

    def response(self, key: str) -> tuple[int, str] | None:
        row = self.db.execute("SELECT status, body FROM responses WHERE key = ?", (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def keep_response(self, key: str, status: int, body: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", (key, status, body, _now()))

    def keep_filled(self, keys: Sequence[str], services: str, record: Paper) -> None:
        rows = [(key, services, record.model_dump_json(), _now()) for key in keys]
        self.db.executemany("INSERT OR REPLACE INTO filled VALUES (?, ?, ?, ?)", rows)

    def filled_records(self) -> dict[str, Paper]:
        rows = self.db.execute("SELECT key, record FROM filled")
        return {key: Paper.model_validate_json(record) for key, record in rows}


# ---------------------------------------------------------------- filling papers, and re-applying on ingest


def lookup_keys(paper: Paper) -> list[str]:
    """What identifies a paper to the services, as its own file gives it: DOI, arXiv id, exact title."""
    keys = [f"doi:{paper.doi}"] if paper.doi else []
    keys += [f"arxiv:{paper.arxiv_id}"] if paper.arxiv_id else []
    if not paper.title_derived and (title := normalize_title(paper.title)):
        keys.append(f"title:{title}")
    return keys


def fill(paper: Paper, record: Paper) -> Paper:
    """`paper` with what it lacks taken from a fetched `record` (merge_into's rule: the paper's own fields win).
    An abstract only when the paper has none: one the user's file gives later is never replaced by a longer
    fetched one."""
    update: dict[str, Any] = {"sources": []}
    if paper.has_abstract:
        update["abstract"] = ""
    return merge_into(paper, record.model_copy(update=update))


def refiller(home: Path) -> Callable[[Paper], Paper] | None:
    """What `enrich` fetched before, as a function that gives a parsed paper what it lacked (offline: read from the
    cache), so a re-ingest of the source file keeps it; None without an enrich cache in the home (no `enrich` ever
    ran: nothing is opened or created)."""
    path = home / CACHE_FILE
    if not path.is_file():
        return None
    cache = Cache(path)
    try:
        records = cache.filled_records()
    finally:
        cache.close()
    if not records:
        return None

    def refill(paper: Paper) -> Paper:
        record = next((records[key] for key in lookup_keys(paper) if key in records), None)
        return paper if record is None else fill(paper, record)

    return refill


def refilled(parsed: ParsedFile, refill: Callable[[Paper], Paper]) -> ParsedFile:
    """The parsed file with `refill` (from `refiller`) applied to every paper."""
    papers = [refill(paper) for paper in parsed.result.papers]
    return dataclasses.replace(parsed, result=parsed.result.model_copy(update={"papers": papers}))


