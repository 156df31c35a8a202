"""Ingest and remove: files -> papers reconciled with the store -> chunks embedded and written.

Everything runs under the library's write lock (one writer at a time, across processes). Planning asks the
catalog only about the papers the change touches (the papers its files held, those sharing a duplicate key with
an incoming paper, the ids it uses), so an ingest costs what it changes, not what the library holds. New papers
and new versions are embedded and staged as they come (hidden until the commit); in-place changes (merged
sources, removals, file hashes) are published with them in one commit, so a search sees the library before
this ingest or after it. A killed ingest publishes nothing; the next run reuses the vectors it had stored.

Every file that cannot be used becomes one line in `files_failed`, whatever went wrong, and stores nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from ..config import Settings
from ..corpus import (
    Paper,
    ParsedFile,
    ParseError,
    Skipped,
    Stream,
    discover_files,
    duplicate_keys,
    file_sha256,
    find_conflict,
    find_duplicate,
    group_duplicates,
    merge_duplicates,
    merge_into,
    parse_file,
    parse_zotero_file,
    read_file,
    reading,
    stream_format,
    with_free_id,
)
from ..corpus.records import MAX_SKIPPED_DETAILS, ParseResult
from ..corpus.zotero_db import FORMAT as ZOTERO_FORMAT
from ..corpus.zotero_db import is_zotero_database, zotero_digest
from .chunking import Chunk, chunk_paper
from .embedders import Embedder
from .store import SourceRecord, Store, StoredPaper

log = logging.getLogger("litassist.index")

WRITE_BATCH_CHUNKS = 256
CHARS_PER_TOKEN_BOUND = 8  # cl100k averages ~4 characters a token: text past twice that cannot be embedded anyway
ProgressCallback = Callable[[str, int, int], None]


class FileFailure(BaseModel):
    file: str
    reason: str


class SkippedEntry(BaseModel):
    file: str
    position: int
    reason: str
    label: str | None = None  # the entry's citation key or title, when it had one


class IngestReport(BaseModel):
    """What one ingest did, for the final report and for scripts (`--json`)."""

    files: int = 0
    files_unchanged: int = 0
    files_failed: list[FileFailure] = Field(default_factory=list)
    papers_by_format: dict[str, int] = Field(default_factory=dict)
    new: int = 0
    without_abstract: int = Field(default=0,
                                  description="of the ingested files' papers, those stored without an abstract")
    updated: int = 0
    unchanged: int = 0
    merged_duplicates: int = 0
    removed: int = 0
    skipped: list[SkippedEntry] = Field(default_factory=list, description=f"the first {MAX_SKIPPED_DETAILS}")
    skipped_total: int = 0
    skip_reasons: dict[str, int] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0

    def fail(self, file: str, reason: str) -> None:
        """Record a failed file. The report is where a failure is shown (the CLI prints it once, the app lists
        it); the log keeps it for --verbose only, or the CLI would print every failure twice."""
        self.files_failed.append(FileFailure(file=file, reason=reason))
        log.debug("%s: %s", file, reason)

    def count_parsed(self, path: str, result: ParseResult, papers: int) -> None:
        self.papers_by_format[result.format] = self.papers_by_format.get(result.format, 0) + papers
        room = MAX_SKIPPED_DETAILS - len(self.skipped)
        self.skipped += [SkippedEntry(file=path, position=s.position, reason=s.reason, label=s.label)
                         for s in result.skipped[:room]]
        self.skipped_total += result.skipped_total
        for reason, count in result.skip_reasons.items():
            self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + count
        self.warnings += [f"{path}: {warning}" for warning in result.warnings]
        if (unlisted := result.warnings_total - len(result.warnings)) > 0:
            self.warnings.append(f"{path}: {unlisted:,} more warnings")


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def display_path(path: Path) -> str:
    """The path as text; bytes that are not UTF-8 are shown escaped (such a name cannot be stored as given)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def ingest(
    paths: Iterable[str | Path],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    csv_mapping: dict[str, str] | None = None,
    force: bool = False,
    progress: ProgressCallback = _no_progress,
    allow_removals: bool = False,
) -> IngestReport:
    """Parse every changed file in full, reconcile its papers with the store, embed only what is new.

    A changed file that would lose more than `settings.max_removal_share` of its papers is refused (a
    truncated export looks like that) unless `allow_removals`. Files of a streamed format (JSONL, ...) are read
    a record at a time, after the others, each in its own transaction (see `_ingest_streamed`)."""
    started = time.perf_counter()
    report = IngestReport()
    files = discover_files(paths, skip=store.home)
    report.files = len(files)
    with store.writing():
        store.check_chunk_tokens()
        read = _parse_files(files, store, settings, csv_mapping, force, report, progress)
        parsed = [pf for pf in read if isinstance(pf, ParsedFile)]
        if parsed:
            plan = _plan(parsed, store)
            refused = {} if allow_removals else _over_removal(plan, parsed, settings.max_removal_share)
            if refused:
                for path, reason in refused.items():
                    report.fail(path, reason)
                parsed = [pf for pf in parsed if pf.path not in refused]
                plan = _plan(parsed, store)
            for pf in parsed:
                report.count_parsed(pf.path, pf.result, len(pf.result.papers))
            if parsed:
                _apply(plan, parsed, store, embedder, settings, report, progress)
        for scanned in read:
            if isinstance(scanned, _Scanned):
                _ingest_streamed(scanned, store, embedder, settings, report, progress, allow_removals)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _parse_files(
    files: list[Path], store: Store, settings: Settings, csv_mapping: dict[str, str] | None, force: bool,
    report: IngestReport, progress: ProgressCallback,
) -> list[ParsedFile | _Scanned]:
    parsed = []
    fill = _enrich_refiller(store, report)
    for done, path in enumerate(files):
        progress("parse", done, len(files))
        name = display_path(path)
        try:
            pf = _parse_one(path, name, store, settings, csv_mapping, force, fill)
        except ParseError as error:
            report.fail(name, str(error))
            continue
        except Exception as error:  # any failure on one file is that file's one-line reason
            log.debug("%s: unexpected error", name, exc_info=True)
            report.fail(
                name, " ".join(f"unexpected error while reading it: {type(error).__name__}: {error}".split())[:300]
            )
            continue
        if pf is None:
            report.files_unchanged += 1
            log.info("%s: unchanged, skipped", name)
            continue
        papers = pf.papers if isinstance(pf, _Scanned) else len(pf.result.papers)
        log.info("%s: %d papers (%s)", name, papers, pf.result.format)
        parsed.append(pf)
    progress("parse", len(files), len(files))
    return parsed


