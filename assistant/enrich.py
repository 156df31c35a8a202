"""Abstracts and metadata from the web, only when the user asks (`litassist enrich`, `ingest --fetch-abstracts`).

A paper stored without an abstract (a .bib of citations, a Zotero library) is looked up by DOI (OpenAlex, then
Crossref for the abstract OpenAlex lacks), by arXiv id (the arXiv API), or by its exact title (an OpenAlex
search whose result must have the same normalized title). What is found fills what the paper lacks: the abstract,
year and date, venue, DOI, arXiv id, URL, authors, and a title that was only derived; nothing the paper has is
replaced. Fetched text is data: it goes through the parsers' own cleaning (`make_paper`), never as markup.

Politeness: one request at a time, at most `MIN_INTERVAL` apart per service (OpenAlex allows 10/s, Crossref's
polite pool ~50/s, arXiv asks for one every 3 s), the contact e-mail (LITASSIST_CONTACT_EMAIL) sent as OpenAlex's
`mailto=` and in the User-Agent as Crossref asks, retries with exponential backoff on 429/5xx and dropped
connections honouring `Retry-After`, and a timeout. Every answer (found or not found) is kept in
HOME/enrich.sqlite3, so a re-run costs no request. What was found is stored every `STORE_SECONDS`: a run that is
killed keeps what it stored and cached, and the next run continues. A service that cannot be reached on the
first try stops the run at once with one line, instead of trying each paper in turn.

Re-ingest: what was filled in is also recorded in HOME/enrich.sqlite3 under the paper's own DOI, arXiv id and
title, and `ingest` re-applies it (`refill`) to the papers it parses, offline. So a re-ingested file, changed or
not, keeps the fetched abstract, and the paper is not even embedded again. The enrichment is deliberately not an
extra source of the paper (`SourceRef("enrich:openalex")`): a source keeps a paper alive, so a paper the user
deleted from their file would stay in the library, and the stored version would win over the user's later edits
to the entry (an ingest merges a file into a paper that other sources hold, filling only what is missing).
"""

from __future__ import annotations

import email.utils
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, Field

from .config import Settings
from .corpus import Paper, SourceRef, merge_into
from .corpus.apis import openalex_paper
from .corpus.exports import _csl_item, _load_json, parse_arxiv_atom
from .corpus.records import normalize_title
from .enrich_cache import CACHE_FILE, Cache, fill, lookup_keys
from .errors import EnrichError, ParseError
from .index.embedders import Embedder
from .index.ingest import ProgressCallback, update_papers
from .index.store import Store

log = logging.getLogger("litassist.enrich")

SERVICES = {"openalex": "OpenAlex", "crossref": "Crossref", "arxiv": "the arXiv API"}
MIN_INTERVAL = {"openalex": 0.1, "crossref": 0.1, "arxiv": 3.0}  # seconds between two requests to one service
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRIES = 4
BACKOFF = 1.0  # seconds before the first retry; doubled each time
MAX_WAIT = 120.0  # a Retry-After longer than this is cut to it
TIMEOUT = 30.0
STORE_SECONDS = 30.0  # what was found is written to the library this often (each write re-embeds and commits)...
STORE_MAX_PAPERS = 200  # ...or after this many papers, whichever comes first
MAX_FAILURE_LINES = 20
TITLE_CANDIDATES = 5
USER_AGENT = "litassist/0.1"
T = TypeVar("T")


class LookupFailed(Exception):
    """One paper's lookup failed (a service kept answering 5xx, or answered something unreadable)."""


