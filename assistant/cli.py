"""`litassist` on the command line: a thin layer over the Assistant facade."""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeGuard, get_args

import typer
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from . import Answer, Assistant, EnrichReport, Event, Filters, IngestReport, SearchMode

app = typer.Typer(help="litassist: a literature assistant grounded in your papers.", no_args_is_help=True)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # errors stay on one line, whatever the width
EXIT_BAD_INPUT = 2
SKIPPED_LINES = 20  # skipped entries listed one by one; the rest are counted by reason
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(value: object) -> str:
    """Text that prints as one plain line: control characters, escape sequences, line breaks and bidi overrides
    from file names or file contents are shown escaped (\\n, \\x1b), never sent to the terminal."""
    return _UNPRINTABLE.sub(
        lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"), str(value)
    )


class _PrintableRecords(logging.Filter):
    """Log lines carry file names and parser messages: make each one printable (see `printable`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage()), None
        return True


class CliState:
    home: Path | None = None


@app.callback()
def main(
    home: Annotated[
        Path | None, typer.Option("--home", help="Library directory (else LITASSIST_HOME, else a per-user default).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    from rich.logging import RichHandler

    if home is not None:
        from . import expand_path

        home = Path(expand_path(home))
        require_usable_home(home, "--home")
    CliState.home = home
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = RichHandler(console=err, show_path=False, show_time=False, markup=False)
    handler.addFilter(_PrintableRecords())
    handler.setLevel(level)  # bm25s sets its own logger to DEBUG on import; -v is the only way to see that
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("litassist").setLevel(level)


def assistant() -> Assistant:
    from . import Assistant, StoreError

    try:
        instance = Assistant(home=CliState.home)
        require_usable_home(instance.settings.home, "LITASSIST_HOME")
        _ = instance.store  # open now, so a store error is reported before any work
        return instance
    except StoreError as error:
        fail(str(error))


def require_usable_home(home: Path, given_by: str) -> None:
    """A library folder we can create and write, else one line and exit 2 (not a traceback from Chroma)."""
    existing = next(p for p in (home, *home.parents) if p.exists())
    if not existing.is_dir():
        fail(f"{given_by} {home}: {existing} is a file, not a directory", EXIT_BAD_INPUT)
    if not os.access(existing, os.W_OK | os.X_OK):
        fail(f"{given_by} {home}: {existing} is not writable", EXIT_BAD_INPUT)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(Text.assemble(("error:", "bold red"), " ", printable(message)), highlight=False)
    raise typer.Exit(code)


def _parse_mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column.strip():
            fail(f"--csv-map expects FIELD=COLUMN, got {pair!r}", EXIT_BAD_INPUT)
        mapping[field.strip()] = column.strip()
    return mapping


@app.command("ingest")
def ingest_command(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or directories (searched recursively).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Ingest the bundled seed corpus.")] = False,
    csv_map: Annotated[
        list[str] | None, typer.Option("--csv-map", help="CSV column mapping, e.g. abstract='Summary Text'.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-parse files even if unchanged.")] = False,
    allow_removals: Annotated[
        bool, typer.Option("--allow-removals", help="Accept changed files that drop many of their papers.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    fetch_abstracts: Annotated[
        bool, typer.Option("--fetch-abstracts", help="Then fill missing abstracts from the web (see `enrich`).")
    ] = False,
) -> None:
    """Parse, chunk, embed and store papers. Exit status 2 if any file failed."""
    from . import DEMO_CORPUS, StoreError

    targets = list(paths or []) + ([DEMO_CORPUS] if demo else [])
    if not targets:
        fail("give files or directories to ingest, or --demo for the bundled seed corpus", EXIT_BAD_INPUT)
    missing = [str(p) for p in targets if not p.exists()]
    if missing:
        fail(f"{missing[0]}: no such file or directory", EXIT_BAD_INPUT)
    mapping = _parse_mapping(csv_map or [])
    lib = assistant()
    try:
        with progress_bars(disable=as_json and not err.is_terminal) as on_progress:
            report = lib.ingest(targets, csv_mapping=mapping or None, force=force, progress=on_progress,
                                allow_removals=allow_removals)
    except StoreError as error:  # another writer held the library too long, or the store failed
        fail(str(error))
    if not as_json:
        _print_report(report)
        if not demo and (demo_files := lib.demo_sources()):
            err.print(f"note: the library also holds the demo corpus ({len(demo_files)} pages from `ingest --demo`); "
                      "remove it with `litassist remove --demo`", highlight=False)
    enriched = _run_enrich(lib, targets, as_json) if fetch_abstracts else None
    if as_json:
        print(json.dumps({**report.model_dump(), **({"enrich": enriched.model_dump()} if enriched else {})},
                         ensure_ascii=False, indent=2))
    if report.files_failed:
        raise typer.Exit(EXIT_BAD_INPUT)
    if enriched and enriched.failed:
        raise typer.Exit(1)


@app.command("enrich")
def enrich_command(
    source: Annotated[
        list[Path] | None, typer.Option("--source", help="Only the papers of this source file or folder.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Fill missing abstracts and metadata from OpenAlex, Crossref and the arXiv API, by DOI, arXiv id or exact
    title. Uses the network (only this command and `ingest --fetch-abstracts` do); answers are cached in the
    home, so a re-run sends no request for what was looked up. Exit status 1 without network or if lookups failed."""
    report = _run_enrich(assistant(), source, as_json)
    if as_json:
        print(report.model_dump_json(indent=2))
    if report.failed:
        raise typer.Exit(1)