def _enrich_refiller(store: Store, report: IngestReport) -> Callable[[Paper], Paper] | None:
    """What `enrich` fetched before, read once per ingest (not once per file); a cache that cannot be read costs
    those fills this time, with a warning, not the files."""
    from ..enrich_cache import CACHE_FILE, refiller

    try:
        return refiller(store.home)
    except (sqlite3.Error, OSError) as error:
        report.warnings.append(f"{store.home / CACHE_FILE} cannot be read ({error}): abstracts that `enrich` "
                               "fetched are not re-applied in this ingest")
        return None


def _parse_one(
    path: Path, name: str, store: Store, settings: Settings, csv_mapping: dict[str, str] | None, force: bool,
    fill: Callable[[Paper], Paper] | None,
) -> ParsedFile | _Scanned | None:
    """The parsed file (a streamed format: scanned, see `_scan`), or None when its bytes are the ones stored."""
    if name != str(path):
        raise ParseError("the file name is not valid UTF-8: rename the file")
    if is_zotero_database(path):  # the Zotero database, queried with SQLite (no size limit, no decoding)
        return None if not force and store.source_hash(str(path)) == zotero_digest(path) else parse_zotero_file(path)
    if streamed := stream_format(reading.head_text(reading.read_head(path)), name):
        known = None if force else store.source_hash(name)
        if known and known == reading.file_sha256(path):  # a hash costs far less than a parse of a big file
            return None
        fmt, stream = streamed
        return _scan(path, fmt, _filled(stream, fill) if fill else stream, settings.max_record_mb * 2**20)
    data = read_file(path, settings.max_file_mb * 2**20)
    if not force and store.source_hash(str(path)) == file_sha256(data):
        return None
    parsed = parse_file(path, csv_mapping, data=data, max_bytes=settings.max_file_mb * 2**20)
    if fill is None:
        return parsed
    from ..enrich_cache import refilled

    return refilled(parsed, fill)


def _filled(stream: Stream, fill: Callable[[Paper], Paper]) -> Stream:
    """A stream whose papers get what `enrich` fetched for them before (both passes read the same papers)."""
    return lambda lines, path: (fill(item) if isinstance(item, Paper) else item for item in stream(lines, path))


