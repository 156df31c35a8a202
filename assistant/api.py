"""The public facade: the CLI and the UI call only this."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from .config import Settings, load_settings
from .corpus import Paper
from .index import (
    Embedder,
    IngestReport,
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
from .retrieve import Filters, Hit, Mode, Reranker, Retriever

if TYPE_CHECKING:
    from .agent import Agent, Answer, Event
    from .clusters import ClusterCache, ClusterMap, ClusterSummarizer, ClusterSummary
    from .conversations import Conversation, ConversationInfo, ConversationStore, SavedTurn
    from .enrich import EnrichReport
    from .evaluate import AnswerReport, RetrievalReport
    from .llm import Check
    from .report import ReportRun

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


class EmptyLibraryError(RuntimeError):
    """A question asked of a library with no papers (in a saved conversation: recorded as its failed turn)."""


class Stats(BaseModel):
    home: str
    embedding_model: str
    papers: int
    chunks: int
    sources: int
    papers_by_format: dict[str, int]


class Assistant:
    """A literature library under one home directory: ingest files, list papers, search them."""

    def __init__(self, home: str | Path | None = None, settings: Settings | None = None):
        self.settings = settings or load_settings(home)
        self._building = threading.RLock()

    @shared
    def store(self) -> Store:
        return Store(self.settings.chroma_path, self.settings.resolved_embedding_model, self.settings.chroma_url,
                     chunk_tokens=self.settings.chunk_tokens, lock_timeout=self.settings.lock_timeout)

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
        from .llm import rerank

        model = self.chat[0]
        if model is None:
            log.warning("LITASSIST_RERANK=llm needs a chat model, and the provider is offline: not re-ranking")
            return None
        return functools.partial(rerank, model)

    @shared
    def chat(self) -> tuple[Any, str, str | None]:
        """(chat model or None for offline, provider, model name), built once from the settings."""
        from .llm import chat_model, model_name, resolve_provider

        provider = resolve_provider(self.settings)
        return chat_model(self.settings), provider, model_name(self.settings, provider)

    @shared
    def agent(self) -> Agent:
        from .agent import Agent

        return Agent(self.retriever, self.store, self.settings, *self.chat, topics=self)

    @shared
    def cluster_cache(self) -> ClusterCache:
        from .clusters import ClusterCache

        return ClusterCache(self.settings.home / "clusters")

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

        return ConversationStore(self.settings.home / FILE_NAME)

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
        from .llm import Check, doctor

        checks = doctor(self.settings)
        try:
            self.embedder.embed_query("ok")
            checks.append(Check("embeddings", True, f"{self.embedder.name} ({self.settings.embedding_provider})"))
        except Exception as error:  # noqa: BLE001 - every failure becomes a line of the report
            checks.append(Check("embeddings", False, f"{type(error).__name__}: {error}"))
        stats = self.stats()
        checks.append(Check("library", stats.papers > 0, f"{stats.papers} papers, {stats.chunks} chunks at {stats.home}"))
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

    def enrich(self, sources: Iterable[str | Path] | None = None, progress: ProgressCallback | None = None) -> EnrichReport:
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
        return sorted((sp.paper for sp in self.store.all_papers()), key=lambda p: p.paper_id)

    def paper(self, paper_id: str) -> Paper | None:
        return self.store.get_papers([paper_id]).get(paper_id)

    def similar_papers(self, paper_ids: Sequence[str], k: int = 5) -> list[tuple[Paper, float]]:
        """The k papers nearest to any of `paper_ids` (by paper vector, cosine), best first, those given left out."""
        given, best = set(paper_ids), {}
        for paper_id in given:
            for paper, score in self.store.similar_papers(paper_id, k + len(given)):
                if paper.paper_id not in given and score > best.get(paper.paper_id, (None, -2.0))[1]:
                    best[paper.paper_id] = (paper, score)
        return sorted(best.values(), key=lambda found: -found[1])[:k]

    def count_matching(self, filters: Filters) -> int:
        """How many papers pass `filters` (asked of the catalog over the filters' candidates only)."""
        from .retrieve import allowed_ids

        with self.store.reading():
            allowed = allowed_ids(self.store, filters)
            return self.store.paper_count() if allowed is None else len(allowed)

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

    def evaluate_retrieval(self, folder: str | Path, split: str = "test") -> RetrievalReport:
        """Score hybrid, dense and lexical search on a BEIR folder (its corpus is ingested into this home)."""
        from .evaluate import evaluate_retrieval

        return evaluate_retrieval(self, Path(folder), split)

    def evaluate_answers(self, folder: str | Path, split: str = "dev", limit: int | None = None) -> AnswerReport:
        """Citation recall/precision of `ask` on SciFact-style claims (claims_<split>.jsonl + corpus.jsonl)."""
        from .evaluate import evaluate_answers

        return evaluate_answers(self, Path(folder), split, limit)

    def clusters(self, n_clusters: int | None = None) -> ClusterMap:
        """The library's topic clusters (k chosen automatically unless given) with a 2-D map.

        Reused while the library is unchanged; after a small change new papers join their nearest topics, after a
        larger one the map is recomputed and clusters that continue keep their ids (clusters.library_map)."""
        from .clusters import library_map

        cached = self.cluster_cache.load_map()
        cluster_map = library_map(self.store, cached, n_clusters)
        if cluster_map is not cached:
            self.cluster_cache.save_map(cluster_map)
            log.info("topic map of %d papers: %s, %d clusters, %d assigned since", cluster_map.paper_count,
                     cluster_map.method, len(cluster_map.topics), cluster_map.changed_since)
        return cluster_map

    def current_clusters(self) -> ClusterMap:
        """The last computed clusters if the library has not changed since (whatever k), else `clusters()`."""
        cached = self.cluster_cache.load_map()
        return cached if cached and cached.library_version == self.store.version() else self.clusters()

    def cluster_summary(self, cluster_id: str, force: bool = False) -> ClusterSummary:
        """A cited summary of one cluster of `current_clusters()`; cached until the cluster's papers change."""
        return self._summary(self.current_clusters(), cluster_id, force)[0]

    def _summary(self, cluster_map: ClusterMap, cluster_id: str, force: bool) -> tuple[ClusterSummary, bool]:
        """(summary, whether it came from the cache)."""
        from .clusters import SUMMARY_PAPERS, UNCLUSTERED, summary_key

        cluster = cluster_map.get(cluster_id)
        if cluster is None or cluster_id == UNCLUSTERED:
            known = ", ".join(c.cluster_id for c in cluster_map.topics)
            raise KeyError(f"no cluster {cluster_id!r} to summarize; the clusters are {known}")
        key = summary_key(cluster, self.chat[1], self.chat[2])
        cached = None if force else self.cluster_cache.load_summary(key)
        if cached:
            return cached, True
        summary = self.summarizer.summarize(cluster, self.store.get_papers(cluster.paper_ids[:SUMMARY_PAPERS]))
        self.cluster_cache.save_summary(key, summary)
        return summary, False

    def summarize(
        self,
        out_dir: str | Path,
        n_clusters: int | None = None,
        formats: Sequence[str] = ("md", "json", "html"),
        force: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ReportRun:
        """Write a topic report to `out_dir`: overview, topic map, trends, cited summary per topic and subtopic,
        BibTeX, clusters.json.

        Each summary is cached as soon as it is written, so an interrupted run resumes where it stopped;
        `force` writes every summary again."""
        from .report import ReportRun, shown_papers, write_report

        cluster_map = self.clusters(n_clusters)
        summaries, fresh = {}, 0
        every = [c for topic in cluster_map.topics for c in (topic, *topic.subtopics)]  # topics and subtopics
        for done, cluster in enumerate(every, start=1):
            summaries[cluster.cluster_id], cached = self._summary(cluster_map, cluster.cluster_id, force)
            fresh += not cached
            if progress:
                progress("summarize", done, len(every))
        papers = self.store.get_papers(shown_papers(cluster_map, summaries))
        files = write_report(Path(out_dir), cluster_map, summaries, papers, formats)
        return ReportRun(out_dir=str(out_dir), files=files, clusters=len(cluster_map.topics), summarized=fresh,
                         cached=len(summaries) - fresh)

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
                papers_by_format=self.store.format_counts(),
            )
