"""Citations: the evidence a text may cite, checking its [n] markers against it, and the reference list.

Shared by the agent (answers) and the clusters (summaries): both number their evidence in a Ledger and run
what a model or an extractive rule wrote through `check_citations`, so nothing uncheckable reaches the user.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, Field

from .corpus import Paper
from .index import count_tokens
from .llm import quote_data

_CITATION = re.compile(r"\[((?:\s*[\w:.\-/~]+\s*)(?:[,;]\s*[\w:.\-/~]+\s*)*)\]")


class Evidence(BaseModel):
    number: int
    paper: Paper
    passage: str
    similarity: float | None = None


class Span(BaseModel):
    """A stretch of a paper's abstract: `paper.abstract[start:end] == text`."""

    start: int
    end: int
    text: str


class ClaimSupport(BaseModel):
    """One citation of one claim: the sentence(s) of the cited abstract the claim rests on, and how well they
    support it (0..1); `weak` when even the best sentence hardly supports it."""

    number: int
    paper_id: str
    spans: list[Span] = Field(default_factory=list)
    support: float | None = None
    weak: bool = False


class Claim(BaseModel):
    """A cited sentence of the text (`text[start:end]` of the CitedText body) and what each of its citations
    rests on."""

    text: str
    start: int
    end: int
    citations: list[ClaimSupport] = Field(default_factory=list)


class Citation(BaseModel):
    """A cited paper: its number, and the spans of its abstract that the text's claims citing it rest on."""

    number: int
    paper_id: str
    title: str
    paper: Paper
    spans: list[Span] = Field(default_factory=list)
    support: float | None = None
    weak: bool = False


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    seconds: float = 0.0


class CitedText(BaseModel):
    """Text whose [n] markers were checked against its evidence, with who wrote it and at what cost."""

    text: str
    references: str = ""
    citations: list[Citation] = Field(default_factory=list)
    provider: str
    model: str | None = None
    extractive: bool = False
    removed_citations: int = 0
    usage: Usage = Field(default_factory=Usage)
    claims: list[Claim] = Field(default_factory=list)


class Ledger:
    """This turn's evidence, numbered in the order papers were first retrieved; [n] refers to it."""

    def __init__(self) -> None:
        self.items: dict[str, Evidence] = {}

    def add(self, paper: Paper, passage: str, similarity: float | None = None) -> Evidence:
        if paper.paper_id not in self.items:
            self.items[paper.paper_id] = Evidence(
                number=len(self.items) + 1, paper=paper, passage=passage, similarity=similarity
            )
        return self.items[paper.paper_id]

    def by_number(self) -> dict[int, Evidence]:
        return {e.number: e for e in self.items.values()}

    def render(self, evidence: Sequence[Evidence], budget_tokens: int, full: bool = False) -> str:
        """Evidence blocks for the model, cut to fit `budget_tokens` (whole blocks first, then trimmed)."""
        blocks, used = [], 0
        for e in evidence:
            year = f" year={e.paper.year}" if e.paper.year else ""
            body = e.paper.abstract if full else e.passage
            block = f'<evidence n="{e.number}" paper_id="{e.paper.paper_id}"{year}>\n{quote_data(e.paper.title)}\n{quote_data(body)}\n</evidence>'
            size = count_tokens(block)
            if used + size > budget_tokens:
                if blocks:
                    break
                block = block[: max(200, budget_tokens * 3)] + "…\n</evidence>"
                size = count_tokens(block)
            blocks.append(block)
            used += size
        return "\n".join(blocks) if blocks else "(no evidence found)"


def check_citations(text: str, ledger: Ledger) -> tuple[str, list[int], int]:
    """Keep markers that name this turn's evidence (by number or paper id); drop and count the rest.

    A bracket is a citation attempt when it names evidence or holds a digit or an id prefix (`[7]`,
    `[Smith2020]`, `[doi:…]`); bracketed words such as the `[CI]` or `[HR]` of quoted abstracts are text.
    """
    numbers = ledger.by_number()
    by_id = {pid: e.number for pid, e in ledger.items.items()}
    cited: list[int] = []
    removed = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal removed
        tokens = [token.strip() for token in re.split(r"[,;]", match.group(1))]
        if not any(token in by_id or re.search(r"[\d:]", token) for token in tokens):
            return match.group(0)
        kept = []
        for token in tokens:
            number = int(token) if token.isdigit() else by_id.get(token)
            if number in numbers:
                kept.append(number)
                if number not in cited:
                    cited.append(number)
            else:
                removed += 1
        return "".join(f"[{n}]" for n in kept)

    cleaned = _CITATION.sub(replace, text)
    cleaned = re.sub(r"[ \t]+([.,;:])", r"\1", cleaned)
    return cleaned.strip(), cited, removed


def references(cited: Sequence[int], ledger: Ledger) -> tuple[str, list[Citation]]:
    numbers = ledger.by_number()
    citations = [
        Citation(number=n, paper_id=numbers[n].paper.paper_id, title=numbers[n].paper.title, paper=numbers[n].paper)
        for n in sorted(cited)
    ]
    lines = []
    for c in citations:
        year = c.paper.year or c.paper.date or "n.d."
        lines.append(f"[{c.number}] {c.title} ({year}) — {c.paper_id}")
    return ("\n\nReferences\n" + "\n".join(lines)) if lines else "", citations