class EnrichReport(BaseModel):
    """What one `enrich` run did."""

    lacking: int = Field(default=0, description="papers without an abstract that were looked up")
    filled: int = Field(default=0, description="papers that got an abstract")
    metadata_filled: int = Field(default=0, description="papers that got other fields (year, venue, DOI, ...)")
    not_found: int = Field(default=0, description="no service had an abstract for them")
    failed: int = 0
    from_cache: int = Field(default=0, description="looked up without a request: answered by the cache")
    requests: int = Field(default=0, description="HTTP requests sent")
    failures: list[str] = Field(default_factory=list, description=f"the first {MAX_FAILURE_LINES}, one line each")
    contact_email: bool = Field(default=False, description="whether LITASSIST_CONTACT_EMAIL was sent")
    seconds: float = 0.0

    def fail(self, paper: Paper, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_FAILURE_LINES:
            self.failures.append(f"{paper.paper_id}: {reason}")
        log.warning("%s: %s", paper.paper_id, reason)


# ---------------------------------------------------------------- HTTP: polite, cached, retried


class Client:
    """GET requests to the three services: cached, spaced per service, retried with backoff."""

    def __init__(self, settings: Settings, cache: Cache):
        self.bases = {"openalex": settings.openalex_url, "crossref": settings.crossref_url,
                      "arxiv": settings.arxiv_api_url}
        self.email = settings.contact_email
        agent = f"{USER_AGENT} (mailto:{self.email})" if self.email else USER_AGENT
        self.http = httpx.Client(timeout=TIMEOUT, headers={"User-Agent": agent}, follow_redirects=True)
        self.cache = cache
        self.requests = 0
        self._last: dict[str, float] = {}
        self._reached: set[str] = set()

    def close(self) -> None:
        self.http.close()

    def get(self, service: str, path: str, params: dict[str, str], read: Callable[[int, str], T]) -> T:
        """`read(status, body)` of the cached answer, else of a fresh one (cached only if `read` accepts it)."""
        key = f"{service} {path}?{'&'.join(f'{k}={v}' for k, v in sorted(params.items()))}"
        cached = self.cache.response(key)
        if cached is not None:
            return read(*cached)
        status, body = self._fetch(service, path, params)
        result = read(status, body)
        self.cache.keep_response(key, status, body)
        return result

    def _fetch(self, service: str, path: str, params: dict[str, str]) -> tuple[int, str]:
        url = self.bases[service].rstrip("/") + path
        if service == "openalex" and self.email:
            params = {**params, "mailto": self.email}
        for attempt in range(MAX_RETRIES + 1):
            self._wait_turn(service)
            self.requests += 1
            try:
                response = self.http.get(url, params=params)
            except httpx.RequestError as error:  # refused, DNS, timeout, a dropped connection, a bad URL
                reason = " ".join(str(error).split()) or type(error).__name__
                if service not in self._reached:
                    raise EnrichError(f"cannot reach {SERVICES[service]} at {self.bases[service]} ({reason}): "
                                      "check the network connection, or the proxy; nothing was changed") from None
                if attempt == MAX_RETRIES:
                    raise EnrichError(f"lost the connection to {SERVICES[service]} ({reason}) after {attempt + 1} "
                                      "tries: what was fetched so far is kept; run `litassist enrich` again later to "
                                      "continue") from None
                self._back_off(service, attempt, None, reason)
                continue
            self._reached.add(service)
            if response.status_code in RETRY_STATUSES and attempt < MAX_RETRIES:
                self._back_off(service, attempt, response.headers.get("Retry-After"), f"HTTP {response.status_code}")
                continue
            return response.status_code, response.text
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _wait_turn(self, service: str) -> None:
        wait = self._last.get(service, -1e9) + MIN_INTERVAL[service] - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last[service] = time.monotonic()

    def _back_off(self, service: str, attempt: int, retry_after: str | None, reason: str) -> None:
        asked = retry_after_seconds(retry_after)
        wait = min(BACKOFF * 2**attempt if asked is None else asked, MAX_WAIT)
        log.info("%s: %s; trying again in %.1f s", SERVICES[service], reason, wait)
        time.sleep(wait)


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds ("120", or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when.tzinfo else None


# ---------------------------------------------------------------- the services' answers -> Paper records


def _source(service: str) -> SourceRef:
    return SourceRef(file=f"enrich:{service}", format=service, position=1)


def _json_body(service: str, status: int, body: str) -> Any:
    """The JSON of a 200 answer; None for "not found" (404); LookupFailed for anything else."""
    if status == 404:
        return None
    if status != 200:
        raise LookupFailed(f"{SERVICES[service]} answered HTTP {status}")
    try:
        return _load_json(body)
    except (ParseError, ValueError) as error:
        raise LookupFailed(f"{SERVICES[service]} answered something that is not JSON ({error})") from None


def openalex_work(work: object) -> Paper | None:
    """An OpenAlex Work object as a Paper record (None when it is not one), mapped by the OpenAlex reader."""
    paper = openalex_paper(work, _source("openalex")) if isinstance(work, dict) else None
    return paper if isinstance(paper, Paper) else None


def crossref_work(message: object) -> Paper | None:
    """A Crossref work (`message` of /works/{doi}): its JSON is citeproc's, read by the CSL-JSON parser.
    The abstract is JATS XML; its tags go, and so does the "Abstract" heading a <jats:title> leaves."""
    if not isinstance(message, dict):
        return None
    paper = _csl_item(message, _source("crossref"))
    if not isinstance(paper, Paper):
        return None
    words = paper.abstract.split(maxsplit=1)
    if len(words) == 2 and words[0].rstrip(".:").lower() == "abstract":
        paper = paper.model_copy(update={"abstract": words[1]})
    return paper


class Lookups:
    """One paper's lookups, in the order that costs the fewest requests for the most abstracts."""

    def __init__(self, client: Client):
        self.client = client

    def openalex_by_doi(self, doi: str) -> Paper | None:
        return self.client.get("openalex", f"/works/doi:{quote(doi, safe='/')}", {},
                               lambda status, body: openalex_work(_json_body("openalex", status, body)))

    def openalex_by_title(self, title: str) -> Paper | None:
        """The first result whose normalized title is the paper's: a search alone would give a similar paper."""
        wanted = normalize_title(title)
        if not wanted:  # a title in a script the normalized form does not keep: no exact match to ask for
            return None

        def read(status: int, body: str) -> Paper | None:
            answer = _json_body("openalex", status, body)
            results = answer.get("results") if isinstance(answer, dict) else None
            if answer is not None and not isinstance(results, list):
                raise LookupFailed("OpenAlex answered a search without a results list")
            works = (openalex_work(work) for work in results or [])
            return next((w for w in works if w is not None and normalize_title(w.title) == wanted), None)

        return self.client.get("openalex", "/works",
                               {"filter": f"title.search:{wanted}", "per-page": str(TITLE_CANDIDATES)}, read)

    def crossref(self, doi: str) -> Paper | None:
        def read(status: int, body: str) -> Paper | None:
            answer = _json_body("crossref", status, body)
            if answer is None:
                return None
            return crossref_work(answer.get("message") if isinstance(answer, dict) else None)

        return self.client.get("crossref", f"/works/{quote(doi, safe='/')}", {}, read)

    def arxiv(self, arxiv_id: str) -> Paper | None:
        def read(status: int, body: str) -> Paper | None:
            if status == 400:  # a malformed id: the API says so, with HTTP 400 and an error entry
                return None
            if status != 200:
                raise LookupFailed(f"the arXiv API answered HTTP {status}")
            try:
                result = parse_arxiv_atom(body, "enrich:arxiv")
            except ParseError as error:  # e.g. "Rate exceeded." as plain text
                raise LookupFailed(f"the arXiv API answered something that is not Atom ({error})") from None
            return next((p.model_copy(update={"sources": [_source("arxiv")]}) for p in result.papers), None)

        return self.client.get("arxiv", "/api/query", {"id_list": arxiv_id}, read)

    def resolve(self, paper: Paper) -> tuple[Paper | None, list[str]]:
        """Everything found for the paper, combined (the first answer's fields first), and the services that
        answered with a record. DOI: OpenAlex, then Crossref for an abstract OpenAlex lacks; arXiv id: the arXiv
        API; neither: an OpenAlex search by exact title, then as by DOI and arXiv id with what it found."""
        found: list[tuple[str, Paper]] = []

        def ask(service: str, lookup: Callable[[str], Paper | None], value: str | None) -> None:
            if value and not any(record.has_abstract for _, record in found) and (record := lookup(value)):
                found.append((service, record))

        doi, arxiv_id = paper.doi, paper.arxiv_id
        if doi:
            ask("openalex", self.openalex_by_doi, doi)
        elif not arxiv_id and not paper.title_derived:
            ask("openalex", self.openalex_by_title, paper.title)
        doi = doi or next((record.doi for _, record in found if record.doi), None)
        arxiv_id = arxiv_id or next((record.arxiv_id for _, record in found if record.arxiv_id), None)
        ask("crossref", self.crossref, doi)
        ask("arxiv", self.arxiv, arxiv_id)
        if not found:
            return None, []
        combined = found[0][1]
        for _, record in found[1:]:
            combined = merge_into(combined, record)
        return combined.model_copy(update={"sources": []}), [service for service, _ in found]


# ---------------------------------------------------------------- the run


def _held_by(paper: Paper, roots: Sequence[str]) -> bool:
    """Whether one of the paper's source files is one of `roots` or lies in a folder among them."""
    return any(s.file == root or s.file.startswith(root.rstrip(os.sep) + os.sep)
               for s in paper.sources for root in roots)


def enrich(
    store: Store, embedder: Embedder, settings: Settings, roots: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> EnrichReport:
    """Look up every stored paper without an abstract (only those from the files or folders `roots`, absolute
    paths, when given) and store what is found. Raises EnrichError (one line) when the network is gone; what was
    done until then is kept."""
    started = time.perf_counter()
    report = EnrichReport(contact_email=bool(settings.contact_email))
    candidates = sorted(
        (sp.paper for sp in store.all_papers()
         if not sp.paper.has_abstract and (roots is None or _held_by(sp.paper, roots))),
        key=lambda paper: paper.paper_id,
    )
    report.lacking = len(candidates)
    if not candidates:
        return report
    cache = Cache(settings.home / CACHE_FILE)
    client = Client(settings, cache)
    lookups = Lookups(client)
    found: dict[str, Paper] = {}
    last_store = time.monotonic()
    try:
        for done, paper in enumerate(candidates, start=1):
            before = client.requests
            try:
                record, services = lookups.resolve(paper)
            except LookupFailed as error:
                report.fail(paper, str(error))
                record, services = None, None
            if progress:  # the bar appears once a paper is done: no network leaves only the error line
                progress("enrich", done, len(candidates))
            if services is None:
                continue
            report.from_cache += client.requests == before
            report.not_found += record is None or not record.has_abstract
            if record is not None:
                cache.keep_filled(lookup_keys(paper), "+".join(services), record)
                found[paper.paper_id] = record
            if len(found) >= STORE_MAX_PAPERS or time.monotonic() - last_store >= STORE_SECONDS:
                _store(found, store, embedder, settings, report)
                found, last_store = {}, time.monotonic()
    finally:  # also when stopped by EnrichError or Ctrl-C: what was found is stored
        try:
            _store(found, store, embedder, settings, report)
        finally:
            report.requests = client.requests
            client.close()
            cache.close()
            report.seconds = round(time.perf_counter() - started, 2)
    return report


def _store(found: dict[str, Paper], store: Store, embedder: Embedder, settings: Settings, report: EnrichReport) -> None:
    """Fill the papers as they are now (re-read under the write lock: an ingest may have changed them)."""
    if not found:
        return
    with store.writing():
        stored = store.stored_papers(list(found))
        changed = []
        for paper_id, record in found.items():
            if paper_id not in stored:  # removed meanwhile
                continue
            old = stored[paper_id]
            new = fill(old.paper, record)
            if new.content_key() != old.content_key:
                changed.append(new)
                report.filled += new.has_abstract and not old.paper.has_abstract
                report.metadata_filled += any(
                    getattr(new, name) != getattr(old.paper, name) for name in Paper.model_fields
                    if name not in ("abstract", "sources")
                )
        if changed:
            update_papers(changed, store, embedder, settings)
            log.info("stored %d papers filled in from the web", len(changed))