def _run_enrich(lib: Assistant, sources: list[Path] | None, as_json: bool) -> EnrichReport:
    """Run `enrich` with a progress bar; no network is one line and exit status 1."""
    from . import EnrichError, StoreError

    try:
        with progress_bars(disable=as_json and not err.is_terminal) as on_progress:
            report = lib.enrich(sources, progress=on_progress)
    except (EnrichError, StoreError) as error:
        fail(str(error))
    if not as_json:
        _print_enrich_report(report)
    return report


def _print_enrich_report(report: EnrichReport) -> None:
    from rich.table import Table

    for failure in report.failures:
        err.print(Text.assemble(("failed", "red"), " ", printable(failure)), highlight=False)
    if report.failed > len(report.failures):
        err.print(Text.assemble(("failed", "red"), f" … {report.failed - len(report.failures)} more"), highlight=False)
    if report.requests and not report.contact_email:
        err.print("note: set LITASSIST_CONTACT_EMAIL to your e-mail address: OpenAlex and Crossref ask for it and "
                  "answer such requests faster", highlight=False)
    table = Table(title="enrich report", show_header=False)
    rows = [
        ("lacked an abstract", report.lacking),
        ("filled", report.filled),
        ("other fields filled", report.metadata_filled),
        ("not found", report.not_found),
        ("failed (run again to retry)", report.failed),
        ("answered from the cache", report.from_cache),
        ("requests sent", report.requests),
    ]
    for name, value in rows:
        if value or name in ("lacked an abstract", "filled"):
            table.add_row(name, f"{value:,}")
    table.add_row("time", f"{report.seconds:.1f} s")
    out.print(table)


STAGES = {"parse": "parsing", "embed": "embedding", "summarize": "summarizing", "enrich": "fetching",
          "search": "searching"}


