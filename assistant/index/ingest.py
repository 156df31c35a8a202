"""Ingest and remove: files -> papers reconciled with the store -> chunks embedded and written.

A paper's entry is written after its chunks, and a file's source entry after all its papers: a killed ingest
leaves the old file hash in place, so the next run redoes that file, and papers already stored with the same
content are not embedded again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from ..config import Settings
from ..corpus import (
    Paper,
    ParseError,
    discover_files,
    duplicate_keys,
    file_sha256,
    find_duplicate,
    merge_duplicates,
    merge_into,
    parse_file,
    with_free_id,
)
from .chunking import Chunk, chunk_paper
from .embedders import Embedder
from .store import Store, StoredPaper

log = logging.getLogger("litassist.index")

WRITE_BATCH_CHUNKS = 256
ProgressCallback = Callable[[str, int, int], None]


class FileFailure(BaseModel):
    file: str
    reason: str


class SkippedEntry(BaseModel):
    file: str
    position: int
    reason: str


class IngestReport(BaseModel):
    """What one ingest did, for the final report and for scripts (`--json`)."""

    files: int = 0
    files_unchanged: int = 0
    files_failed: list[FileFailure] = Field(default_factory=list)
    papers_by_format: dict[str, int] = Field(default_factory=dict)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    merged_duplicates: int = 0
    removed: int = 0
    skipped: list[SkippedEntry] = Field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def ingest(
    paths: Iterable[str | Path],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    csv_mapping: dict[str, str] | None = None,
    force: bool = False,
    progress: ProgressCallback = _no_progress,
) -> IngestReport:
    """Parse every changed file in full, reconcile its papers with the store, embed only what is new."""
    started = time.perf_counter()
    report = IngestReport()
    files = discover_files(paths)
    report.files = len(files)
    parsed = []
    for done, path in enumerate(files, start=1):
        progress("parse", done - 1, len(files))
        data = path.read_bytes()
        if not force and store.source_hash(str(path)) == file_sha256(data):
            report.files_unchanged += 1
            log.info("%s: unchanged, skipped", path)
            continue
        try:
            pf = parse_file(path, csv_mapping, data=data)
        except ParseError as err:
            report.files_failed.append(FileFailure(file=str(path), reason=str(err)))
            log.warning("%s: %s", path, err)
            continue
        log.info("%s: %d papers (%s)", path, len(pf.result.papers), pf.result.format)
        report.papers_by_format[pf.result.format] = report.papers_by_format.get(pf.result.format, 0) + len(
            pf.result.papers
        )
        report.skipped += [SkippedEntry(file=pf.path, position=s.position, reason=s.reason) for s in pf.result.skipped]
        parsed.append(pf)
    progress("parse", len(files), len(files))
    if parsed:
        _reconcile(parsed, store, embedder, settings, report, progress)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _reconcile(parsed, store: Store, embedder: Embedder, settings: Settings, report: IngestReport, progress) -> None:
    changed_files = {pf.path for pf in parsed}
    stored = {sp.paper.paper_id: sp for sp in store.all_papers()}
    # Forget what the changed files said before: their papers are re-derived from the new content.
    base: dict[str, Paper] = {}
    for pid, sp in stored.items():
        kept_sources = [s for s in sp.paper.sources if s.file not in changed_files]
        base[pid] = sp.paper.model_copy(update={"sources": kept_sources})
    key_to_id: dict[str, str] = {}
    for pid, paper in base.items():
        for key in duplicate_keys(paper):
            key_to_id.setdefault(key, pid)

    incoming, merged_in_batch = merge_duplicates(p for pf in parsed for p in pf.result.papers)
    report.merged_duplicates += merged_in_batch
    final: dict[str, Paper] = {}
    for paper in incoming:
        match = find_duplicate(paper, key_to_id, base.__getitem__)
        if match is None or match in final:
            paper = with_free_id(paper, base.keys() | final.keys())
            final[paper.paper_id] = paper
            continue
        if base[match].sources:
            report.merged_duplicates += 1
        final[match] = merge_into(base[match], paper) if base[match].sources else _refresh(base[match], paper)

    to_embed: list[Paper] = []
    records_only: list[tuple[Paper, int]] = []
    for pid, paper in final.items():
        old = stored.get(pid)
        if old is None:
            report.new += 1
            to_embed.append(paper)
        elif old.content_key != paper.content_key():
            report.updated += 1
            to_embed.append(paper)
        else:
            report.unchanged += 1
            if paper.sources != old.paper.sources:
                records_only.append((paper, old.n_chunks))
    orphaned = [pid for pid, p in base.items() if pid not in final and not p.sources]
    detached = [
        (base[pid], stored[pid].n_chunks)
        for pid, p in base.items()
        if pid not in final and p.sources and p.sources != stored[pid].paper.sources
    ]

    store.bump_version()  # before any write: a killed run leaves derived indexes marked stale
    _embed_and_write(to_embed, stored, store, embedder, settings, report, progress)
    store.update_records(records_only + detached)
    if orphaned:
        store.delete_papers(orphaned)
        report.removed = len(orphaned)
        log.info("removed %d papers no longer in any source", len(orphaned))
    for pf in parsed:
        store.set_source(pf.path, pf.sha256, pf.result.format, len(pf.result.papers))


class RemovalReport(BaseModel):
    removed: list[str] = Field(default_factory=list)
    detached: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)


def remove(store: Store, paper_ids: Sequence[str] = (), files: Sequence[str] = ()) -> RemovalReport:
    """Delete papers, and/or forget source files: papers left without any source are deleted too."""
    report = RemovalReport()
    stored = {sp.paper.paper_id: sp for sp in store.all_papers()}
    known_files = set(store.source_files())
    report.unknown = [pid for pid in paper_ids if pid not in stored] + [f for f in files if f not in known_files]
    doomed = [pid for pid in dict.fromkeys(paper_ids) if pid in stored]
    updates = []
    for pid, sp in stored.items():
        if pid in doomed or not any(s.file in files for s in sp.paper.sources):
            continue
        kept = [s for s in sp.paper.sources if s.file not in files]
        if kept:
            updates.append((sp.paper.model_copy(update={"sources": kept}), sp.n_chunks))
            report.detached.append(pid)
        else:
            doomed.append(pid)
    if doomed or updates:
        store.bump_version()
    store.update_records(updates)
    store.delete_papers(doomed)
    store.delete_sources([f for f in files if f in known_files])
    report.removed = doomed
    log.info("removed %d papers, detached %d from removed sources", len(doomed), len(updates))
    return report


def _refresh(old: Paper, new: Paper) -> Paper:
    """A re-parsed paper that only this file held: take the new content, keep the stored id."""
    return new.model_copy(update={"paper_id": old.paper_id})


def _embed_and_write(
    papers: list[Paper], stored: dict[str, StoredPaper], store: Store, embedder: Embedder, settings: Settings,
    report: IngestReport, progress: ProgressCallback,
) -> None:
    chunked = [(paper, chunk_paper(paper, settings.chunk_tokens)) for paper in papers]
    total = sum(len(chunks) for _, chunks in chunked)
    done = 0
    progress("embed", 0, total)
    batch: list[tuple[Paper, list[Chunk]]] = []
    for i, item in enumerate(chunked):
        batch.append(item)
        if sum(len(c) for _, c in batch) < WRITE_BATCH_CHUNKS and i < len(chunked) - 1:
            continue
        texts = [chunk.embed_text for _, chunks in batch for chunk in chunks]
        vectors = embedder.embed_documents(texts)
        rows, offset = [], 0
        for paper, chunks in batch:
            old = stored.get(paper.paper_id)
            rows.append((paper, chunks, vectors[offset : offset + len(chunks)], old.n_chunks if old else 0))
            offset += len(chunks)
        store.write_papers(rows)
        done += len(texts)
        report.chunks_embedded += len(texts)
        log.info("embedded and stored %d/%d chunks", done, total)
        progress("embed", done, total)
        batch = []
