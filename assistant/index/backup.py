"""`litassist backup`: a consistent, verified copy of a home, taken under the write lock.

The catalog and the other SQLite files are copied with SQLite's online backup and each copy is checked page by page
(`PRAGMA integrity_check`): a home whose database is damaged is refused with one line naming the file, not copied
into a backup that would fail when it is needed. The vector index (Chroma's folder) is copied as files, with its own
database copied and checked the same way.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError
from .vectors import SQLITE_FILE

if TYPE_CHECKING:
    from .store import Store

COPIED_EXTRAS = ("uploads", "sources.json")


def backup_home(store: Store, target: Path, databases: Sequence[str] = ()) -> list[str]:
    """Copy the home (catalog, vectors, uploads, source list, and the home's other SQLite `databases`, such as the
    saved conversations) to a new folder; returns the files copied. Restore by using the folder as the home."""
    if store.url:
        raise StoreError("backup copies an embedded store; with LITASSIST_CHROMA_URL, back up the server's --path")
    target = target.expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StoreError(f"{target} already exists and is not empty: give a new folder for the backup")
    if target == store.home.resolve() or store.home.resolve() in target.parents:
        raise StoreError(f"{target} is inside the home {store.home}: give a folder outside it")
    target.parent.mkdir(parents=True, exist_ok=True)
    with store.locks.writer():
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
        try:
            _copy_home(store, staging, databases)
            if target.exists():
                target.rmdir()
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())


def _copy_home(store: Store, staging: Path, databases: Sequence[str]) -> None:
    catalog = store.catalog.path
    copy_database(catalog, staging / catalog.name)
    if store.path.is_dir():
        chroma = staging / store.path.name
        shutil.copytree(store.path, chroma, ignore=shutil.ignore_patterns(SQLITE_FILE, f"{SQLITE_FILE}-*"))
        if (store.path / SQLITE_FILE).is_file():
            copy_database(store.path / SQLITE_FILE, chroma / SQLITE_FILE)
    for name in databases:
        if (store.home / name).is_file():
            copy_database(store.home / name, staging / name)
    for extra in COPIED_EXTRAS:
        if (store.home / extra).is_dir():
            shutil.copytree(store.home / extra, staging / extra)
        elif (store.home / extra).is_file():
            shutil.copy2(store.home / extra, staging / extra)


def copy_database(source_file: Path, copy_file: Path) -> None:
    """SQLite's online backup (a consistent snapshot even while another process writes), then a full check of
    the copy: damage in the source is found here, when the backup is made, not when it is restored."""
    try:
        with contextlib.closing(sqlite3.connect(source_file)) as source, \
                contextlib.closing(sqlite3.connect(copy_file)) as copy:
            source.backup(copy)
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{source_file} cannot be backed up: it is damaged ({error}); no backup was made") from None
    if problems != ["ok"]:
        raise StoreError(f"{source_file} cannot be backed up: it is damaged ({'; '.join(problems[:3])}); "
                         "no backup was made")
