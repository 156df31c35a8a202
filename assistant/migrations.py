"""Schema versions for the files litassist writes in a home, and the migrations between them (the pattern of Simon
Willison's `llm`: an ordered list of steps, each run once per file, the file recording how many it has had).

- SQLite files record their version as `PRAGMA user_version` (the catalog's pattern, index/catalog.py): the number
  of steps of their MIGRATIONS list applied, each step a function of the connection.
- JSON files record it as a top-level "schema_version" key (absent: 0, a file from before versions): each step a
  function from the data of one version to the next.

A file from a newer litassist (a version above the steps known here) is refused with one line, never rewritten.
docs/architecture.md lists every file of a home with its version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SqliteStep = Callable[[sqlite3.Connection], None]
JsonStep = Callable[[dict[str, Any]], dict[str, Any]]
VERSION_KEY = "schema_version"


class NewerFile(ValueError):
    """A file written by a newer litassist than this one: str() is the one line to show."""

    def __init__(self, path: Path | str, version: int, known: int):
        super().__init__(f"{path} has schema version {version}, this litassist knows up to {known}: upgrade "
                         "litassist to read it (or move the file aside)")


def migrate_sqlite(db: sqlite3.Connection, steps: Sequence[SqliteStep], path: Path | str) -> int:
    """Bring an SQLite file to the newest schema in one transaction (taken before the version is read, so two
    processes opening an old file migrate it once); returns the version it had. `db` must not be in a
    transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(steps):
            raise NewerFile(path, version, len(steps))
        for number, step in enumerate(steps[version:], start=version + 1):
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return version


def migrate_json(data: Any, steps: Sequence[JsonStep], path: Path | str) -> dict[str, Any]:
    """The data of a JSON file at the newest schema, without its version key (ValueError when it is not an
    object; NewerFile when it is from a newer litassist)."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")  # noqa: TRY004 - a damaged file, as callers catch it
    version = data.pop(VERSION_KEY, 0)
    if not isinstance(version, int) or version < 0:
        raise ValueError(f"{path}: {VERSION_KEY} {version!r} is not a version number")
    if version > len(steps):
        raise NewerFile(path, version, len(steps))
    for step in steps[version:]:
        data = step(data)
    return data


def versioned_json(data: dict[str, Any], steps: Sequence[JsonStep]) -> dict[str, Any]:
    """`data` with the newest version key first, as it is written."""
    return {VERSION_KEY: len(steps), **data}
