"""The conversation: its turns, the history follow-ups need, and its export as Markdown and BibTeX.

Kept out of app.py so the classes survive reruns (the script is re-executed, this module is not) and so the
export is unit-tested. The assistant package has no BibTeX writer (only a parser), so the few fields a
reference manager needs are formatted here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

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


def history(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """Earlier answered turns in the shape `Assistant.stream` takes, so follow-ups are understood."""
    messages = []
    for turn in turns:
        if turn.answer is not None:
            messages += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": turn.answer.text}]
    return messages


_BIBTEX_SPECIAL = re.compile(r"([&%$#_{}])")
_KEY_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset({"a", "an", "the", "on", "of", "in", "for", "and", "to", "with", "towards", "toward"})


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _KEY_WORD.findall(folded)


def _escape(value: str) -> str:
    """Characters that break or change a BibTeX field are escaped; the rest is left as UTF-8 (biber reads it)."""
    return _BIBTEX_SPECIAL.sub(r"\\\1", value).replace("~", r"\textasciitilde{}")


def citation_key(paper: Paper) -> str:
    """A readable key: first author's last name, year, first meaningful title word (e.g. `guo2023scalable`)."""
    surname = _ascii_words(paper.authors[0].split(",")[0].split()[-1]) if paper.authors else []
    title = [w for w in _ascii_words(paper.title) if w not in _STOP_WORDS]
    year = str(paper.year) if paper.year else ""
    return "".join([(surname or ["anon"])[0], year, (title or ["paper"])[0]])


def bibtex_entry(paper: Paper, key: str) -> str:
    """One entry: @article when there is a venue, @misc (with the arXiv eprint when known) otherwise."""
    fields: list[tuple[str, str]] = [("title", "{" + _escape(paper.title) + "}")]
    if paper.authors:
        fields.append(("author", _escape(" and ".join(paper.authors))))
    if paper.year:
        fields.append(("year", str(paper.year)))
    if paper.venue:
        fields.append(("journal", _escape(paper.venue)))
    if paper.doi:
        fields.append(("doi", paper.doi))
    if paper.arxiv_id:
        fields += [("eprint", paper.arxiv_id), ("archiveprefix", "arXiv")]
    if paper.url:
        fields.append(("url", paper.url))
    if paper.abstract:
        fields.append(("abstract", _escape(paper.abstract)))
    kind = "article" if paper.venue else "misc"
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def bibtex(papers: Iterable[Paper]) -> str:
    """Entries for distinct papers, in the order given, with keys made unique (a, b, ... suffixes)."""
    entries, used, seen = [], set(), set()
    for paper in papers:
        if paper.paper_id in seen:
            continue
        seen.add(paper.paper_id)
        base = key = citation_key(paper)
        suffix = ord("a")
        while key in used:
            key, suffix = f"{base}{chr(suffix)}", suffix + 1
        used.add(key)
        entries.append(bibtex_entry(paper, key))
    return "\n".join(entries)


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
