"""What each citation of a cited text rests on, for those who show or export it (the app, conversation exports).

The agent and the cluster summarizer fill `CitedText.claims` (per cited sentence, per citation, the supporting
spans of the abstract and a support score; see `citations.support_claims`). A text built without them (by hand,
through the API) gets them derived here with the same sentence and quote rules: a claim that quotes its source
verbatim (as every extractive answer does) rests on that quoted sentence; a paraphrase gets no span, so nothing
is highlighted that was not located.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .citations import (
    BULLET,
    CitedText,
    Claim,
    ClaimSupport,
    Marker,
    Span,
    claim_core,
    claim_spans,
    in_quote,
    verbatim_spans,
)

_RENDERED_MARKER = re.compile(r"\[(\d+)\]")  # checked texts write every citation as [n] (adjacent: [1][2])


@dataclass(frozen=True)
class MarkerClaim:
    """A citation marker in the body: where it is, the number it names, and the claim it belongs to."""

    start: int
    end: int
    numbers: tuple[int, ...]
    claim: int | None


def rendered_markers(text: CitedText) -> list[Marker]:
    """The citation markers of a checked text's body: each `[n]` naming one of its citations, outside its quotes
    (a "[2]" quoted from a paper is that paper's reference, not a citation of this text's [2])."""
    known = {c.number for c in text.citations}
    return [Marker(m.start(), m.end(), [int(m.group(1))]) for m in _RENDERED_MARKER.finditer(text.body)
            if int(m.group(1)) in known and not in_quote(m.start(), text.quoted)]


def claims(text: CitedText) -> list[Claim]:
    """The text's claims: the ones it carries, else derived from its sentences (see module)."""
    return text.claims or derive_claims(text)


def derive_claims(text: CitedText) -> list[Claim]:
    """One claim per sentence that carries citation markers; a citation's span is the claim's quoted sentence
    located in the cited abstract."""
    papers = {c.number: c for c in text.citations}
    content = text.body
    found = []
    for start, end, numbers in claim_spans(content, rendered_markers(text)):
        core = claim_core(content[start:end], text.quoted, start)
        supports = []
        for number in numbers:
            spans = verbatim_spans(core, papers[number].paper.abstract)
            supports.append(ClaimSupport(number=number, paper_id=papers[number].paper_id, spans=spans,
                                         support=1.0 if spans else None))
        found.append(Claim(text=content[start:end], start=start, end=end, citations=supports))
    return found


def claim_text(claim: Claim) -> str:
    """A claim as a line to read: its sentence without a list bullet (markers kept)."""
    return BULLET.sub("", claim.text).strip()


def marker_claims(text: CitedText) -> list[MarkerClaim]:
    """Every marker of the body with the index of the claim (in `claims(text)`) it belongs to."""
    found = claims(text)
    out = []
    for marker in rendered_markers(text):
        claim = next((i for i, c in enumerate(found) if c.start <= marker.start < c.end), None)
        out.append(MarkerClaim(start=marker.start, end=marker.end, numbers=tuple(marker.numbers), claim=claim))
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