@dataclass
class _Plan:
    """What an ingest will change, computed before anything is written."""

    final: dict[str, Paper] = field(default_factory=dict)
    new: list[Paper] = field(default_factory=list)
    updated: list[Paper] = field(default_factory=list)
    unchanged: int = 0
    records_only: list[Paper] = field(default_factory=list)
    detached: list[Paper] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    merged: int = 0
    held: dict[str, StoredPaper] = field(default_factory=dict)  # what the changed files held before
    renamed: list[tuple[str, str, str]] = field(default_factory=list)  # (file, id it gave, id it got): collisions


class _Known:
    """Paper ids in use (the library's and this plan's), asked of the catalog one id at a time: only ids that
    collide are ever looked up."""

    def __init__(self, store: Store, planned: dict[str, Paper]):
        self.store = store
        self.planned = planned

    def __contains__(self, paper_id: object) -> bool:
        return paper_id in self.planned or bool(self.store.known_ids([str(paper_id)]))


def _without_files(paper: Paper, files: set[str]) -> Paper:
    return paper.model_copy(update={"sources": [s for s in paper.sources if s.file not in files]})


def _plan(parsed: list[ParsedFile], store: Store) -> _Plan:
    plan = _Plan()
    changed_files = {pf.path for pf in parsed}
    # Forget what the changed files said before: their papers are re-derived from the new content.
    plan.held = store.papers_of_files(sorted(changed_files))
    trimmed = {pid: _without_files(sp.paper, changed_files) for pid, sp in plan.held.items()}
    incoming, plan.merged = merge_duplicates(p for pf in parsed for p in pf.result.papers)
    owners = store.key_owners([key for paper in incoming for key in duplicate_keys(paper)])
    stored = {**store.stored_papers([*owners.values(), *(p.paper_id for p in incoming)]), **plan.held}

    def base(pid: str) -> Paper:
        return trimmed[pid] if pid in trimmed else stored[pid].paper

    known = _Known(store, plan.final)
    for paper in incoming:
        match = find_duplicate(paper, owners, base)
        if match is None or match in plan.final:
            given = paper.paper_id
            paper = with_free_id(paper, known)
            if paper.paper_id != given and given in stored and stored[given].paper.sources:
                plan.renamed.append((paper.sources[0].file if paper.sources else "", given, paper.paper_id))
            plan.final[paper.paper_id] = paper
            continue
        if base(match).sources:
            plan.merged += 1
        plan.final[match] = merge_into(base(match), paper) if base(match).sources else _refresh(base(match), paper)

    stored.update(store.stored_papers([pid for pid in plan.final if pid not in stored]))
    for pid, paper in plan.final.items():
        old = stored.get(pid)
        if old is None:
            plan.new.append(paper)
        elif old.content_key != paper.content_key():
            plan.updated.append(paper)
        else:
            plan.unchanged += 1
            if paper.sources != old.paper.sources:
                plan.records_only.append(paper)
    plan.orphaned = [pid for pid, paper in trimmed.items() if pid not in plan.final and not paper.sources]
    plan.detached = [paper for pid, paper in trimmed.items()
                     if pid not in plan.final and paper.sources and paper.sources != plan.held[pid].paper.sources]
    return plan


def _papers_by_file(papers: Iterable[tuple[str, Paper]]) -> dict[str, set[str]]:
    """Source file -> the ids of the papers it holds (one pass, not one per file)."""
    held: dict[str, set[str]] = defaultdict(set)
    for paper_id, paper in papers:
        for source in paper.sources:
            held[source.file].add(paper_id)
    return held


def _over_removal(plan: _Plan, parsed: list[ParsedFile], share: float) -> dict[str, str]:
    """Changed files that would lose more than `share` of the papers they held (net of the new papers they
    bring, so an edited untitled abstract, which gets a new id, does not count): file -> reason."""
    held_before = _papers_by_file((pid, sp.paper) for pid, sp in plan.held.items())
    held_after = _papers_by_file(plan.final.items())
    refused = {}
    for pf in parsed:
        before = held_before.get(pf.path, set())
        if pf.result.format == ZOTERO_FORMAT:  # a database is never truncated: what left it, the user trashed
            continue
        after = held_after.get(pf.path, set())
        if reason := _removal_refusal(len(before - after) - len(after - before), len(before), share):
            refused[pf.path] = reason
    return refused


