"""The public facade: the CLI and the UI call only this."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from .config import Settings, load_settings
from .corpus import Paper
from .index import Embedder, IngestReport, ProgressCallback, RemovalReport, Store, ingest, make_embedder, remove
from .retrieve import Filters, Hit, LexicalIndex, Mode, Retriever

if TYPE_CHECKING:
    from .agent import Agent, Answer, Event
    from .evaluate import AnswerReport, RetrievalReport
    from .llm import Check

History = Sequence[dict[str, str]]

DEMO_CORPUS = Path(__file__).parent / "demo" / "seeds"


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

    @functools.cached_property
    def store(self) -> Store:
        return Store(self.settings.chroma_path, self.settings.resolved_embedding_model, self.settings.chroma_url)

    @functools.cached_property
    def embedder(self) -> Embedder:
        return make_embedder(self.settings)

    @functools.cached_property
    def retriever(self) -> Retriever:
        lexical = LexicalIndex(self.settings.lexical_path)
        return Retriever(self.store, self.embedder, lexical, self.settings.fusion_dense_weight)

    @functools.cached_property
    def agent(self) -> Agent:
        from .agent import Agent
        from .llm import chat_model, model_name, resolve_provider

        provider = resolve_provider(self.settings)
        return Agent(self.retriever, self.store, self.settings, chat_model(self.settings), provider,
                     model_name(self.settings, provider))

    def ask(self, question: str, history: History | None = None) -> Answer:
        """A cited answer from this library. `history`: earlier turns as {"role": "user"|"assistant", "content"}."""
        from .agent import collect

        return collect(self.stream(question, history))

    def stream(self, question: str, history: History | None = None) -> Iterator[Event]:
        """Like `ask`, yielding events as they happen: tool steps, answer tokens, then the final Answer."""
        return self.agent.run(question, history or ())

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
    ) -> IngestReport:
        """Add files or directories (recursively); unchanged files cost nothing, changed ones update in place."""
        kwargs = {"progress": progress} if progress else {}
        report = ingest(paths, self.store, self.embedder, self.settings, csv_mapping, force, **kwargs)
        self.retriever.lexical.ensure(self.store)
        return report

    def remove(self, paper_ids: Sequence[str] = (), sources: Sequence[str | Path] = ()) -> RemovalReport:
        """Delete papers and/or forget source files (papers only they held go too)."""
        files = [str(Path(f).expanduser().resolve()) for f in sources]
        report = remove(self.store, paper_ids, files)
        self.retriever.lexical.ensure(self.store)
        return report

    def papers(self) -> list[Paper]:
        return sorted((sp.paper for sp in self.store.all_papers()), key=lambda p: p.paper_id)

    def paper(self, paper_id: str) -> Paper | None:
        return self.store.get_papers([paper_id]).get(paper_id)

    def search(self, query: str, k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid") -> list[Hit]:
        """Best papers for a query, each with its best passage; `mode` picks hybrid, dense or lexical."""
        return self.retriever.search(query, k, filters, mode)

    def search_many(
        self, queries: Sequence[str], k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid"
    ) -> list[list[Hit]]:
        return self.retriever.search_many(queries, k, filters, mode)

    def evaluate_retrieval(self, folder: str | Path, split: str = "test") -> RetrievalReport:
        """Score hybrid, dense and lexical search on a BEIR folder (its corpus is ingested into this home)."""
        from .evaluate import evaluate_retrieval

        return evaluate_retrieval(self, Path(folder), split)

    def evaluate_answers(self, folder: str | Path, split: str = "dev", limit: int | None = None) -> AnswerReport:
        """Citation recall/precision of `ask` on SciFact-style claims (claims_<split>.jsonl + corpus.jsonl)."""
        from .evaluate import evaluate_answers

        return evaluate_answers(self, Path(folder), split, limit)

    def stats(self) -> Stats:
        papers = [sp.paper for sp in self.store.all_papers()]
        return Stats(
            home=str(self.settings.home),
            embedding_model=self.settings.resolved_embedding_model,
            papers=len(papers),
            chunks=self.store.chunks.count(),
            sources=self.store.source_count(),
            papers_by_format=dict(Counter(s.format for p in papers for s in p.sources)),
        )