@contextlib.contextmanager
def progress_bars(disable: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback (stage, done, total) drawing one bar per stage on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # stdout goes through the bars' console only when it is the terminal too: results sent to a file stay there
    with Progress(*columns, console=err, disable=disable, redirect_stdout=out.is_terminal) as bars:
        tasks: dict[str, TaskID] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(STAGES.get(stage, stage), total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield on_progress


def _print_report(report: IngestReport) -> None:
    """Failed files one line each; skipped entries one line each up to SKIPPED_LINES, then counted by reason."""
    from rich.table import Table

    def line(label: str, style: str, text: str) -> None:
        err.print(Text.assemble((label, style), " ", printable(text)), highlight=False)

    for failure in report.files_failed:
        line("failed", "red", f"{failure.file}: {failure.reason}")
    for skip in report.skipped[:SKIPPED_LINES]:
        named = f" ({skip.label})" if skip.label else ""
        line("skipped", "yellow", f"{skip.file} entry {skip.position}{named}: {skip.reason}")
    if report.skipped_total > SKIPPED_LINES:
        reasons = ", ".join(f"{reason} ×{count:,}" for reason, count in
                            sorted(report.skip_reasons.items(), key=lambda item: -item[1])[:5])
        line("skipped", "yellow", f"… {report.skipped_total - SKIPPED_LINES:,} more entries; in all: {reasons}")
    for warning in report.warnings[:SKIPPED_LINES]:
        line("warning", "yellow", warning)
    if report.files == len(report.files_failed):
        return  # every file failed: the lines above say why; a table of zeros would add nothing
    table = Table(title="ingest report", show_header=False)
    file_notes = ", ".join(f"{n} {what}" for n, what in ((report.files_unchanged, "unchanged"),
                                                           (len(report.files_failed), "failed")) if n)
    counts = [
        ("new papers", report.new),
        ("papers without an abstract", report.without_abstract),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("merged duplicates", report.merged_duplicates),
        ("removed", report.removed),
        ("skipped entries", report.skipped_total),
        ("chunks embedded", report.chunks_embedded),
    ]
    rows = [
        ("files", f"{report.files}" + (f" ({file_notes})" if file_notes else "")),
        *((f"  {fmt}", f"{n:,} papers") for fmt, n in sorted(report.papers_by_format.items()) if n),
        *((name, f"{value:,}") for name, value in counts if value),  # rows that would read 0 are left out
        ("time", f"{report.seconds:.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)


@app.command("papers")
def papers_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List every paper in the library (a title made from the abstract's first words is shown as "Untitled — …",
    a date without a year as "May 24, no year")."""
    from . import NO_ABSTRACT, display_date, display_title

    for paper in assistant().iter_papers():
        if as_json:
            record = {
                "paper_id": paper.paper_id,
                "title": paper.title,
                "authors": paper.authors,
                "year": paper.year,
                "source": paper.sources[0].model_dump() if paper.sources else None,
                "abstract": paper.abstract,
                "title_derived": paper.title_derived,
                "date": paper.date,
                "venue": paper.venue,
                "url": paper.url,
                "doi": paper.doi,
                "arxiv_id": paper.arxiv_id,
                "has_abstract": paper.has_abstract,
                "keywords": paper.keywords,
                "collections": paper.collections,
                "attachments": paper.attachments,
                "sources": [s.model_dump() for s in paper.sources],
            }
            print(json.dumps(record, ensure_ascii=False))
        else:
            marker = "" if paper.has_abstract else f"  [yellow]{NO_ABSTRACT}[/]"
            out.print(f"[cyan]{escape(printable(paper.paper_id))}[/]  {escape(printable(display_title(paper)))}  "
                      f"[dim]({escape(display_date(paper))})[/]{marker}", highlight=False)


COLLECTION_HELP = ("Only papers in this Zotero collection: its name or path (Parent/Child; a parent takes in its "
                   "subcollections), any case. Repeat for several.")


@app.command("search")
def search_command(
    query: Annotated[str | None, typer.Argument(help="What to look for.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Number of papers to return.")] = 10,
    queries: Annotated[
        Path | None, typer.Option("--queries", help='Batch mode: JSONL of {"id": ..., "text": ...} per line.')
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, dense or lexical.")] = "hybrid",
    year_min: Annotated[int | None, typer.Option("--year-min", help="Only papers from this year on.")] = None,
    year_max: Annotated[int | None, typer.Option("--year-max", help="Only papers up to this year.")] = None,
    author: Annotated[str | None, typer.Option("--author", help="Author name contains this.")] = None,
    venue: Annotated[str | None, typer.Option("--venue", help="Venue/category contains this.")] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="A format (bibtex, jsonl, ...) or a source file's path or name, exactly."),
    ] = None,
    collection: Annotated[list[str] | None, typer.Option("--collection", help=COLLECTION_HELP)] = None,
    include_undated: Annotated[
        bool,
        typer.Option(
            "--include-undated",
            help="With --year-min/--year-max: papers without a year pass too (by default they are "
            "left out, and the count left out is said).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output (JSON lines in batch mode).")] = False,
) -> None:
    """Find the papers that best match a query (hybrid dense + BM25 by default)."""
    from . import NO_ABSTRACT, Filters, display_title, plain_text

    if not _is_search_mode(mode):
        fail(f"--mode must be hybrid, dense or lexical, not {mode!r}", EXIT_BAD_INPUT)
    if (query is None) == (queries is None):
        fail("give a QUERY or --queries FILE.jsonl (not both)", EXIT_BAD_INPUT)
    filters = Filters(year_min=year_min, year_max=year_max, author=author, venue=venue, source=source,
                      collections=collection or None, include_undated=include_undated or None)
    lib = assistant()
    if queries is not None:
        _search_batch(lib, queries, k, filters, mode)
        return
    assert query is not None  # checked above: a QUERY or --queries
    hits = lib.search(query, k=k, filters=filters, mode=mode)
    if as_json:
        print(json.dumps([hit.as_json() for hit in hits], ensure_ascii=False, indent=2))
        return
    for line in filter_notes(lib, filters, found=bool(hits)):
        err.print(line, highlight=False, markup=False)
    for rank, hit in enumerate(hits, start=1):
        title, paper_id = escape(printable(display_title(hit.paper))), escape(printable(hit.paper_id))
        out.print(f"[bold]{rank}. {title}[/]  [dim]{paper_id}  score {hit.score:.3f}[/]", highlight=False)
        text = plain_text(" ".join(hit.text.split())) if hit.paper.has_abstract or hit.location else \
            f"({NO_ABSTRACT}: found by its title and metadata)"
        if hit.location:  # a passage of the paper's PDF: say where it is
            section = f", {hit.location['section']}" if hit.location.get("section") else ""
            out.print(f"   [dim]p. {hit.location['page']}{escape(printable(section))}[/]", highlight=False)
        out.print(f"   {printable(text[:300])}{'…' if len(text) > 300 else ''}", highlight=False, markup=False)


def _is_search_mode(mode: str) -> TypeGuard[SearchMode]:
    from . import SearchMode

    return mode in get_args(SearchMode)


def filter_notes(lib: Assistant, filters: Filters, found: bool) -> list[str]:
    """What a search should say about its filters: that nothing in the library matches them (rather than "no
    results"), an empty library, and how many undated papers a year filter left out (see --include-undated).
    Counted by the catalog over the filters' candidates only: a search never reads the whole library for this."""
    if not found and not lib.paper_count():
        return ["no results: the library is empty (run `litassist ingest --demo` to load the seed corpus)"]
    if not filters.active():
        return [] if found else ["no results"]
    admitted = lib.count_matching(filters)
    notes = []
    if not admitted:
        notes.append(f"no papers match the filters: {filters.describe()} ({lib.paper_count()} papers in the library)")
    elif not found:
        notes.append("no results")
    if (filters.bounds_years() and not filters.include_undated
            and (left_out := lib.count_matching(filters.model_copy(update={"include_undated": True})) - admitted)):
        notes.append(f"{left_out} undated papers were left out by the year filter (--include-undated includes "
                     "them)")
    return notes


def _search_batch(lib: Assistant, path: Path, k: int, filters: Filters, mode: SearchMode) -> None:
    """--queries: a JSON line per query on stdout, written as soon as its batch is searched (`search_stream`), with
    a progress bar on a terminal's stderr; the file is read as the search goes, so any number of queries fits."""
    query_ids: collections.deque[object] = collections.deque()  # read, not yet answered: one batch at most

    def texts() -> Iterator[str]:
        for query_id, text in _read_queries(path):
            query_ids.append(query_id)
            yield text

    total = _count_lines(path) if path.is_file() else None  # a pipe can be read only once
    with progress_bars(disable=not err.is_terminal) as on_progress:
        for done, hits in enumerate(lib.search_stream(texts(), k=k, filters=filters, mode=mode), start=1):
            print(json.dumps({"id": query_ids.popleft(), "hits": [h.as_json() for h in hits]}, ensure_ascii=False),
                  flush=True)
            on_progress("search", done, total or done)


def _count_lines(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def _read_queries(path: Path) -> Iterator[tuple[object, str]]:
    """(id, text) per line of a JSONL file, read lazily; a bad line ends the command with its number."""
    try:
        lines = path.open("rb")
    except OSError as error:
        fail(f"{path}: {error.strerror or error}", EXIT_BAD_INPUT)
    with lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                record = json.loads(line)
                yield record["id"], str(record["text"])
            except UnicodeDecodeError:
                fail(f"{path}: line {number} is not UTF-8 text", EXIT_BAD_INPUT)
            except (json.JSONDecodeError, KeyError, TypeError):
                fail(f'{path}: line {number} is not a JSON object with "id" and "text"', EXIT_BAD_INPUT)


@app.command("remove")
def remove_command(
    paper_ids: Annotated[list[str] | None, typer.Argument(help="Paper ids to delete.")] = None,
    source: Annotated[
        list[Path] | None,
        typer.Option("--source", help="Forget a source file (its papers go unless another source has them)."),
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Remove the demo corpus that `ingest --demo` added.")] = False,
) -> None:
    """Delete papers or sources from the library (dense and lexical indexes stay in step)."""
    from . import StoreError

    if not paper_ids and not source and not demo:
        fail("give paper ids, --source FILE or --demo", EXIT_BAD_INPUT)
    try:
        lib = assistant()
        report = lib.remove(paper_ids or [], [*(source or []), *(lib.demo_sources() if demo else [])])
    except StoreError as error:
        fail(str(error))
    for unknown in report.unknown:
        err.print(Text.assemble(("not in the library:", "yellow"), " ", printable(unknown)), highlight=False)
    out.print(f"removed {len(report.removed)} papers; {len(report.detached)} kept with their other sources")
    if report.unknown:
        raise typer.Exit(EXIT_BAD_INPUT)


def _answer_json(answer: Answer) -> dict[str, object]:
    """`ask --json`: the checked answer, each citation with the spans of its abstract the answer rests on,
    each cited sentence (offsets into the answer) with what every one of its citations rests on, and where the
    answer quotes papers (`quoted`: [start, end] offsets; a "[2]" inside one is the paper's text, not a citation)."""
    return {
        "answer": answer.text,
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "citations": [
            {"number": c.number, "paper_id": c.paper_id, "title": c.title,
             "spans": [s.model_dump() for s in c.spans], "support": c.support, "weak": c.weak}
            for c in answer.citations
        ],
        "claims": [claim.model_dump() for claim in answer.claims],
        "quoted": answer.quoted,
        "provider": answer.provider,
        "model": answer.model,
        "usage": answer.usage.model_dump(),
        "extractive": answer.extractive,
        "abstained": answer.abstained,
        "removed_citations": answer.removed_citations,
        "steps": [step.model_dump() for step in answer.steps],
    }


class _StreamTail:
    """The answer as it streams in, cut to the last lines that fit the terminal, so the live region can always
    be cleared and replaced by the checked answer."""

    def __init__(self) -> None:
        self.text = ""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = Text(self.text).wrap(console, options.max_width)
        yield from list(lines)[-max(1, console.size.height - 2):]


def _run_turn(
    lib: Assistant, question: str, as_json: bool, conversation: str | None = None, filters: Filters | None = None
) -> Answer:
    """One question: steps go to stderr as they happen; on a terminal the model's tokens stream into a live
    region that the checked answer then replaces (invalid markers removed, the uncited note added), so what
    stays on screen is exactly the answer `--json` returns; piped, stdout gets only the checked answer.
    Model errors are one line. With `conversation`, the turn follows up on that saved conversation (papers keep
    their numbers) and is saved to it."""
    from rich.live import Live

    from . import EmptyLibraryError, collect, error_text, plain_text

    tail = _StreamTail()
    # The live region belongs to the stderr console, which also prints the steps and log lines, so they land
    # above it; the checked answer then goes to stdout.
    live = (Live(tail, console=err, transient=True, auto_refresh=False, redirect_stdout=False, redirect_stderr=False)
            if err.is_terminal and not as_json else None)

    def show(event: Event) -> None:
        if as_json:
            return
        if event.kind == "step" and (step := event.step) is not None:
            line = f"· {step.tool}({json.dumps(step.args, ensure_ascii=False)}) → {step.summary}"
            err.print(Text(printable(line), style="dim"), highlight=False)  # the question is text, not markup
        elif event.kind == "token" and live is not None:
            tail.text += event.text
            live.update(tail, refresh=True)

    try:
        with live or contextlib.nullcontext():
            answer = collect(lib.stream(question, filters=filters, conversation=conversation), show)
    except EmptyLibraryError as error:
        fail(str(error))
    except Exception as error:  # noqa: BLE001 - a model failure is one line, never a traceback
        fail(error_text(error, lib.settings))
    if not as_json:  # quotes of abstracts are shown as typeset ("11\\%" -> "11%"); a model's text as written
        out.print(plain_text(answer.text) if answer.extractive else answer.text, highlight=False, markup=False)
        cost = f", ${answer.usage.cost_usd:.4f}" if answer.usage.cost_usd is not None else ""
        err.print(
            f"[dim]{answer.provider}{' ' + answer.model if answer.model else ''} · {answer.usage.prompt_tokens}+"
            f"{answer.usage.completion_tokens} tokens{cost} · {answer.usage.seconds:.1f} s[/]", highlight=False,
        )
    return answer


@app.command("ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="Your question.")],
    as_json: Annotated[bool, typer.Option("--json", help='{"answer", "citations", "provider", "usage", ...}')] = False,
    collection: Annotated[list[str] | None, typer.Option("--collection", help=COLLECTION_HELP)] = None,
) -> None:
    """Answer a question from your library, citing the papers it comes from."""
    from . import Filters

    lib = assistant()
    answer = _run_turn(lib, question, as_json, filters=Filters(collections=collection) if collection else None)
    if as_json:
        print(json.dumps(_answer_json(answer), ensure_ascii=False, indent=2))


CHAT_EXIT_WORDS = {"exit", "quit", "/exit", "/quit", "exit()", "quit()", ":q"}  # never sent as questions


@app.command("chat")
def chat_command(
    conversation_id: Annotated[str | None, typer.Argument(
        metavar="ID", help="A saved conversation to continue (its id or a unique prefix).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue a saved conversation: ID, or the most recent one.")] = False,
) -> None:
    """A conversation in the terminal, saved as you go (the app lists it too); follow-up questions use what was
    said. `chat --resume [ID]` continues a saved one. An empty line, exit, quit, /exit, /quit or Ctrl-D ends it."""
    from . import ConversationError

    lib = assistant()
    conversation = None
    if resume or conversation_id:
        listed = lib.conversations()
        if not conversation_id and not listed:
            fail("no saved conversation to resume: `litassist chat` starts one", EXIT_BAD_INPUT)
        try:
            saved = lib.conversation(conversation_id or listed[0].conversation_id)
        except ConversationError as error:
            fail(str(error), EXIT_BAD_INPUT)
        conversation = saved.conversation_id
        err.print(f"resuming conversation {conversation} “{saved.title}” ({saved.answers} answers)", highlight=False,
                  markup=False)
        for number, turn, answer in saved.answered()[-1:]:
            out.print(f"\n{number}. you> {turn.question}\n\n{answer.text}", highlight=False, markup=False)
    while True:
        try:
            question = input("\nyou> ").strip()
        except EOFError:
            break
        if not question or question.lower() in CHAT_EXIT_WORDS:
            break
        if conversation is None:
            conversation = lib.start_conversation().conversation_id
            err.print(f"[dim]saved as conversation {conversation} (resume: litassist chat --resume "
                      f"{conversation})[/]", highlight=False)
        _run_turn(lib, question, as_json=False, conversation=conversation)


conversations_app = typer.Typer(help="Saved conversations (the app's and `litassist chat`'s): list, export, "
                                     "rename, delete.", invoke_without_command=True)
app.add_typer(conversations_app, name="conversations")


@conversations_app.callback()
def conversations_command(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List saved conversations, most recently active first."""
    if ctx.invoked_subcommand is not None:
        return
    for info in assistant().conversations():
        if as_json:
            print(info.model_dump_json())
        else:
            failed = f", {info.failed} failed" if info.failed else ""
            out.print(f"[cyan]{info.conversation_id}[/]  {info.updated.astimezone():%Y-%m-%d %H:%M}  "
                      f"[dim]{info.answers} answers{failed}[/]  {escape(info.title)}", highlight=False)


@conversations_app.command("export")
def conversations_export_command(
    conversation_id: Annotated[str, typer.Argument(help="A conversation id (or a unique prefix).")],
    fmt: Annotated[str, typer.Option("--format", help="markdown or json.")] = "markdown",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """A conversation's answered turns with their references and the quoted sentences each claim rests on."""
    from . import EXPORTS, ConversationError

    if fmt not in EXPORTS:
        fail(f"--format must be {' or '.join(EXPORTS)}, not {fmt!r}", EXIT_BAD_INPUT)
    try:
        text = EXPORTS[fmt](assistant().conversation(conversation_id))
    except ConversationError as error:
        fail(str(error), EXIT_BAD_INPUT)
    if out_file is None:
        print(text)
    else:
        out_file.write_text(text + "\n", encoding="utf-8")
        err.print(f"wrote {out_file}", highlight=False, markup=False)


@conversations_app.command("rename")
def conversations_rename_command(
    conversation_id: Annotated[str, typer.Argument(help="A conversation id (or a unique prefix).")],
    title: Annotated[str, typer.Argument(help="The new title.")],
) -> None:
    """Give a saved conversation a new title."""
    from . import ConversationError

    try:
        info = assistant().rename_conversation(conversation_id, title)
    except (ConversationError, ValueError) as error:
        fail(str(error), EXIT_BAD_INPUT)
    out.print(f"{info.conversation_id}: {info.title}", highlight=False, markup=False)


@conversations_app.command("delete")
def conversations_delete_command(
    conversation_id: Annotated[str, typer.Argument(help="A conversation id (or a unique prefix).")],
) -> None:
    """Delete a saved conversation and all its turns."""
    from . import ConversationError

    try:
        gone = assistant().delete_conversation(conversation_id)
    except ConversationError as error:
        fail(str(error), EXIT_BAD_INPUT)
    out.print(f"deleted conversation {gone.conversation_id} “{gone.title}”", highlight=False, markup=False)


@app.command("doctor")
def doctor_command() -> None:
    """Show what is configured and whether it is reachable."""
    checks = assistant().doctor()
    for check in checks:
        mark = "[green]ok[/]" if check.ok else "[red]FAIL[/]"
        out.print(f"{mark:>18}  {check.name:<11} {check.detail}", highlight=False, soft_wrap=True)  # a line each
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


eval_app = typer.Typer(help="Measure retrieval and answer quality on a BEIR-layout dataset.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("retrieval")
def eval_retrieval_command(
    folder: Annotated[Path, typer.Argument(help="A BEIR-layout folder: corpus.jsonl, queries.jsonl, qrels/.")],
    split: Annotated[str, typer.Option("--split", help="qrels/<split>.tsv to score.")] = "test",
    eval_home: Annotated[
        Path | None, typer.Option("--eval-home", help="Where to index the corpus (default: a cache dir per dataset).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """nDCG@10, Recall@10/100 and MRR@10 of hybrid, dense and lexical search. Your library is not touched."""
    from rich.table import Table

    from . import Assistant, evaluate_retrieval
    from . import eval_home as default_eval_home

    if not (folder / "corpus.jsonl").exists():
        fail(f"{folder}: no corpus.jsonl (expected a BEIR-layout folder)", EXIT_BAD_INPUT)
    report = evaluate_retrieval(Assistant(home=eval_home or default_eval_home(folder)), folder, split)
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    table = Table(title=f"{report.dataset} {report.split}: {report.queries} queries, {report.corpus_papers} papers")
    for column in ("mode", "nDCG@10", "Recall@10", "Recall@100", "MRR@10", "s/query"):
        table.add_column(column)
    for mode, m in report.results.items():
        values = (m.ndcg_at_10, m.recall_at_10, m.recall_at_100, m.mrr_at_10)
        table.add_row(mode, *(f"{v:.3f}" for v in values), f"{report.seconds_per_query[mode]:.3f}")
    out.print(table)


@app.command("stats")
def stats_command(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Counts of papers, chunks and sources in the library."""
    stats = assistant().stats()
    if as_json:
        print(stats.model_dump_json(indent=2))
        return
    out.print(f"home: {stats.home}\nembedding model: {stats.embedding_model}", highlight=False)
    out.print(f"papers: {stats.papers}\nchunks: {stats.chunks}\nsources: {stats.sources}")
    for fmt, n in sorted(stats.papers_by_format.items()):
        out.print(f"  {fmt}: {n}")


@app.command("sources")
def sources_command(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False) -> None:
    """List the source files the library was built from, even when its store is damaged (from HOME/sources.json)."""
    from . import Assistant, StoreError

    try:
        records, problem = Assistant(home=CliState.home).sources()
    except StoreError as error:
        fail(f"{error} (and no readable list of sources was saved)")
    if problem:
        err.print(Text.assemble(("warning:", "yellow"), " ", printable(problem),
                                " — the files below are the sources as of the library's last completed change"),
                  highlight=False)
    for record in records:
        if as_json:
            print(json.dumps(record.__dict__, ensure_ascii=False))
        else:
            out.print(f"{printable(record.file)}\t{record.format}\t{record.papers} papers", highlight=False,
                      markup=False, soft_wrap=True)


@app.command("backup")
def backup_command(
    target: Annotated[Path, typer.Argument(help="A new (or empty) folder for the copy.")],
) -> None:
    """Copy the library to TARGET consistently (no ingest runs meanwhile). Restore: use TARGET as the home."""
    from . import StoreError

    lib = assistant()
    try:
        files = lib.backup(target)
    except StoreError as error:
        fail(str(error), EXIT_BAD_INPUT)
    out.print(f"backed up {printable(lib.settings.home)} to {printable(target)} ({len(files)} files); restore with "
              f"--home {printable(target)}, or by moving it into place of the home", highlight=False, markup=False)


@app.command("reindex")
def reindex_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Embed every stored paper again into the vector index (after HOME/chroma was lost or damaged: move it aside
    first). The papers and passages come from the catalog; no source file is read."""
    from . import StoreError

    lib = assistant()
    try:
        with progress_bars(disable=as_json and not err.is_terminal) as on_progress:
            report = lib.reindex(progress=on_progress)
    except StoreError as error:
        fail(str(error))
    if as_json:
        print(json.dumps(report.model_dump(), indent=2))
        return
    out.print(f"re-embedded {report.papers} papers ({report.chunks_embedded} passages) in {report.seconds} s"
              + (f"; {report.skipped} skipped (chunked at another size: ingest their sources again)"
                 if report.skipped else ""), highlight=False)


@app.command("clusters")
def clusters_command(
    n_clusters: Annotated[
        int | None, typer.Option("--clusters", "-n", min=1, help="Number of clusters (default: automatic).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The whole cluster map as JSON.")] = False,
) -> None:
    """The topic clusters of the library: id, size, keywords, representative papers."""
    lib = assistant()
    cluster_map = lib.clusters(n_clusters or "auto")
    if as_json:
        print(cluster_map.model_dump_json(indent=2))
        return
    # the representatives' records only: reading every paper for these titles took 4.7 GB and a minute at 1M
    papers = lib.papers_by_id([p for c in cluster_map.groups() for p in c.representative_ids[:3]])
    out.print(
        f"{cluster_map.paper_count} papers, {len(cluster_map.topics)} clusters ({cluster_map.method})", highlight=False
    )
    for cluster in cluster_map.groups():
        out.print(f"\n[bold]{cluster.cluster_id}[/] {cluster.label} — {len(cluster.paper_ids)} papers", highlight=False)
        if cluster.keywords:
            out.print(f"  keywords: {', '.join(cluster.keywords)}", highlight=False)
        for paper_id in (p for p in cluster.representative_ids[:3] if p in papers):
            out.print(f"  · {papers[paper_id].title}", highlight=False, markup=False)


@app.command("summarize")
def summarize_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report.")] = Path("litassist-report"),
    n_clusters: Annotated[
        int | None, typer.Option("--clusters", "-n", min=1, help="Number of clusters (default: automatic).")
    ] = None,
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: md, json, html.")] = "md,json,html",
    force: Annotated[bool, typer.Option("--force", help="Write every summary again, even if cached.")] = False,
) -> None:
    """Cluster the library and write a report: overview, topic map, cited summary per cluster, BibTeX."""
    from . import FORMATS, error_text, model_errors

    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        fail(f"--format: unknown format {unknown[0] if unknown else '(none)'!r}; choose from {', '.join(FORMATS)}",
             EXIT_BAD_INPUT)
    lib = assistant()
    if lib.paper_count() == 0:
        fail("the library is empty: run `litassist ingest --demo` or ingest your own files first")
    try:
        with progress_bars() as on_progress:
            run_report = lib.summarize(out_dir, n_clusters or "auto", chosen, force, on_progress)
    except model_errors() as error:  # one line; the summaries written so far are kept
        fail(f"{error_text(error, lib.settings)} (summaries written so far are cached; run again to resume)")
    out.print(f"{run_report.clusters} clusters: {run_report.summarized} summarized, {run_report.cached} from the cache",
              highlight=False)
    for file in run_report.files:
        out.print(f"  {file}", highlight=False)


@app.command("ui")
def ui_command(
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8501,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; 127.0.0.1 keeps it on this machine.")
    ] = "127.0.0.1",
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="Another name the app may be reached by (its Host header), e.g. this machine's name "
            "on your network; localhost, 127.0.0.1, ::1 and --host are always allowed.",
        ),
    ] = None,
) -> None:
    """Open the browser app (Streamlit): chat with sources, the topic map, and the library."""
    from importlib import resources

    app_file = resources.files("assistant.ui").joinpath("app.py")
    command = [sys.executable, "-m", "streamlit", "run", str(app_file), "--server.address", host,
               "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    # Only these Host names get the app's connection: a page elsewhere whose name resolves here (DNS rebinding)
    # gets nothing. ui/.streamlit/config.toml holds the same loopback list for plain `streamlit run`.
    names = dict.fromkeys(["localhost", "127.0.0.1", "::1", *([host] if host not in ("0.0.0.0", "::") else []),
                           *(allow_host or [])])
    command += [f"--server.allowedHosts={name}" for name in names]
    if CliState.home:
        command += ["--", "--home", str(CliState.home)]
    out.print(f"litassist UI on http://{host}:{port} (Ctrl-C stops it)", highlight=False)
    raise typer.Exit(run_forwarding_signals(command))


def run_forwarding_signals(command: list[str]) -> int:
    """Run a child process; SIGTERM and SIGINT sent to us go on to it, and we exit when it does, with its status."""
    import signal
    import subprocess

    child = subprocess.Popen(command)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                status = child.wait()
                return 128 - status if status < 0 else status  # killed by signal N: 128 + N, as a shell says
            except KeyboardInterrupt:  # a handler set elsewhere may still raise it: keep waiting for the child
                forward(signal.SIGINT, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run() -> None:
    """Console-script entry point; turns expected failures into one line instead of a traceback."""
    try:
        app()
    except FileNotFoundError as error:
        _error_line(error)
        sys.exit(EXIT_BAD_INPUT)
    except BaseException as error:  # a Rust panic inside Chroma is a BaseException
        if isinstance(error, (SystemExit, KeyboardInterrupt, GeneratorExit)):
            raise
        from . import StoreError  # imported on this path only: `--help` stays light

        if isinstance(error, StoreError):
            _error_line(error)
            sys.exit(1)
        from . import failure_text, load_settings

        line = failure_text(error, load_settings(CliState.home))
        if line is None:
            raise
        _error_line(line)
        sys.exit(1)


def _error_line(error: object) -> None:
    err.print(Text.assemble(("error:", "bold red"), " ", printable(error)), highlight=False)


@eval_app.command("answers")
def eval_answers_command(
    folder: Annotated[Path, typer.Argument(help="SciFact folder: corpus.jsonl and claims_<split>.jsonl.")],
    split: Annotated[str, typer.Option("--split", help="claims_<split>.jsonl to use.")] = "dev",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N claims.")] = None,
    eval_home: Annotated[Path | None, typer.Option("--eval-home", help="Where the corpus is indexed.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Citation recall and precision of answers to SciFact claims, with the configured provider."""
    from . import Assistant, error_text, evaluate_answers
    from . import eval_home as default_eval_home

    lib = Assistant(home=eval_home or default_eval_home(folder))
    try:
        report = evaluate_answers(lib, folder, split, limit)
    except FileNotFoundError as error:
        fail(str(error), EXIT_BAD_INPUT)
    except Exception as error:  # noqa: BLE001 - a model failure is one line
        fail(error_text(error, lib.settings))
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    model = f" ({report.model})" if report.model else ""
    out.print(
        f"{report.dataset} claims_{split}: {report.claims} claims, {report.claims_with_evidence} with gold evidence"
    )
    out.print(f"provider {report.provider}{model}: citation recall {report.citation_recall:.3f}, "
              f"citation precision {report.citation_precision:.3f}, {report.mean_citations:.2f} citations/answer, "
              f"{report.abstained} abstained, {report.seconds_per_answer:.2f} s/answer", highlight=False)