def _removal_refusal(lost: int, held: int, share: float) -> str | None:
    """Why a file that held `held` papers and would lose `lost` of them is refused, if it is."""
    if not held or lost <= share * held:
        return None
    return (f"this version would remove {lost} of the {held} papers the file held ({lost / held:.0%}, "
            f"over the {share:.0%} limit); if the file is complete, run again with --allow-removals")


def _collision_warnings(renamed: list[tuple[str, str, str]]) -> list[str]:
    """One line per file whose ids were already used by different papers of other files (BEIR-style files that
    both number from 1): such a paper is stored under a new id, never merged into the other."""
    by_file: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for file, given, got in renamed:
        by_file[file].append((given, got))
    return [f"{file}: {len(pairs)} papers have ids that other files' different papers already use "
            f"(e.g. {pairs[0][0]!r}); they were stored under new ids (e.g. {pairs[0][1]!r}), not merged"
            for file, pairs in by_file.items()]


def _apply(
    plan: _Plan, parsed: list[ParsedFile], store: Store, embedder: Embedder, settings: Settings, report: IngestReport,
    progress: ProgressCallback,
) -> None:
    report.new += len(plan.new)
    report.updated += len(plan.updated)
    report.unchanged += plan.unchanged
    report.without_abstract += sum(not paper.has_abstract for paper in plan.final.values())
    report.merged_duplicates += plan.merged
    report.warnings += _collision_warnings(plan.renamed)
    _write_new(plan.new + plan.updated, len(plan.new) + len(plan.updated), store, embedder, settings, report,
               progress)
    with store.committing():  # what searches can already see changes only here
        store.update_records(plan.records_only + plan.detached)
        if plan.orphaned:
            store.delete_papers(plan.orphaned)
            report.removed += len(plan.orphaned)
            log.info("removed %d papers no longer in any source", len(plan.orphaned))
        store.set_sources([SourceRecord(pf.path, pf.sha256, pf.result.format, len(pf.result.papers)) for pf in parsed])


def update_papers(papers: Sequence[Paper], store: Store, embedder: Embedder, settings: Settings) -> IngestReport:
    """Write new versions of papers already stored (what `enrich` filled in): embedded again, published in one
    commit. The caller holds `store.writing()`."""
    report = IngestReport()
    _apply(_Plan(updated=list(papers)), [], store, embedder, settings, report, _no_progress)
    return report


def _capped_chunks(paper: Paper, settings: Settings, report: IngestReport) -> list[Chunk]:
    """A paper's chunks, at most `max_chunks_per_paper` (an "abstract" of a whole book would make thousands)."""
    limit = settings.max_chunks_per_paper
    text_limit = limit * settings.chunk_tokens * CHARS_PER_TOKEN_BOUND
    source = paper
    if len(paper.abstract) > text_limit:
        source = paper.model_copy(update={"abstract": paper.abstract[:text_limit]})
    chunks = chunk_paper(source, settings.chunk_tokens)
    if len(chunks) > limit or source is not paper:
        chunks = chunks[:limit]
        what = (f"the full text is too long ({paper.pdf.pages} pages)" if paper.pdf
                else f"the abstract is too long ({len(paper.abstract):,} characters)")
        warning = (f"{paper.paper_id}: {what}; only its first {len(chunks)} passages are embedded "
                   f"(LITASSIST_MAX_CHUNKS_PER_PAPER={limit})")
        report.warnings.append(warning)
        log.debug("%s", warning)  # shown from the report, like failures
    return chunks


Row = tuple[Paper, list[Chunk], np.ndarray]


def _write_new(
    papers: Iterable[Paper], total: int, store: Store, embedder: Embedder, settings: Settings, report: IngestReport,
    progress: ProgressCallback,
) -> None:
    """Embed `papers` and stage them (hidden until the commit)."""
    for rows in _embedded(papers, total, store, embedder, settings, report, progress):
        store.write_papers(rows)


