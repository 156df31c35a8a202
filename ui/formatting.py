"""Pure text helpers for the app: highlighted abstracts, step and usage lines (kept apart to be unit-tested)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from assistant.agent import Answer, Step
from assistant.corpus import Paper

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WS = re.compile(r"\s+")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>#|~$])")


def md_escape(text: str) -> str:
    """Text shown through Markdown exactly as written (titles with `*`, `_`, `$`, brackets, ...)."""
    return _MARKDOWN.sub(r"\\\1", text)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _safe(text: str) -> str:
    """HTML-escaped, with `$` neutralised so Streamlit's Markdown does not read it as LaTeX."""
    return html.escape(text).replace("$", "&#36;")


def _spans(abstract: str, passage: str) -> list[tuple[int, int]]:
    """Where the passage sits in the abstract: the whole passage when it is a substring (chunks are runs of
    sentences), else every abstract sentence that the passage contains (read/similar tools trim passages)."""
    passage = _WS.sub(" ", passage).strip()
    if not passage:
        return []
    start = abstract.find(passage)
    if start >= 0:
        return [(start, start + len(passage))]
    spans, position = [], 0
    for sentence in _SENTENCE.split(abstract):
        begin = abstract.find(sentence, position)
        position = begin + len(sentence)
        if len(sentence.split()) >= 4 and sentence.strip() in passage:
            spans.append((begin, position))
    return spans


def highlight(abstract: str, passage: str | None) -> str:
    """The abstract as safe HTML with the supporting passage wrapped in <mark>."""
    if not passage:
        return _safe(abstract)
    out, last = [], 0
    for begin, end in _spans(abstract, passage):
        out += [_safe(abstract[last:begin]), "<mark>", _safe(abstract[begin:end]), "</mark>"]
        last = end
    out.append(_safe(abstract[last:]))
    return "".join(out)


def authors_line(paper: Paper, limit: int = 8) -> str:
    if not paper.authors:
        return f"{paper.author_count} authors" if paper.author_count else "Authors unknown"
    shown = ", ".join(paper.authors[:limit])
    return shown + (f" and {len(paper.authors) - limit} more" if len(paper.authors) > limit else "")


def step_line(step: Step) -> str:
    """A tool step as the user reads it: what was searched or read, and what came back."""
    args = step.args
    if step.tool == "search_papers":
        bounds = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in args.items() if k != "query")
        return f"Searched for “{args.get('query', '')}”" + (f" ({bounds})" if bounds else "") + f": {step.summary}"
    if step.tool == "read_paper":
        return f"Read paper {args.get('paper_id', '')}: {step.summary}"
    if step.tool == "similar_papers":
        return f"Looked for papers similar to {args.get('paper_id', '')}: {step.summary}"
    return f"{step.tool}({', '.join(f'{k}={v}' for k, v in args.items())}): {step.summary}"


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
