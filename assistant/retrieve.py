"""Search: query -> ranked papers, each with its best-matching passage."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .corpus import Paper
from .index import Embedder, Store

CANDIDATES_PER_RESULT = 5


class Hit(BaseModel):
    """One result: a paper and the passage of it that matched best."""

    paper_id: str
    title: str
    score: float
    text: str
    paper: Paper

    def as_json(self) -> dict[str, Any]:
        return {"paper_id": self.paper_id, "title": self.title, "score": round(self.score, 4), "text": self.text}


def dense_search(store: Store, embedder: Embedder, query: str, k: int = 10) -> list[Hit]:
    """Nearest chunks by cosine similarity, collapsed to the best chunk per paper."""
    chunk_hits = store.query_chunks(embedder.embed_query(query), n=k * CANDIDATES_PER_RESULT)
    best: dict[str, Any] = {}
    for hit in chunk_hits:
        if hit.paper_id not in best or hit.score > best[hit.paper_id].score:
            best[hit.paper_id] = hit
    ranked = sorted(best.values(), key=lambda h: h.score, reverse=True)[:k]
    papers = store.get_papers([h.paper_id for h in ranked])
    return [
        Hit(paper_id=h.paper_id, title=papers[h.paper_id].title, score=h.score, text=h.text, paper=papers[h.paper_id])
        for h in ranked
        if h.paper_id in papers  # a chunk whose paper entry is not written yet (killed ingest) is not a result
    ]