def _embedded(
    papers: Iterable[Paper], total: int, store: Store, embedder: Embedder, settings: Settings, report: IngestReport,
    progress: ProgressCallback, resume: bool = True,
) -> Iterator[list[Row]]:
    """Papers with their chunks and vectors, in write batches of about WRITE_BATCH_CHUNKS chunks. The next batch
    is chunked and embedded (in a worker thread: the model releases the GIL) while the caller stores this one.
    A paper whose vectors a killed ingest already stored is taken over, not embedded again. Progress counts
    papers (what the user ingests), not chunks."""
    done = 0
    progress("embed", 0, total)
    batches = _write_batches(papers, settings, report, store if resume else None)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="litassist-embed") as worker:

        def embed_next() -> tuple[list[tuple[Paper, list[Chunk]]], int, Future[np.ndarray] | None] | None:
            found = next(batches, None)
            if found is None:
                return None
            batch, resumed = found
            return batch, resumed, worker.submit(embedder.embed_documents, _texts(batch)) if batch else None

        pending = embed_next()
        while pending is not None:
            batch, resumed, embedding = pending
            vectors = embedding.result() if embedding else np.empty((0, 0), dtype=np.float32)  # an empty batch
            pending = embed_next()
            rows: list[Row] = []
            offset = 0
            for item, chunks in batch:
                rows.append((item, chunks, vectors[offset : offset + len(chunks)]))
                offset += len(chunks)
            yield rows
            done += len(batch) + resumed
            report.chunks_embedded += offset
            log.info("embedded and stored %d/%d papers (%d chunks)", done, total, report.chunks_embedded)
            progress("embed", done, total)


def _write_batches(
    papers: Iterable[Paper], settings: Settings, report: IngestReport, resume_in: Store | None
) -> Iterator[tuple[list[tuple[Paper, list[Chunk]]], int]]:
    """Papers with their chunks, cut into batches of about WRITE_BATCH_CHUNKS chunks, chunked as they are needed;
    with each batch, how many papers before it were taken over from a killed ingest in `resume_in` instead."""
    batch: list[tuple[Paper, list[Chunk]]] = []
    size = resumed = 0
    resumable = resume_in is not None and resume_in.resumable()
    for paper in papers:
        chunks = _capped_chunks(paper, settings, report)
        if resumable and resume_in is not None and resume_in.adopt(paper, len(chunks)):
            resumed += 1
            continue
        batch.append((paper, chunks))
        size += len(chunks)
        if size >= WRITE_BATCH_CHUNKS:
            yield batch, resumed
            batch, size, resumed = [], 0, 0
    if batch or resumed:
        yield batch, resumed


def _texts(batch: list[tuple[Paper, list[Chunk]]]) -> list[str]:
    return [chunk.embed_text for _, chunks in batch for chunk in chunks]


# ---------------------------------------------------------------- streamed files
#
# A streamed file (JSONL, a 4.5 GB arXiv snapshot) is read in two passes and never held: pass 1 (`_scan`) checks
# every record, so a bad file stores nothing, and keeps only 12 bytes per duplicate key (its 64-bit hash and its
# record's number); records that share a hash with another are read again and merged exactly as a whole file
# would be. Pass 2 (`_ingest_streamed`) reads the file again and embeds and writes new papers in batches, hidden
# until the commit. Two passes rather than one that writes as it reads: a file is refused for a malformed last
# record or for removing too many papers only once it has been read to the end, and a duplicate may merge into an
# earlier paper, so one pass would have to write, rewrite and undo. Parsing twice costs less than embedding once
# (measured by benchmarks/stream_memory.py). What does grow with the file: those 12 bytes a key, the merged
# duplicates, and the rows of papers already stored whose content changed (applied at the commit, as for any file).


@dataclass
class _Scanned:
    """Pass 1's findings on a streamed file: enough to plan and to write it without holding its papers."""

    path: Path
    stream: Stream
    sha256: str
    result: ParseResult  # the format and the skipped entries; papers are counted, not kept
    papers: int
    max_line_bytes: int
    groups: dict[int, str] = field(default_factory=dict)  # record number -> its group, for records with duplicates
    merged: dict[str, Paper] = field(default_factory=dict)  # those groups, merged

    @property
    def group_count(self) -> int:
        """How many papers the file holds once its duplicates are merged."""
        return self.papers - len(self.groups) + len(self.merged)


def _key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


def _records(scanned: _Scanned) -> Iterator[Paper | Skipped]:
    """The file's records, read again; the file must not have changed since pass 1."""
    digest = hashlib.sha256()
    yield from scanned.stream(reading.stream_lines(scanned.path, scanned.max_line_bytes, digest), str(scanned.path))
    if digest.hexdigest() != scanned.sha256:
        raise ParseError("the file changed while it was being read: ingest it again once it is written")


