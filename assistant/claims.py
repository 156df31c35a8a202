"""What each citation of a cited text rests on: its claims and the spans of the cited abstracts behind them.

The agent may fill `CitedText.claims` (per cited sentence, per citation, the supporting spans of the abstract).
Where it has not (older saved answers, texts written before span checking), the claims are derived here from
the text itself: each sentence carrying `[n]` markers is a claim, and a claim that quotes its source verbatim
(as every extractive answer does) gets that quoted sentence as its span. Paraphrases get no span: nothing is
highlighted that was not located. The app highlights these spans, and conversation exports quote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .citations import CitedText, Claim, ClaimSupport, Span
from .index import sentence_spans

MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_QUOTES = "\"'“”‘’«» "
_WS = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")


@dataclass(frozen=True)
class Marker:
    """A citation marker in the body: where it is, the numbers it names, and the claim it belongs to."""

    start: int
    end: int
    numbers: tuple[int, ...]
    claim: int | None


def body(text: CitedText) -> str:
    """The text without the reference list the agent appends (claims and markers are offsets into this)."""
    if text.references and text.text.endswith(text.references):
        return text.text[: len(text.text) - len(text.references)].rstrip()
    return text.text.rstrip()


def markers(text: str) -> list[tuple[int, int, tuple[int, ...]]]:
    """(start, end, numbers) of every citation marker: `[3]`, `[1, 2]`, `[1; 4]`."""
    return [(m.start(), m.end(), tuple(int(n) for n in re.split(r"\s*[,;]\s*", m.group(1))))
            for m in MARKER.finditer(text)]


def claims(text: CitedText) -> list[Claim]:
    """The text's claims: the agent's own when it filled them, else derived from its sentences (see module)."""
    return text.claims or derive_claims(text)


def derive_claims(text: CitedText) -> list[Claim]:
    """One claim per sentence that carries citation markers; a citation's span is the claim's quoted sentence
    located in the cited abstract (exactly, or up to whitespace)."""
    papers = {c.number: c for c in text.citations}
    content = body(text)
    found: list[Claim] = []
    for start, end in _sentences(content):
        sentence = content[start:end]
        numbers = [n for _, _, ns in markers(sentence) for n in ns]
        if not numbers:
            continue
        quoted = _unquote(_SPACE_BEFORE_PUNCT.sub(r"\1", MARKER.sub("", _BULLET.sub("", sentence))))
        supports = []
        for number in dict.fromkeys(numbers):
            citation = papers.get(number)
            if citation is None:
                continue
            spans = locate(citation.paper.abstract, quoted)
            supports.append(ClaimSupport(number=number, paper_id=citation.paper_id, spans=spans))
        found.append(Claim(text=sentence, start=start, end=end, citations=supports))
    return found


def claim_text(claim: Claim) -> str:
    """A claim as a line to read: its sentence without a list bullet (markers kept)."""
    return _BULLET.sub("", claim.text).strip()


def _unquote(text: str) -> str:
    return text.strip().strip(_QUOTES).strip()


def _sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans per line; a run of bare markers (`problem. [1]`) belongs to the sentence before it."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for line in text.split("\n"):
        line_spans: list[tuple[int, int]] = []
        for start, end in sentence_spans(line):
            if line_spans and not MARKER.sub("", line[start:end]).strip():
                line_spans[-1] = (line_spans[-1][0], end)
            else:
                line_spans.append((start, end))
        spans += [(offset + s, offset + e) for s, e in line_spans]
        offset += len(line) + 1
    return spans


def locate(abstract: str, quoted: str) -> list[Span]:
    """Where `quoted` sits in `abstract`: the exact stretch, else the stretch equal up to whitespace, else the
    abstract's sentences that the quote contains whole (a quote of several sentences); [] when not quoted."""
    if len(quoted.split()) < 4:
        return []
    at = abstract.find(quoted)
    if at >= 0:
        return [Span(start=at, end=at + len(quoted), text=quoted)]
    pattern = r"\s+".join(re.escape(word) for word in quoted.split())
    match = re.search(pattern, abstract)
    if match:
        return [Span(start=match.start(), end=match.end(), text=match.group(0))]
    flat = _WS.sub(" ", quoted)
    return [Span(start=s, end=e, text=abstract[s:e]) for s, e in sentence_spans(abstract)
            if len(abstract[s:e].split()) >= 4 and _WS.sub(" ", abstract[s:e]) in flat]


def marker_claims(text: CitedText) -> list[Marker]:
    """Every marker of the body with the index of the claim (in `claims(text)`) it belongs to."""
    found = claims(text)
    out = []
    for start, end, numbers in markers(body(text)):
        claim = next((i for i, c in enumerate(found) if c.start <= start < c.end), None)
        out.append(Marker(start=start, end=end, numbers=numbers, claim=claim))
    return out


def citation_spans(text: CitedText, number: int) -> tuple[list[Span], bool]:
    """(spans, weak) behind citation `number` across the whole text: the citation's own spans when filled,
    else the union of its claims' spans, in abstract order."""
    citation = next((c for c in text.citations if c.number == number), None)
    if citation is None:
        return [], False
    if citation.spans:
        return sorted(citation.spans, key=lambda s: s.start), citation.weak
    supports = [s for claim in claims(text) for s in claim.citations if s.number == number]
    unique = {(s.start, s.end): s for support in supports for s in support.spans}
    return [unique[key] for key in sorted(unique)], bool(supports) and all(s.weak for s in supports)
