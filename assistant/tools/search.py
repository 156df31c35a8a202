"""`search_papers`: hybrid search of the library inside the turn's scope."""

from __future__ import annotations

from ..retrieve import Filters
from .registry import Step, ToolContext, agent_tool


def search_line(step: Step) -> str:
    bounds = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in step.args.items() if k != "query")
    return f"Searched for “{step.args.get('query', '')}”" + (f" ({bounds})" if bounds else "") + f": {step.summary}"


@agent_tool(hint="search the library", order=10, step_line=search_line)
def search_papers(
    ctx: ToolContext, query: str, year_min: int | None = None, year_max: int | None = None, author: str | None = None
) -> str:
    """Search the user's paper library (hybrid keyword + semantic). Returns numbered evidence to cite."""
    asked = Filters(year_min=year_min, year_max=year_max, author=author)
    hits = ctx.retriever.search(query, k=ctx.turn.k, filters=ctx.scope.narrowed(asked))
    found = [ctx.ledger.add(h.paper, h.text, h.similarity, h.location) for h in hits if asked.admits(h.paper)]
    evidence = [e for e in found if e is not None]
    ctx.record("search_papers", {"query": query, **asked.model_dump(exclude_none=True)}, f"{len(evidence)} papers")
    return ctx.turn.scope_note() + ctx.ledger.render(evidence, ctx.budget)