def _papers(scanned: _Scanned) -> Iterator[tuple[int, Paper]]:
    return enumerate(item for item in _records(scanned) if isinstance(item, Paper))


def _scan(path: Path, fmt: str, stream: Stream, max_line_bytes: int) -> _Scanned:
    """Pass 1: check every record, count them, and find the records that may be duplicates of one another."""
    digest = hashlib.sha256()
    result = ParseResult(format=fmt)
    hashes, owners = array("Q"), array("I")
    papers = 0
    for item in stream(reading.stream_lines(path, max_line_bytes, digest), str(path)):
        if isinstance(item, Skipped):
            result.skip(item)
            continue
        result.note(item)
        for key in duplicate_keys(item):
            hashes.append(_key_hash(key))
            owners.append(papers)
        papers += 1
    if not papers and not result.skipped_total:
        raise ParseError(f"no papers found in this {fmt} file")
    scanned = _Scanned(path, stream, digest.hexdigest(), result, papers, max_line_bytes)
    if candidates := _sharing_a_key(hashes, owners):  # read again, keeping only these records
        held = [paper for number, paper in _papers(scanned) if number in candidates]
        if conflict := find_conflict(held):
            raise ParseError(conflict)
        scanned.merged, ids = group_duplicates(held)
        scanned.groups = dict(zip(sorted(candidates), ids))
    return scanned


def _sharing_a_key(hashes: array, owners: array) -> set[int]:
    """The records that share a duplicate-key hash with another record (sorting 12 bytes a key, not a dict)."""
    keys = np.frombuffer(hashes, dtype=np.uint64)
    order = np.argsort(keys, kind="stable")
    same = keys[order][1:] == keys[order][:-1]
    shared = np.zeros(len(keys), dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    return set(np.frombuffer(owners, dtype=np.uint32)[order][shared].tolist())


def _merged_papers(scanned: _Scanned) -> Iterator[Paper]:
    """Pass 2's papers in file order, each group of duplicates once (merged, where its first record was)."""
    done: set[str] = set()
    for number, paper in _papers(scanned):
        group = scanned.groups.get(number)
        if group is None:
            yield paper
        elif group not in done:
            done.add(group)
            yield scanned.merged[group]


STREAM_LOOKUP_BATCH = 512  # papers of a streamed file reconciled with the catalog per round of queries


def _ingest_streamed(
    scanned: _Scanned, store: Store, embedder: Embedder, settings: Settings, report: IngestReport,
    progress: ProgressCallback, allow_removals: bool,
) -> None:
    """Pass 2: reconcile each paper with the library as it is read (the rules of `_plan`), embed and write.
    The catalog is asked about each batch of papers, so memory and time follow the file, not the library."""
    path = str(scanned.path)
    held = store.papers_of_files([path])  # what this file said before is forgotten: its papers are re-derived
    trimmed = {pid: _without_files(sp.paper, {path}) for pid, sp in held.items()}
    lost = len(trimmed) - scanned.group_count
    if not allow_removals and (reason := _removal_refusal(lost, len(trimmed), settings.max_removal_share)):
        report.fail(path, reason)
        return
    tally: Counter[str] = Counter()  # added to the report once the file is stored
    touched: set[str] = set()
    renamed: dict[str, str] = {}  # ids this file's papers got instead of the ones they gave
    sources_only: list[Paper] = []

    def reconciled(batch: list[Paper]) -> Iterator[Paper]:
        owners = store.key_owners([key for paper in batch for key in duplicate_keys(paper)])
        stored = {**store.stored_papers([*owners.values(), *(p.paper_id for p in batch)]), **held}

        def base(pid: str) -> Paper:
            return trimmed[pid] if pid in trimmed else stored[pid].paper

        for paper in batch:
            match = find_duplicate(paper, owners, base)
            if match is None or match in touched:
                given = paper.paper_id
                if given in stored or given in renamed.values() or given in touched:
                    paper = with_free_id(paper, _Known(store, {pid: paper for pid in (*renamed.values(), *touched)}))
                    renamed[given] = paper.paper_id
                    stored.update(store.stored_papers([paper.paper_id]))
            else:
                touched.add(match)
                tally["merged_duplicates"] += bool(base(match).sources)
                paper = merge_into(base(match), paper) if base(match).sources else _refresh(base(match), paper)
            tally["without_abstract"] += not paper.has_abstract
            old = stored.get(paper.paper_id)
            if old is None or old.content_key != paper.content_key():
                tally["new" if old is None else "updated"] += 1
                yield paper
            else:
                tally["unchanged"] += 1
                if paper.sources != old.paper.sources:
                    sources_only.append(paper)

    def to_embed() -> Iterator[Paper]:
        batch: list[Paper] = []
        for paper in _merged_papers(scanned):
            batch.append(paper)
            if len(batch) >= STREAM_LOOKUP_BATCH:
                yield from reconciled(batch)
                batch = []
        yield from reconciled(batch)

    tally["merged_duplicates"] += len(scanned.groups) - len(scanned.merged)
    try:
        _write_new(to_embed(), scanned.group_count, store, embedder, settings, report, progress)
    except ParseError as error:  # the file changed between the passes: what this file wrote goes
        store.discard()
        report.fail(path, str(error))
        return
    unheld = [pid for pid in trimmed if pid not in touched]
    with store.committing():
        store.update_records(sources_only + [trimmed[pid] for pid in unheld if trimmed[pid].sources])
        if orphaned := [pid for pid in unheld if not trimmed[pid].sources]:
            store.delete_papers(orphaned)
            tally["removed"] += len(orphaned)
        store.set_sources([SourceRecord(path, scanned.sha256, scanned.result.format, scanned.papers)])
    report.count_parsed(path, scanned.result, scanned.papers)
    report.warnings += _collision_warnings([(path, given, got) for given, got in renamed.items()])
    for name, count in tally.items():
        setattr(report, name, getattr(report, name) + count)


class RemovalReport(BaseModel):
    removed: list[str] = Field(default_factory=list)
    detached: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)


