"""`litassist` on the command line: a thin layer over the Assistant facade."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

if TYPE_CHECKING:
    from .api import Assistant
    from .index import IngestReport

app = typer.Typer(help="litassist: a literature assistant grounded in your papers.", no_args_is_help=True)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # errors stay on one line, whatever the width
EXIT_BAD_INPUT = 2


class CliState:
    home: Path | None = None


@app.callback()
def main(
    home: Annotated[
        Optional[Path], typer.Option("--home", help="Library directory (else LITASSIST_HOME, else a per-user default).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    from rich.logging import RichHandler

    CliState.home = home
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = RichHandler(console=err, show_path=False, show_time=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("litassist").setLevel(level)


def assistant() -> Assistant:
    from .api import Assistant
    from .index import StoreError

    try:
        instance = Assistant(home=CliState.home)
        instance.store  # open now, so a store error is reported before any work
        return instance
    except StoreError as error:
        fail(str(error))


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
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
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or directories (searched recursively).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Ingest the bundled seed corpus.")] = False,
    csv_map: Annotated[
        Optional[list[str]], typer.Option("--csv-map", help="CSV column mapping, e.g. abstract='Summary Text'.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-parse files even if unchanged.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Parse, chunk, embed and store papers. Exit status 2 if any file failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .api import DEMO_CORPUS

    targets = list(paths or []) + ([DEMO_CORPUS] if demo else [])
    if not targets:
        fail("give files or directories to ingest, or --demo for the bundled seed corpus", EXIT_BAD_INPUT)
    missing = [str(p) for p in targets if not p.exists()]
    if missing:
        fail(f"{missing[0]}: no such file or directory", EXIT_BAD_INPUT)
    mapping = _parse_mapping(csv_map or [])
    lib = assistant()
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, disable=as_json and not err.is_terminal) as bars:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task({"parse": "parsing", "embed": "embedding"}[stage], total=total)
            bars.update(tasks[stage], completed=done, total=total)

        report = lib.ingest(targets, csv_mapping=mapping or None, force=force, progress=on_progress)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        _print_report(report)
    if report.files_failed:
        raise typer.Exit(EXIT_BAD_INPUT)


def _print_report(report: IngestReport) -> None:
    from rich.table import Table

    for failure in report.files_failed:
        err.print(f"[red]failed[/] {failure.file}: {failure.reason}", highlight=False)
    for skip in report.skipped:
        err.print(f"[yellow]skipped[/] {skip.file} entry {skip.position}: {skip.reason}", highlight=False)
    table = Table(title="ingest report", show_header=False)
    rows = [
        ("files", f"{report.files} ({report.files_unchanged} unchanged, {len(report.files_failed)} failed)"),
        *((f"  {fmt}", f"{n} papers") for fmt, n in sorted(report.papers_by_format.items())),
        ("new papers", str(report.new)),
        ("updated", str(report.updated)),
        ("unchanged", str(report.unchanged)),
        ("merged duplicates", str(report.merged_duplicates)),
        ("removed", str(report.removed)),
        ("skipped entries", str(len(report.skipped))),
        ("chunks embedded", str(report.chunks_embedded)),
        ("time", f"{report.seconds:.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)


@app.command("papers")
def papers_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List every paper in the library."""
    for paper in assistant().papers():
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
                "sources": [s.model_dump() for s in paper.sources],
            }
            print(json.dumps(record, ensure_ascii=False))
        else:
            year = paper.year or paper.date or "n.d."
            out.print(f"[cyan]{paper.paper_id}[/]  {paper.title}  [dim]({year})[/]", highlight=False)


@app.command("search")
def search_command(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", min=1, help="Number of papers to return.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list of hits, best first.")] = False,
) -> None:
    """Find the papers that best match a query."""
    hits = assistant().search(query, k=k)
    if as_json:
        print(json.dumps([hit.as_json() for hit in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        err.print("no results: the library is empty (run `litassist ingest --demo` to load the seed corpus)")
    for rank, hit in enumerate(hits, start=1):
        out.print(f"[bold]{rank}. {hit.title}[/]  [dim]{hit.paper_id}  score {hit.score:.3f}[/]", highlight=False)
        out.print(f"   {hit.text[:300]}{'…' if len(hit.text) > 300 else ''}", highlight=False)


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


def run() -> None:
    """Console-script entry point; turns expected failures into one line instead of a traceback."""
    try:
        app()
    except FileNotFoundError as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(EXIT_BAD_INPUT)
