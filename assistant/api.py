"""The public facade: the CLI and the UI call only this."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from .config import Settings, load_settings
from .corpus import Paper
from .index import Embedder, IngestReport, ProgressCallback, Store, ingest, make_embedder
from .retrieve import Hit, dense_search

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
        return Store(self.settings.chroma_path, self.settings.resolved_embedding_model)

    @functools.cached_property
    def embedder(self) -> Embedder:
        return make_embedder(self.settings)

    def ingest(
        self,
        paths: Iterable[str | Path],
        csv_mapping: dict[str, str] | None = None,
        force: bool = False,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Add files or directories (recursively); unchanged files cost nothing, changed ones update in place."""
        kwargs = {"progress": progress} if progress else {}
        return ingest(paths, self.store, self.embedder, self.settings, csv_mapping, force, **kwargs)

    def papers(self) -> list[Paper]:
        return sorted((sp.paper for sp in self.store.all_papers()), key=lambda p: p.paper_id)

    def paper(self, paper_id: str) -> Paper | None:
        return self.store.get_papers([paper_id]).get(paper_id)

    def search(self, query: str, k: int = 10) -> list[Hit]:
        return dense_search(self.store, self.embedder, query, k)

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