def remove(store: Store, paper_ids: Sequence[str] = (), files: Sequence[str] = ()) -> RemovalReport:
    """Delete papers, and/or forget source files: papers left without any source are deleted too. All or nothing:
    one commit (a removal killed at any moment leaves the library as it was, or without all of them)."""
    report = RemovalReport()
    with store.writing():
        stored = store.stored_papers(paper_ids)
        known_files = [f for f in dict.fromkeys(files) if store.source_hash(f) is not None]
        report.unknown = [pid for pid in paper_ids if pid not in stored] + [f for f in files if f not in known_files]
        doomed = [pid for pid in dict.fromkeys(paper_ids) if pid in stored]
        updates = []
        for pid, sp in store.papers_of_files(known_files).items():
            if pid in doomed:
                continue
            kept = [s for s in sp.paper.sources if s.file not in files]
            if kept:
                updates.append(sp.paper.model_copy(update={"sources": kept}))
                report.detached.append(pid)
            else:
                doomed.append(pid)
        if doomed or updates or known_files:
            with store.committing():
                store.update_records(updates)
                store.delete_papers(doomed)
                store.delete_sources(known_files)
    report.removed = doomed
    log.info("removed %d papers, detached %d from removed sources", len(doomed), len(updates))
    return report


class ReindexReport(BaseModel):
    papers: int = 0
    chunks_embedded: int = 0
    skipped: int = Field(default=0,
                         description="papers whose chunks no longer match the catalog's (another chunk size)")
    seconds: float = 0.0


def reindex(store: Store, embedder: Embedder, settings: Settings, progress: ProgressCallback = _no_progress
            ) -> ReindexReport:
    """Embed every paper again into the vector index, under the vector ids the catalog lists: what rebuilds a lost
    or damaged HOME/chroma from the catalog (which keeps every record and passage). Nothing is re-parsed."""
    started = time.perf_counter()
    report = ReindexReport()
    with store.writing():
        store.check_chunk_tokens()
        papers = (stored.paper for stored in store.catalog.all_papers())  # streamed: a million papers are not a list
        for rows in _embedded(papers, store.paper_count(), store, embedder, settings, IngestReport(), progress,
                              resume=False):
            report.skipped += store.restore_vectors(rows)
            report.papers += len(rows)
            report.chunks_embedded += sum(len(chunks) for _, chunks, _ in rows)
    report.seconds = round(time.perf_counter() - started, 2)
    log.info("re-embedded %d papers (%d chunks) into %s", report.papers, report.chunks_embedded, store.path)
    return report


def _refresh(old: Paper, new: Paper) -> Paper:
    """A re-parsed paper that only this file held: take the new content, keep the stored id."""
    return new.model_copy(update={"paper_id": old.paper_id})
