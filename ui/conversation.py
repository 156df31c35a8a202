"""The conversation: its turns, the history follow-ups need, and its export as Markdown and BibTeX.

Kept out of app.py so the classes survive reruns (the script is re-executed, this module is not) and so the
export is unit-tested. The assistant package has no BibTeX writer (only a parser), so the few fields a
reference manager needs are formatted here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from assistant.agent import Answer
from assistant.corpus import Paper


@dataclass(frozen=True)
class Scope:
    """A chat bounded to some papers (one topic cluster): every search of the turn stays inside them."""

    label: str
    paper_ids: list[str]


@dataclass
class Turn:
    """One question and what came back: an answer, or the one-line reason there is none."""

    question: str
    scope: Scope | None = None
    answer: Answer | None = None
    error: str | None = None


def history(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """Earlier answered turns in the shape `Assistant.stream` takes, so follow-ups are understood."""
    return [entry for turn in turns if turn.answer is not None for entry in turn.answer.history_entries()]


def cited_papers(turns: Sequence[Turn]) -> list[Paper]:
    """Every paper cited anywhere in the conversation, first citation first."""
    return [c.paper for turn in turns if turn.answer for c in turn.answer.citations]


def answer_body(answer: Answer) -> str:
    """The answer without the reference block the agent appends (the UI and the export list citations themselves)."""
    return answer.text.removesuffix(answer.references).strip()


def reference_line(paper: Paper, number: int) -> str:
    year = paper.year or paper.date or "n.d."
    authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
    return f"[{number}] {paper.title}" + (f" — {authors}" if authors else "") + f" ({year})"


def conversation_markdown(turns: Sequence[Turn], now: datetime | None = None) -> str:
    """The chat as a Markdown document: each question, its answer and references (or its error)."""
    stamp = (now or datetime.now()).strftime("%Y-%m-%d %H:%M")
    lines = [f"# litassist conversation\n\n_Exported {stamp}._\n"]
    for turn in turns:
        answer = turn.answer
        lines.append(f"## {turn.question}\n")
        if turn.scope:
            lines.append(f"_Asked about the topic “{turn.scope.label}” ({len(turn.scope.paper_ids)} papers)._\n")
        if answer is not None:
            model = f"{answer.provider}" + (f" / {answer.model}" if answer.model else "")
            note = " (extractive: quoted from the abstracts)" if answer.extractive else ""
            lines.append(f"{answer_body(answer)}\n")
            if answer.citations:
                refs = "\n".join(f"- {reference_line(c.paper, c.number)}" for c in answer.citations)
                lines.append(f"**References**\n\n{refs}\n")
            lines.append(f"_Answered by {model}{note}._\n")
        elif turn.error:
            lines.append(f"> Error: {turn.error}\n")
    return "\n".join(lines)
