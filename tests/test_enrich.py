"""`litassist enrich` against a local HTTP server that replays OpenAlex, Crossref and the arXiv API (answers in
tests/fixtures/enrich, in the shapes the services document). No test contacts a real host."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from typer.testing import CliRunner

from assistant import Assistant
from assistant import enrich as enrich_module
from assistant.cli import app
from assistant.corpus.apis import abstract_from_inverted_index
from assistant.enrich import retry_after_seconds
from assistant.enrich_cache import CACHE_FILE, MIGRATIONS, migrate

FIXTURES = Path(__file__).parent / "fixtures" / "enrich"
EMAIL = "librarian@example.org"
runner = CliRunner()

BIB = """
@article{one, title = {Sparse Training Dynamics of Wide Networks}, doi = {10.5555/enrich.one}}
@article{two, title = {Retrieval-Augmented Question Answering over Scientific Abstracts}, doi = {10.5555/enrich.two},
  year = {2022}}
@misc{three, title = {Multi-Agent Reinforcement Learning at Scale}, eprint = {2301.01234}, archivePrefix = {arXiv}}
@article{four, title = {Graph Attention for Citation Networks}}
@article{five, title = {Nothing Anyone Has Heard Of}, doi = {10.5555/enrich.missing}}
@article{six, title = {A Paper With Its Own Abstract}, abstract = {This abstract came with the file and stays.}}
"""


@dataclass
class Replay:
    """What the fake services answer (path + sorted query -> file), what they were asked, and scripted failures."""

    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)  # path, query, headers
    times: list[float] = field(default_factory=list)
    scripted: dict[str, list[tuple[int, dict[str, str], str]]] = field(default_factory=dict)
    stall: set[str] = field(default_factory=set)  # paths whose request hangs until `release` is set
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    routes: dict[str, tuple[str, str]] = field(default_factory=lambda: {
        "/openalex/works/doi:10.5555/enrich.one": ("openalex-work-one.json", "application/json"),
        "/openalex/works/doi:10.5555/enrich.two": ("openalex-work-two.json", "application/json"),
        "/openalex/works?filter=title.search:graph attention for citation networks&per-page=5":
            ("openalex-search.json", "application/json"),
        "/crossref/works/10.5555/enrich.two": ("crossref-work.json", "application/json"),
        "/arxiv/api/query?id_list=2301.01234": ("arxiv-query.xml", "application/atom+xml"),
    })

    def answer(self, target: str) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items() if k != "mailto"}
        key = unquote(parts.path) + ("?" + "&".join(f"{k}={v}" for k, v in sorted(query.items())) if query else "")
        if self.scripted.get(key):
            return self.scripted[key].pop(0)
        if key in self.routes:
            name, kind = self.routes[key]
            return 200, {"Content-Type": kind}, (FIXTURES / name).read_text(encoding="utf-8")
        if key.startswith("/crossref/"):
            return 404, {"Content-Type": "text/plain"}, "Resource not found."
        return 404, {"Content-Type": "application/json"}, json.dumps({"error": "404", "message": "not found"})


@pytest.fixture()
def replay() -> Iterator[tuple[Replay, str]]:
    """A local server replaying the three services under /openalex, /crossref and /arxiv: (replay, base URL)."""
    state = Replay()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            state.requests.append((unquote(parts.path), {k: v[0] for k, v in parse_qs(parts.query).items()},
                                   dict(self.headers)))
            state.times.append(time.monotonic())
            if unquote(parts.path) in state.stall:
                state.stalled.set()
                state.release.wait(60)
            status, headers, body = state.answer(self.path)
            data = body.encode("utf-8")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """No waiting between requests (arXiv's 3 s) or before retries in tests; the waits themselves are tested."""
    monkeypatch.setattr(enrich_module, "MIN_INTERVAL", dict.fromkeys(enrich_module.MIN_INTERVAL, 0.0))
    monkeypatch.setattr(enrich_module, "BACKOFF", 0.05)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the socket is closed


def point_at(monkeypatch: pytest.MonkeyPatch, base: str, **overrides: str) -> None:
    urls = {"OPENALEX_URL": f"{base}/openalex", "CROSSREF_URL": f"{base}/crossref", "ARXIV_API_URL": f"{base}/arxiv"}
    for name, url in {**urls, **overrides}.items():
        monkeypatch.setenv(f"LITASSIST_{name}", url)
    monkeypatch.setenv("LITASSIST_CONTACT_EMAIL", EMAIL)


def library(tmp_path: Path) -> tuple[Path, Path]:
    """(home, bib) with the .bib above ingested: five papers without an abstract, one with."""
    bib = tmp_path / "library.bib"
    bib.write_text(BIB, encoding="utf-8")
    home = tmp_path / "home"
    report = Assistant(home=home).ingest([bib])
    assert report.new == 6 and not report.files_failed
    return home, bib


def by_title(home: Path) -> dict[str, object]:
    return {paper.title: paper for paper in Assistant(home=home).papers()}


def cli_enrich(home: Path, *args: str) -> object:
    return runner.invoke(app, ["--home", str(home), "enrich", "--json", *args])


def test_enrich_fills_abstracts_and_metadata_from_the_three_services(
    tmp_path: Path, replay: tuple[Replay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base = replay
    point_at(monkeypatch, base)
    home, bib = library(tmp_path)
    assert server.requests == [], "a plain ingest sends no request"
    assert not (home / CACHE_FILE).exists(), "nor creates the enrich cache"

    result = cli_enrich(home)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["lacking"], report["filled"], report["not_found"], report["failed"]) == (5, 4, 1, 0)
    assert report["from_cache"] == 0 and report["requests"] == len(server.requests)

    papers = by_title(home)
    one = papers["Sparse Training Dynamics of Wide Networks"]
    assert one.abstract == ("We study how sparse training behaves in wide networks and show that pruned sparse "
                            "subnetworks converge & generalize.")  # word order rebuilt, the entity unescaped
    assert (one.authors, one.year, one.date, one.venue, one.doi) == (
        ["Ana Lima", "Kenji Sato"], 2021, "2021-06-14", "Journal of Machine Learning Research", "10.5555/enrich.one")
    assert one.url == "https://doi.org/10.5555/enrich.one"

    two = papers["Retrieval-Augmented Question Answering over Scientific Abstracts"]
    assert two.abstract == ("We answer questions over scientific abstracts by retrieving passages first & citing "
                            "them. Citations are checked against the retrieved text.")  # JATS stripped, no heading
    assert "<" not in two.abstract and "jats" not in two.abstract
    assert two.year == 2022, "the file's own year is kept; only what is missing is filled"
    assert (two.authors, two.date, two.venue) == (["Maria Garcia"], "2023-02-01", "Information Processing & Management")

    three = papers["Multi-Agent Reinforcement Learning at Scale"]
    assert three.abstract.startswith("We scale multi-agent reinforcement learning to thousands of agents with mean")
    assert "\n" not in three.abstract
    assert (three.authors, three.year, three.date, three.venue, three.arxiv_id) == (
        ["Olu Adeyemi", "Priya Nair"], 2023, "2023-01-04", "cs.MA", "2301.01234")

    four = papers["Graph Attention for Citation Networks"]  # by exact title: the survey with a longer title is not it
    assert four.abstract == "Attention over citation graphs improves node classification on three benchmarks."
    assert (four.authors, four.year, four.arxiv_id, four.doi) == (
        ["Li Wei", "Sara Cohen"], 2019, "1905.04321", "10.48550/arxiv.1905.04321")
    assert four.venue == "arXiv (Cornell University)"

    assert not papers["Nothing Anyone Has Heard Of"].has_abstract
    assert papers["A Paper With Its Own Abstract"].abstract == "This abstract came with the file and stays."
    assert all(s.file == str(bib.resolve()) for p in papers.values() for s in p.sources), "no extra sources"

    asked = [path for path, _, _ in server.requests]
    assert "/crossref/works/10.5555/enrich.one" not in asked, "Crossref only for what OpenAlex lacks"
    assert not any(path.startswith("/arxiv") and "1905.04321" in str(q) for path, q, _ in server.requests), \
        "four got its abstract from OpenAlex: no arXiv request"
    for path, query, headers in server.requests:
        if path.startswith("/openalex"):
            assert query["mailto"] == EMAIL
        assert EMAIL in headers["User-Agent"] and headers["User-Agent"].startswith("litassist/")

    hits = Assistant(home=home).search("pruned subnetworks converge", k=1)
    assert hits[0].title == "Sparse Training Dynamics of Wide Networks", "the fetched abstract is embedded"


def test_a_rerun_is_answered_by_the_cache(
    tmp_path: Path, replay: tuple[Replay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base = replay
    point_at(monkeypatch, base)
    home, _ = library(tmp_path)
    assert cli_enrich(home).exit_code == 0
    sent = len(server.requests)
    again = json.loads(cli_enrich(home).stdout)
    assert len(server.requests) == sent, "the server sees no second request"
    assert (again["lacking"], again["not_found"], again["from_cache"], again["requests"]) == (1, 1, 1, 0)


def test_429_is_retried_after_the_time_retry_after_asks(
    tmp_path: Path, replay: tuple[Replay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base = replay
    point_at(monkeypatch, base)
    home, bib = library(tmp_path)
    path = "/openalex/works/doi:10.5555/enrich.one"
    server.scripted[path] = [(429, {"Retry-After": "1"}, '{"error": "rate limited"}'),
                             (503, {}, "busy")]  # then backoff (no Retry-After), then the answer
    report = Assistant(home=home).enrich([bib])
    times = [t for (p, _, _), t in zip(server.requests, server.times) if p == path]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.95, "waited as Retry-After said"
    assert report.failed == 0 and report.filled == 4
    assert by_title(home)["Sparse Training Dynamics of Wide Networks"].has_abstract


def test_a_service_that_keeps_failing_fails_the_paper_not_the_run(
    tmp_path: Path, replay: tuple[Replay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base = replay
    point_at(monkeypatch, base)
    home, _ = library(tmp_path)
    server.scripted["/openalex/works/doi:10.5555/enrich.one"] = [(500, {}, "oops")] * (enrich_module.MAX_RETRIES + 1)
    result = cli_enrich(home)
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and report["failed"] == 1 and report["filled"] == 3
    assert report["failures"] == ["doi:10.5555/enrich.one: OpenAlex answered HTTP 500"]
    assert json.loads(cli_enrich(home).stdout)["filled"] == 1, "not cached: the next run asks again and fills it"


def test_no_network_is_one_line_and_a_nonzero_exit(
    tmp_path: Path, replay: tuple[Replay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base = replay
    home, _ = library(tmp_path)
    dead = f"http://127.0.0.1:{closed_port()}"
    point_at(monkeypatch, base, OPENALEX_URL=dead, CROSSREF_URL=dead, ARXIV_API_URL=dead)
    started = time.monotonic()
    result = runner.invoke(app, ["--home", str(home), "enrich"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach"), result.stderr
    assert dead in lines[0] and "check the network" in lines[0]
    assert time.monotonic() - started < 10, "stopped at the first refused connection, no retries per paper"
    assert not any(p.has_abstract for p in Assistant(home=home).papers() if p.title != "A Paper With Its Own Abstract")


def test_a_run_stopped_midway_keeps_what_it_did_and_the_next_run_continues(
    tmp_path: Path, replay: tuple[Replay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Papers go in id order (arxiv:…, doi:…, t:…): the arXiv paper is done before Crossref, unreachable, stops
    the run at the first DOI that OpenAlex does not know."""
    server, base = replay
    home, _ = library(tmp_path)
    point_at(monkeypatch, base, CROSSREF_URL=f"http://127.0.0.1:{closed_port()}")
    result = cli_enrich(home)
    assert result.exit_code == 1 and "cannot reach Crossref" in result.stderr
    assert by_title(home)["Multi-Agent Reinforcement Learning at Scale"].has_abstract, "stored before the stop"
    asked = [path for path, _, _ in server.requests]

    point_at(monkeypatch, base)
    report = json.loads(cli_enrich(home).stdout)
    assert report["lacking"] == 4 and report["filled"] == 3
    repeated = [path for path, _, _ in server.requests[len(asked):] if path in asked]
    assert repeated == [], "what the stopped run fetched comes from the cache"
    assert sum(p.has_abstract for p in by_title(home).values()) == 5


def test_a_killed_run_keeps_what_it_fetched_and_the_next_run_continues(
    tmp_path: Path, replay: tuple[Replay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL while the last paper's request hangs: nothing was stored yet (stores come every STORE_SECONDS),
    but every answer was cached, so the next run asks only for what the killed one had not got."""
    server, base = replay
    point_at(monkeypatch, base)
    home, _ = library(tmp_path)
    server.stall.add("/openalex/works")  # the title search, asked for the last paper (t:…)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "--home", str(home), "enrich"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert server.stalled.wait(120), "the run never reached the last paper"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    asked = [path for path, _, _ in server.requests]
    assert "/openalex/works/doi:10.5555/enrich.one" in asked
    server.stall.clear()
    server.release.set()

    report = json.loads(cli_enrich(home).stdout)
    assert (report["lacking"], report["filled"], report["from_cache"]) == (5, 4, 4)
    assert [path for path, _, _ in server.requests[len(asked):]] == ["/openalex/works"]
    assert sum(p.has_abstract for p in by_title(home).values()) == 5


def test_fetched_abstracts_survive_reingest_of_the_unchanged_and_the_changed_file(
    tmp_path: Path, replay: tuple[Replay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base = replay
    point_at(monkeypatch, base)
    home, bib = library(tmp_path)
    assert cli_enrich(home).exit_code == 0
    filled = by_title(home)
    sent = len(server.requests)
    lib = Assistant(home=home)

    assert lib.ingest([bib]).files_unchanged == 1
    forced = lib.ingest([bib], force=True)
    assert (forced.updated, forced.chunks_embedded) == (0, 0), "re-parsed, refilled: nothing to embed again"

    edited = BIB.replace("@article{five, title = {Nothing Anyone Has Heard Of}, doi = {10.5555/enrich.missing}}\n",
                         "")  # an entry deleted from the file
    edited = edited.replace("doi = {10.5555/enrich.one}}", "doi = {10.5555/enrich.one}, year = {2020}}")
    edited += "@article{seven, title = {A New Entry}, abstract = {Added to the file after the enrichment.}}\n"
    bib.write_text(edited, encoding="utf-8")
    report = lib.ingest([bib])
    assert not report.files_failed and report.new == 1 and report.removed == 1
    assert report.updated == 1, "only the entry the user edited is embedded again"
    after = by_title(home)
    assert "Nothing Anyone Has Heard Of" not in after, "a paper deleted from its file goes, enriched or not"
    for title in ("Retrieval-Augmented Question Answering over Scientific Abstracts",
                  "Multi-Agent Reinforcement Learning at Scale", "Graph Attention for Citation Networks"):
        assert after[title] == filled[title]
    one = after["Sparse Training Dynamics of Wide Networks"]
    assert one.year == 2020, "the file's edit wins over the fetched year"
    assert one.abstract == filled["Sparse Training Dynamics of Wide Networks"].abstract and one.venue
    assert len(server.requests) == sent, "ingest never sends a request"


def test_ingest_fetch_abstracts_enriches_the_files_it_ingested(
    tmp_path: Path, replay: tuple[Replay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base = replay
    point_at(monkeypatch, base)
    bib = tmp_path / "library.bib"
    bib.write_text(BIB, encoding="utf-8")
    other = tmp_path / "other.bib"
    other.write_text("@article{x, title = {Some Unrelated Paper}, doi = {10.5555/enrich.other}}\n", encoding="utf-8")
    home = tmp_path / "home"
    assert runner.invoke(app, ["--home", str(home), "ingest", str(other)]).exit_code == 0
    result = runner.invoke(app, ["--home", str(home), "ingest", "--json", "--fetch-abstracts", str(bib)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["new"] == 6 and (report["enrich"]["lacking"], report["enrich"]["filled"]) == (5, 4)
    assert not any("enrich.other" in path for path, _, _ in server.requests), "only the papers of the files given"


def test_waits_between_requests_to_one_service(
    tmp_path: Path, replay: tuple[Replay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base = replay
    point_at(monkeypatch, base)
    home, bib = library(tmp_path)
    monkeypatch.setattr(enrich_module, "MIN_INTERVAL", {"openalex": 0.3, "crossref": 0.0, "arxiv": 0.0})
    Assistant(home=home).enrich([bib])
    times = [t for (path, _, _), t in zip(server.requests, server.times) if path.startswith("/openalex")]
    assert len(times) >= 3 and all(b - a >= 0.28 for a, b in itertools.pairwise(times))


def test_retry_after_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    assert 55 < retry_after_seconds(format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)) <= 60
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_abstract_from_inverted_index_ignores_what_is_not_an_index() -> None:
    assert abstract_from_inverted_index({"world": [1], "hello": [0], "bad": "x", "also": [2.5]}) == "hello world"
    assert abstract_from_inverted_index(None) == "" and abstract_from_inverted_index([1]) == ""


def test_the_cache_file_has_a_schema_version_and_migrates_once(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / CACHE_FILE
    for _ in range(2):
        db = sqlite3.connect(path, isolation_level=None)
        migrate(db)
        names = [name for (name,) in db.execute("SELECT name FROM _migrations")]
        db.close()
        assert names == [step.__name__ for step in MIGRATIONS] == ["m001_responses_and_filled"]


def test_a_damaged_cache_costs_its_fills_not_the_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "refs.bib").write_text("@article{k, title={A Title Only}, year={2020}}\n", encoding="utf-8")
    home.mkdir()
    (home / CACHE_FILE).write_bytes(b"SQLite format 3\x00" + b"\x13" * 4096)  # a header, then garbage
    report = Assistant(home=home).ingest([tmp_path / "refs.bib"])
    assert (report.new, report.files_failed) == (1, [])
    assert any("cannot be read" in warning and CACHE_FILE in warning for warning in report.warnings)
