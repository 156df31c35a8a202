"""`similar_papers`: the papers nearest to one paper, inside the turn's scope."""

from __future__ import annotations

from .registry import Step, ToolContext, agent_tool


def similar_line(step: Step) -> str:
    return f"Looked for papers similar to {step.args.get('paper_id', '')}: {step.summary}"


@agent_tool(hint="papers close to one paper", order=30, step_line=similar_line)
def similar_papers(ctx: ToolContext, paper_id: str) -> str:
    """Papers in the library most similar to the given one (by their paper-level embeddings)."""
    source, refusal = ctx.paper_in_scope("similar_papers", paper_id)
    if source is None:
        return refusal
    wanted = ctx.settings.evidence_k
    pool = wanted if not ctx.scope.active() else max(wanted * 10, 100)  # room to find enough inside the scope
    found = [ctx.ledger.add(p, p.abstract[:600], score)
             for p, score in ctx.store.similar_papers(source.paper.paper_id, pool)]
    evidence = [e for e in found if e is not None][:wanted]
    ctx.record("similar_papers", {"paper_id": source.paper.paper_id}, f"{len(evidence)} papers")
    return ctx.turn.scope_note() + ctx.ledger.render(evidence, ctx.budget)
