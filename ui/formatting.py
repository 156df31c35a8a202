"""Pure text helpers for the app: step, status and usage lines (kept apart to be unit-tested)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant import Answer, Step


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def step_line(step: Step) -> str:
    """A tool step as the user reads it: what was searched or read, and what came back (each tool words its own)."""
    return step.line()


def steps_label(answer: Answer | None) -> str:
    """The status line over an answer: how many searches and reads it took, how many papers it found."""
    if answer is None:
        return "No answer"
    counts = {tool: sum(s.tool == tool for s in answer.steps) for tool in ("search_papers", "read_paper")}
    parts = [f"{counts['search_papers']} search{'es' if counts['search_papers'] != 1 else ''}"]
    if counts["read_paper"]:
        parts.append(f"{counts['read_paper']} paper(s) read")
    parts.append(f"{len(answer.evidence)} papers retrieved")
    return " · ".join(parts)


def selected_paper(selection: Mapping[str, Any], param: str) -> str | None:
    """The paper id of the clicked map point in an Altair point selection (`{param: [{"paper_id": ...}]}`)."""
    points = selection.get(param) or []
    return points[0].get("paper_id") if points else None


def usage_caption(answer: Answer) -> str:
    """Model, tokens, cost and latency in one small line (Markdown: the dollar sign is escaped)."""
    parts = [f"{answer.provider}" + (f" · {answer.model}" if answer.model and answer.model != answer.provider else "")]
    if answer.extractive:
        parts.append("extractive (no model): sentences quoted from the abstracts")
    elif answer.abstained:
        parts.append("abstained: not enough evidence, no model call")
    else:
        parts.append(f"{answer.usage.prompt_tokens:,} prompt + {answer.usage.completion_tokens:,} completion tokens")
        if answer.usage.cost_usd is not None:
            parts.append(f"\\${answer.usage.cost_usd:.4f}")
    parts.append(f"{answer.usage.seconds:.1f} s")
    return " · ".join(parts)
