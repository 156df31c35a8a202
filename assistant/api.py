"""The public facade: the CLI and the UI call only this."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from pydantic import BaseModel

from .config import Settings, load_settings
from .corpus import Paper
from .errors import EmptyLibraryError
from .index import (
    Embedder,
    IngestReport,
    LibraryState,
    PaperQuery,
    ProgressCallback,
    ReindexReport,
    RemovalReport,
    SourceRecord,
    Store,
    StoreError,
    ingest,
    make_embedder,
    read_manifest,
    reindex,
    remove,
)
from .retrieve import Filters, Hit, Mode, Reranker, Retriever, paper_query

if TYPE_CHECKING:
    from .agent import Agent, Answer, Event
    from .clusters import ClusterMap, ClusterSummarizer, ClusterSummary
    from .conversations import Conversation, ConversationInfo, ConversationStore, SavedTurn
    from .doctor import Check
    from .enrich import EnrichReport
    from .llm import ChatSetup
    from .report import ReportRun
    from .topics import TopicCount, Topics

History = Sequence[dict[str, Any]]  # {"role", "content"} (+ "citations" on assistant turns: see Answer.history_entries)

log = logging.getLogger("litassist.api")
DEMO_CORPUS = Path(__file__).parent / "demo" / "seeds"


def is_demo_file(file: str | Path) -> bool:
    """Whether a source file is one of the bundled demo pages, wherever the package was installed."""
    return Path(file).parent.parts[-3:] == DEMO_CORPUS.parts[-3:]


T = TypeVar("T")


def shared(build: Callable[[Any], T]) -> T:
    """Like functools.cached_property, but built once even when threads race for it: the app shares one
    Assistant between all its browser sessions (functools.cached_property has no lock since Python 3.12)."""
    name = build.__name__

    @functools.wraps(build)
    def get(self: Assistant) -> T:
        try:
            return self.__dict__[name]
        except KeyError:
            pass
        with self._building:
            if name not in self.__dict__:
                self.__dict__[name] = build(self)
            return self.__dict__[name]

    return property(get)  # type: ignore[return-value]


class ProviderInfo(NamedTuple):
    """The chat provider that settings select ("offline": extractive answers) and its model name."""

    provider: str
    model_name: str | None


def provider_info(settings: Settings) -> ProviderInfo:
    """Which provider and model `settings` select, without building the model (the app's sidebar shows it);
    a misconfigured provider raises ProviderError."""
    from .llm import model_name, resolve_provider

    provider = resolve_provider(settings)
    return ProviderInfo(provider, model_name(settings, provider))


def error_text(error: BaseException, settings: Settings) -> str:
    """The one line a user sees for a failed model call (provider, network, context window, ...)."""
    from .llm import describe_error

    return describe_error(error, settings)


def model_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the model failed" (as opposed to a bug): for `except model_errors():`."""
    from .llm import model_errors as errors

    return errors()


def failure_text(error: BaseException, settings: Settings) -> StoreError | None:
    """The one line for a store failure that is not a StoreError (a panic inside Chroma, a full disk), naming the
    file and the remedy; None when the error is not the store's (a bug: let it raise)."""
    from .index.store import describe_failure

    return describe_failure(error, settings.home)


class Stats(BaseModel):
    home: str
    embedding_model: str
    papers: int
    chunks: int
    sources: int
    papers_by_format: dict[str, int]


class LibraryFacets(BaseModel):
    """What the app's sidebar and Library tab offer and count, from the catalog's indexes (no record is read)."""

    papers: int
    years: list[int]  # the distinct years of dated papers, ascending
    undated: int
    formats: dict[str, int]  # source references per format (a paper two files hold counts twice), most first
    files: dict[str, int]  # papers each source file holds, by file name
    collections: list[str]  # Zotero collections as written, ignoring case in order


class PaperPage(BaseModel):
    """One page of papers in id order, and how many papers there are in all (see `Assistant.browse`)."""

    total: int
    offset: int
    papers: list[Paper]


class Assistant:
    """A literature library under one home directory: ingest files, list papers, search them."""

    def __init__(self, home: str | Path | None = None, settings: Settings | None = None):
        self.settings = settings or load_settings(home)
        self._building = threading.RLock()
        self._matched: tuple[tuple[str, str, str] | None, list[tuple[str, int | None]]] = (None, [])  # _matching

    @shared
    def store(self) -> Store:
        return Store(self.settings.chroma_path, self.settings.resolved_embedding_model, self.settings.chroma_url,
                     chunk_tokens=self.settings.chunk_tokens, lock_timeout=self.settings.lock_timeout,
                     buffer_from_papers=self.settings.buffer_writes_from)

    @shared
    def embedder(self) -> Embedder:
        return make_embedder(self.settings)

    @shared
    def retriever(self) -> Retriever:
        return Retriever(self.store, self.embedder, self.settings.fusion_dense_weight,
                         self.reranker, self.settings.rerank_candidates)

    @property
    def reranker(self) -> Reranker | None:
        """The chat model as re-ranker when LITASSIST_RERANK=llm and a model is configured."""
        if self.settings.rerank != "llm":
            return None
        from .rerank import rerank

        model = self.chat.model
        if model is None:
            log.warning("LITASSIST_RERANK=llm needs a chat model, and the provider is offline: not re-ranking")
            return None
        return functools.partial(rerank, model)

    @shared
    def chat(self) -> ChatSetup:
        """The chat model (None: offline), its provider and model name, built once from the settings."""
        from .llm import ChatSetup, chat_model, model_name, resolve_provider

        provider = resolve_provider(self.settings)
        return ChatSetup(chat_model(self.settings), provider, model_name(self.settings, provider))

    @shared
    def agent(self) -> Agent:
        from .agent import Agent

        return Agent(self.retriever, self.store, self.settings, *self.chat, topics=self.topics)

    @shared
    def topics(self) -> Topics:
        """The topic map and summaries, cached in HOME/clusters."""
        from .topics import Topics

        return Topics(self.store, self.settings.home / "clusters", lambda: self.chat, lambda: self.summarizer)

    @shared
    def summarizer(self) -> ClusterSummarizer:
        from .clusters import ClusterSummarizer
        from .llm import context_window

        return ClusterSummarizer(*self.chat, context_window(self.settings), self.settings.llm_answer_tokens)

    def ask(
        self, question: str, history: History | None = None, filters: Filters | None = None, k: int | None = None,
        conversation: str | None = None, scope: str | None = None,
    ) -> Answer:
        """A cited answer from this library. `history`: earlier turns as {"role": "user"|"assistant", "content"};
        `filters` bound every search of the turn (e.g. `Filters(paper_ids=cluster.paper_ids)`); `k` papers per search.
        `conversation`: the id of a saved conversation (see `start_conversation`) instead of `history`: the question
        follows up on its answered turns and the turn is saved to it, answered or failed; `scope` labels the
        turn's filters there (e.g. a topic's name)."""
        from .agent import collect

        return collect(self.stream(question, history, filters, k, conversation, scope))

    def stream(
        self, question: str, history: History | None = None, filters: Filters | None = None, k: int | None = None,
        conversation: str | None = None, scope: str | None = None,
    ) -> Iterator[Event]:
        """Like `ask`, yielding events as they happen: tool steps, answer tokens, then the final Answer."""
        if conversation is None:
            return self.agent.run(question, history or (), filters, k)
        if history is not None:
            raise ValueError("give a conversation or a history, not both")
        saved = self.conversation_store.get(conversation)  # an unknown id fails here, before anything runs
        turn = self.conversation_store.add_pending(saved.conversation_id, question, filters, scope)
        return self.answer_turn(saved, turn, k)

    def queue_question(self, conversation: str, question: str, filters: Filters | None = None,
                       scope: str | None = None) -> SavedTurn:
        """Save a question in a conversation now, as a pending turn that `answer_turn` completes later (the app
        saves a question the moment it is sent, then answers it in the background)."""
        return self.conversation_store.add_pending(conversation, question, filters, scope)

    def answer_turn(self, saved: Conversation, turn: SavedTurn, k: int | None = None) -> Iterator[Event]:
        """Answer a pending turn, following up on the answered turns before it; the turn is completed before the
        final event is yielded, or completed as failed (with the one line the user sees) when it raises or is
        abandoned."""
        from .llm import describe_error

        store = self.conversation_store
        try:
            if self.paper_count() == 0:
                raise EmptyLibraryError("the library is empty: load the seed corpus (`litassist ingest --demo`, or "
                                        "the button in the app) or add your own papers first")
            for event in self.agent.run(turn.question, saved.history(before=turn.turn_id), turn.filters, k):
                if event.kind == "final":
                    turn = store.finish(turn, answer=event.answer)
                yield event
        except GeneratorExit:
            if turn.answer is None:
                store.finish(turn, error="Stopped before the answer was ready.")
            raise
        except Exception as error:
            reason = str(error) if isinstance(error, EmptyLibraryError) else describe_error(error, self.settings)
            store.finish(turn, error=reason)
            raise

    @shared
    def conversation_store(self) -> ConversationStore:
        """HOME/conversations.sqlite3: the conversations of the app, `chat` and `ask(..., conversation=)`."""
        from .conversations import FILE_NAME, ConversationStore

        return ConversationStore(self.settings.home / FILE_NAME, self.store.get_papers)

    def conversations(self, search: str = "") -> list[ConversationInfo]:
        """Saved conversations, most recently active first (id, title, created, updated, answers, failed, pending);
        `search`: only those whose title or a question holds it."""
        return self.conversation_store.list(search)

    def conversation(self, conversation_id: str) -> Conversation:
        """A saved conversation with its turns (an id or a unique prefix of one)."""
        return self.conversation_store.get(conversation_id)

    def start_conversation(self, title: str = "") -> ConversationInfo:
        """A new, empty saved conversation; untitled ones take their first question as title."""
        return self.conversation_store.create(title)

    def rename_conversation(self, conversation_id: str, title: str) -> ConversationInfo:
        return self.conversation_store.rename(conversation_id, title)

    def delete_conversation(self, conversation_id: str) -> ConversationInfo:
        return self.conversation_store.delete(conversation_id)

    def doctor(self) -> list[Check]:
        """What is configured and whether it works: model provider, embeddings, store."""
        from .doctor import Check, doctor

        checks = doctor(self.settings)
        try:
            self.embedder.embed_query("ok")
            checks.append(Check("embeddings", True, f"{self.embedder.name} ({self.settings.embedding_provider})"))
        except Exception as error:  # noqa: BLE001 - every failure becomes a line of the report
            checks.append(Check("embeddings", False, f"{type(error).__name__}: {error}"))
        stats = self.stats()
        checks.append(
            Check("library", stats.papers > 0, f"{stats.papers} papers, {stats.chunks} chunks at {stats.home}")
        )
        return checks

    def ingest(
        self,
        paths: Iterable[str | Path],
        csv_mapping: dict[str, str] | None = None,
        force: bool = False,
        progress: ProgressCallback | None = None,
        allow_removals: bool = False,
    ) -> IngestReport:
        """Add files or directories (recursively); unchanged files cost nothing, changed ones update in place.

        One writer at a time: a second ingest (another process, or another thread) waits for the first.
        A changed file that would lose more than LITASSIST_MAX_REMOVAL_SHARE of its papers is refused
        (`report.files_failed`) unless `allow_removals`."""
        kwargs = {"progress": progress} if progress else {}
        return ingest(paths, self.store, self.embedder, self.settings, csv_mapping, force,
                      allow_removals=allow_removals, **kwargs)

    def enrich(
        self, sources: Iterable[str | Path] | None = None, progress: ProgressCallback | None = None
    ) -> EnrichReport:
        """Fill in the abstracts (and year, venue, DOI, arXiv id, authors) that stored papers lack, from OpenAlex,
        Crossref and the arXiv API: the only method that uses the network, and only when called. `sources`: only
        the papers of these files or folders. Answers are cached in the home, so a second call sends no request
        for what the first looked up. Raises EnrichError (one line) when the network cannot be reached."""
        from .enrich import enrich

        roots = None if sources is None else [str(Path(p).expanduser().resolve()) for p in sources]
        return enrich(self.store, self.embedder, self.settings, roots, progress)

    def remove(self, paper_ids: Sequence[str] = (), sources: Sequence[str | Path] = ()) -> RemovalReport:
        """Delete papers and/or forget source files (papers only they held go too)."""
        files = [str(Path(f).expanduser().resolve()) for f in sources]
        return remove(self.store, paper_ids, files)

    def reindex(self, progress: ProgressCallback | None = None) -> ReindexReport:
        """Embed every stored paper again into the vector index (HOME/chroma), from the catalog: what restores a
        lost or damaged vector index without the source files."""
        kwargs = {"progress": progress} if progress else {}
        return reindex(self.store, self.embedder, self.settings, **kwargs)

    def demo_sources(self) -> list[str]:
        """The ingested files that are the bundled demo corpus (`ingest --demo`), from this install or another one
        (a venv moved or rebuilt ingests the same pages from another site-packages path)."""
        return [file for file in self.store.source_files() if is_demo_file(file)]

    def remove_demo(self) -> RemovalReport:
        """Take the demo corpus out of the library; the user's own papers stay (a demo paper that one of their files
        also holds keeps that source)."""
        return self.remove(sources=self.demo_sources())

    def sources(self) -> tuple[list[SourceRecord], str | None]:
        """The ingested source files, and None; or, when the store cannot be opened, the list saved at its
        last commit (HOME/sources.json) and the store's error, so a damaged library can be re-ingested."""
        try:
            return sorted(self.store.source_records(), key=lambda r: r.file), None
        except StoreError as error:
            try:
                return read_manifest(self.settings.home), str(error)
            except (OSError, ValueError, KeyError, TypeError):
                raise error from None

    def backup(self, target: str | Path) -> list[str]:
        """Copy the library (store, uploads, source list, saved conversations) to a new folder, consistently: taken
        under the write lock, so no ingest or removal runs meanwhile. Restore by using the folder as the home."""
        from .conversations import FILE_NAME

        return self.store.backup(Path(target), databases=[FILE_NAME])

    def papers(self) -> list[Paper]:
        return list(self.iter_papers())

    def iter_papers(self) -> Iterator[Paper]:
        """Every paper in id order, streamed: `litassist papers` lists a million papers in constant memory."""
        return self.store.iter_papers()

    def paper(self, paper_id: str) -> Paper | None:
        return self.store.get_papers([paper_id]).get(paper_id)

    def papers_by_id(self, paper_ids: Sequence[str]) -> dict[str, Paper]:
        """The records of the papers asked for (those still in the library): a view reads what it shows."""
        return self.store.get_papers(paper_ids)

    def paper_years(self, paper_ids: Sequence[str]) -> dict[str, int | None]:
        """Each paper's year from the catalog's columns, no record parsed (a map's tooltips at any size)."""
        columns = self.store.paper_columns(paper_ids, vectors=False)
        return dict(zip(columns.ids, columns.years))

    def similar_papers(self, paper_ids: Sequence[str], k: int = 5) -> list[tuple[Paper, float]]:
        """The k papers nearest to any of `paper_ids` (by paper vector, cosine), best first, those given left out."""
        given, best = set(paper_ids), dict[str, tuple[Paper, float]]()
        for paper_id in given:
            for paper, score in self.store.similar_papers(paper_id, k + len(given)):
                if paper.paper_id not in given and score > best.get(paper.paper_id, (None, -2.0))[1]:
                    best[paper.paper_id] = (paper, score)
        return sorted(best.values(), key=lambda found: -found[1])[:k]

    def count_matching(self, filters: Filters) -> int:
        """How many papers pass `filters` (asked of the catalog's columns: no record is read)."""
        with self.store.reading() as state:
            return len(self._matching(state, filters, "")) if filters.active() else self.store.paper_count()

    def matching_papers(self, filters: Filters) -> dict[str, int | None]:
        """The ids of the papers passing `filters`, each with its year, in id order; decided in SQL over the
        catalog's columns with `Filters.admits`'s meaning (no record is parsed)."""
        with self.store.reading() as state:
            return dict(self._matching(state, filters, ""))

    def _matching(self, state: LibraryState, filters: Filters | None, needle: str) -> list[tuple[str, int | None]]:
        """(id, year) of the papers passing `filters` whose text holds `needle`, in id order. The last answer is
        kept while the library, filters and text stay the same, so the app's next run (another page, a click) does
        not ask again; the app's sessions share this Assistant. What is kept grows with the answer (50,750 rows of
        short ids: 6.3 MB)."""
        key = (state.version, filters.model_dump_json() if filters else "", needle)
        cached, rows = self._matched
        if cached != key:
            query = paper_query(self.store, filters) if filters and filters.active() else PaperQuery()
            rows = self.store.query_ids(replace(query, text=needle or None))
            self._matched = (key, rows)
        return rows

    def library_facets(self) -> LibraryFacets:
        """Papers, years, undated papers, formats, source files and collections, counted from the catalog's
        indexes: what a page of the app shows about the library, whatever its size (docs/app.md: 50k measured)."""
        facets = self.store.facets()
        formats: dict[str, int] = {}
        files: dict[str, int] = {}
        for (file, fmt), count in facets.files.items():
            formats[fmt] = formats.get(fmt, 0) + count
            files[file] = files.get(file, 0) + count
        return LibraryFacets(
            papers=sum(facets.years.values()), years=sorted(y for y in facets.years if y is not None),
            undated=facets.years.get(None, 0), formats=dict(sorted(formats.items(), key=lambda f: (-f[1], f[0]))),
            files=dict(sorted(files.items(), key=lambda f: (Path(f[0]).name, f[0]))),
            collections=sorted(facets.collections, key=lambda c: (c.casefold(), c)))

    def browse(self, filters: Filters | None = None, text: str = "", offset: int = 0, limit: int = 200) -> PaperPage:
        """Papers `offset` to `offset + limit` in id order of those passing `filters` whose title, authors,
        abstract, venue or id hold `text` (any case), and their total; only the page's records are read. Without
        filters or text a page is read from the index of ids; else the ids that pass are found in SQL (the text in
        every record that passes the filters: 0.35-0.75 s at 50k papers, docs/app.md) and kept for the next page
        (see `_matching`)."""
        needle = text.strip().lower()
        with self.store.reading() as state:
            if not needle and not (filters and filters.active()):
                total, page = self.store.paper_count(), self.store.id_page(offset, limit)
            else:
                rows = self._matching(state, filters, needle)
                total, page = len(rows), [pid for pid, _ in rows[offset : offset + limit]]
            papers = self.store.get_papers(page)
        return PaperPage(total=total, offset=offset, papers=[papers[pid] for pid in page if pid in papers])

    def papers_of_files(self, files: Sequence[str]) -> list[Paper]:
        """The papers any of these source files holds (stored paths, as `library_facets().files` names them), in
        id order: only their records are read."""
        return sorted((sp.paper for sp in self.store.papers_of_files(files).values()), key=lambda p: p.paper_id)

    def search(self, query: str, k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid") -> list[Hit]:
        """Best papers for a query, each with its best passage; `mode` picks hybrid, dense or lexical."""
        return self.retriever.search(query, k, filters, mode)

    def search_many(
        self, queries: Sequence[str], k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid"
    ) -> list[list[Hit]]:
        return self.retriever.search_many(queries, k, filters, mode)

    def search_stream(
        self, queries: Iterable[str], k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid"
    ) -> Iterator[list[Hit]]:
        """Hits of each query in order, yielded batch by batch as the queries are read: for any number of them."""
        return self.retriever.search_stream(queries, k, filters, mode)

    def clusters(self, n_clusters: TopicCount = None) -> ClusterMap:
        """The library's topic clusters with a 2-D map. `n_clusters`: None for the current map (the last one
        computed, whatever its k, while the library is unchanged), "auto" for k chosen automatically, a number for
        that many topics. Reused while the library is unchanged; after a change, continuing clusters keep their ids."""
        return self.topics.clusters(n_clusters)

    def cluster_summary(self, cluster_id: str, force: bool = False) -> ClusterSummary:
        """A cited summary of one cluster of the current map; cached until the cluster's papers change."""
        return self.topics.cluster_summary(cluster_id, force)

    def summarize(
        self,
        out_dir: str | Path,
        n_clusters: TopicCount = "auto",
        formats: Sequence[str] = ("md", "json", "html"),
        force: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ReportRun:
        """Write a topic report to `out_dir` (overview, topic map, trends, a cited summary per topic and subtopic,
        BibTeX, clusters.json); cached summaries are reused unless `force`."""
        return self.topics.summarize(out_dir, n_clusters, formats, force, progress)

    def paper_count(self) -> int:
        """How many papers the library holds (a damaged store is one StoreError line)."""
        return self.store.paper_count()

    def stats(self) -> Stats:
        """Counts from the catalog (no paper is read: fast at a million papers)."""
        with self.store.reading():
            return Stats(
                home=str(self.settings.home),
                embedding_model=self.settings.resolved_embedding_model,
                papers=self.store.paper_count(),
                chunks=self.store.chunk_count(),
                sources=self.store.source_count(),
                papers_by_format=self.library_facets().formats,
            )
