"""`read_paper`: one paper's full record, if it is inside the turn's scope."""

from __future__ import annotations

from .registry import Step, ToolContext, agent_tool


def read_line(step: Step) -> str:
    return f"Read paper {step.args.get('paper_id', '')}: {step.summary}"


@agent_tool(hint="a paper's full abstract", order=20, step_line=read_line)
def read_paper(ctx: ToolContext, paper_id: str) -> str:
    """Read one paper's full record and abstract, by its paper_id (or evidence number) from earlier evidence."""
    evidence, refusal = ctx.paper_in_scope("read_paper", paper_id)
    if evidence is None:
        return refusal
    ctx.record("read_paper", {"paper_id": evidence.paper.paper_id}, evidence.paper.title)
    return ctx.ledger.render([evidence], ctx.budget, full=True)
