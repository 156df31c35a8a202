"""Citations: the evidence a text may cite, checking its [n] markers against it, numbering, the reference list,
and the exact sentences of the sources that each cited sentence rests on.

Shared by the agent (answers) and the clusters (summaries): both number their evidence in a Ledger and run
what a model or an extractive rule wrote through the same marker grammar, so nothing uncheckable reaches the user.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, model_serializer

from .config import Settings
from .corpus import NO_ABSTRACT, Paper
from .corpus.display import display_title
from .corpus.pdf import place
from .index import count_tokens, paragraph_sentence_spans, sentence_spans
from .prompting import quote_attribute, quote_data
from .text import term_coverage

if TYPE_CHECKING:
    from .index import Embedder

# A bracket group on one line, or two single-number markers joined by a dash ("[1]-[3]", "[1] – [3]").
_MARKER = re.compile(r"\[(?P<a>\d+)\](?:-|\s?[–—]\s?)\[(?P<b>\d+)\]|\[(?P<body>[^\[\]\n]{1,300})\]")
_RANGE = re.compile(r"(\d+)\s*[-–—]\s*(\d+)")
_ID_LIKE = re.compile(r"[\w:.\-/~]+")
_DECIMAL = re.compile(r"\d*\.\d+")
MAX_RANGE = 50  # "[1-3]" expands; a "range" wider than this is not a citation list, it counts as one bad marker
WEAK_SUPPORT_BELOW: float = Settings.model_fields["weak_support_below"].default  # where no settings are at hand
# support = this * cosine + the rest * the share of the claim's terms in the sentence. Chosen on SciFact dev claims
# cited to their gold paper vs the best non-gold paper (benchmarks/claim_support.py): 0.75 finds a rationale
# sentence for 54% of claims and separates gold from non-gold best (AUC 0.79; cosine alone 0.76, terms alone 0.74).
SUPPORT_DENSE_WEIGHT = 0.75


class Evidence(BaseModel):
    """A paper this turn may cite, with the passage that was found (`location`: where a passage of its PDF's
    body is, see Chunk.location(); {} for abstract text)."""

    number: int
    paper: Paper
    passage: str
    similarity: float | None = None
    location: dict[str, Any] = Field(default_factory=dict)


class Span(BaseModel):
    """A stretch of a paper's abstract (`paper.abstract[start:end] == text`), or, with `page`, of the text of
    that page of its PDF (corpus.pdf.PageText.text[start:end] == text), with the boxes it covers there (`rects`:
    [x0, y0, x1, y1] as fractions of the page from its top-left corner). Abstract spans have neither key."""

    start: int
    end: int
    text: str
    page: int | None = None
    rects: list[list[float]] | None = None

    @model_serializer(mode="wrap")
    def _without_page(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        return {key: value for key, value in data.items() if value is not None or key not in ("page", "rects")}


def mark_spans(text: str, spans: Sequence[Span], escape: Callable[[str], str]) -> str:
    """`text` escaped by `escape`, with each span wrapped in <mark> (overlapping or unsorted spans merged):
    how the app and the HTML report show the sentences a claim rests on."""
    merged: list[list[int]] = []
    for span in sorted(spans, key=lambda s: s.start):
        start, end = max(0, span.start), min(len(text), span.end)
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, last = [], 0
    for start, end in merged:
        out += [escape(text[last:start]), "<mark>", escape(text[start:end]), "</mark>"]
        last = end
    out.append(escape(text[last:]))
    return "".join(out)


class ClaimSupport(BaseModel):
    """One citation of one claim: the sentence(s) of the cited abstract the claim rests on, and how well they
    support it (0..1; 1.0 for a verbatim quote); `weak` when even the best sentence hardly supports it."""

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
    """A cited paper: its number, and the spans of its abstract that the text's claims citing it rest on;
    `support` is the weakest of those claims' support, `weak` whether any of them is weakly supported."""

    number: int
    paper_id: str
    title: str
    paper: Paper
    spans: list[Span] = Field(default_factory=list)
    support: float | None = None
    weak: bool = False
    passage: str = ""  # the evidence's passage (searched when it is PDF body text); kept, so a saved citation is whole
    location: dict[str, Any] = Field(default_factory=dict)  # where the passage is in the PDF (kept, like the passage)

    def pages(self) -> list[int]:
        """The PDF pages its spans are on, in order."""
        return sorted({span.page for span in self.spans if span.page is not None})


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    seconds: float = 0.0


Quoted = list[tuple[int, int]]  # (start, end) ranges of a text that quote a paper: brackets in them are its text


class CitedText(BaseModel):
    """Text whose [n] markers were checked against its evidence, with who wrote it and at what cost.

    `text` is the body followed by `references` (the reference list); claims' offsets are into the body,
    which is also `text[:len(body)]`. `quoted`: the body's ranges that quote a paper verbatim (extractive
    texts); a "[2]" inside one is the paper's own reference, never a citation (see claims.rendered_markers).

    `quoted` was added after conversations and topic summaries were first saved; a record saved before has no
    such key and loads with none (`[]`), as it was shown then. No migration step is needed: nothing is renamed or
    reshaped, and the ranges cannot be recovered from an old record's text (a bracket in a quote reads the same as
    a citation; that is the point), so a step could only write the same default."""

    text: str
    references: str = ""
    citations: list[Citation] = Field(default_factory=list)
    provider: str
    model: str | None = None
    extractive: bool = False
    removed_citations: int = 0
    usage: Usage = Field(default_factory=Usage)
    claims: list[Claim] = Field(default_factory=list)
    quoted: Quoted = Field(default_factory=list)

    @property
    def body(self) -> str:
        return self.text.removesuffix(self.references)


class Ledger:
    """This turn's evidence, numbered in the order papers were first retrieved; [n] refers to it.

    `reserved`: numbers papers already have in the conversation (paper id -> number); such a paper keeps its
    number, new papers are numbered after the highest one. `scope`: papers outside it are never admitted, so
    nothing outside a turn's bounds can be cited, whichever tool found it."""

    def __init__(self, scope: Callable[[Paper], bool] | None = None, reserved: Mapping[str, int] | None = None):
        self.items: dict[str, Evidence] = {}
        self.scope = scope
        self.reserved = dict(reserved or {})
        self._next = max(self.reserved.values(), default=0) + 1

    def add(self, paper: Paper, passage: str, similarity: float | None = None,
            location: dict[str, Any] | None = None) -> Evidence | None:
        """The paper's evidence entry (made on first sight), or None when the paper is outside the scope."""
        if paper.paper_id not in self.items:
            if self.scope is not None and not self.scope(paper):
                return None
            number = self.reserved.get(paper.paper_id)
            if number is None:
                number, self._next = self._next, self._next + 1
            self.items[paper.paper_id] = Evidence(number=number, paper=paper, passage=passage, similarity=similarity,
                                                  location=location or {})
        return self.items[paper.paper_id]

    def by_number(self) -> dict[int, Evidence]:
        return {e.number: e for e in self.items.values()}

    def resolve(self, reference: str) -> Evidence | None:
        """The evidence a model means by `reference`: its number ("3"), its paper id, or the id as shown quoted."""
        reference = reference.strip().strip("[]")
        if reference.isdigit() and int(reference) in self.by_number():
            return self.by_number()[int(reference)]
        return self.items.get(reference) or next(
            (e for pid, e in self.items.items() if quote_attribute(pid) == reference), None)

    def render(self, evidence: Sequence[Evidence], budget_tokens: int, full: bool = False) -> str:
        """Evidence blocks for the model, cut to fit `budget_tokens` (whole blocks first, then trimmed).

        Every field is quoted as data: nothing in an id, title, author list, venue or abstract can close the
        block or open a tag."""
        blocks: list[str] = []
        used = 0
        for e in evidence:
            body = (e.paper.abstract if full and not e.location else e.passage) if e.paper.has_abstract or e.location \
                else f"({NO_ABSTRACT}: only the title and details above are known of this paper)"
            where = f"\n{quote_data(_where(e.location))}" if e.location else ""
            block = (f'<evidence n="{e.number}" paper_id="{quote_attribute(e.paper.paper_id)}">\n'
                     f"{quote_data(display_title(e.paper))}\n{quote_data(_byline(e.paper))}{where}\n{quote_data(body)}\n</evidence>")
            size = count_tokens(block)
            if used + size > budget_tokens:
                if blocks:
                    break
                block = block[: max(200, budget_tokens * 3)] + "…\n</evidence>"
                size = count_tokens(block)
            blocks.append(block)
            used += size
        return "\n".join(blocks) if blocks else "(no evidence found)"

    def renumber(self, numbers: Mapping[str, int]) -> None:
        """Give cited papers their final numbers (paper id -> number); reserved papers keep theirs and the rest
        follow after the highest number in use, in the order they were retrieved."""
        taken = {**self.reserved, **numbers}
        following = max(taken.values(), default=0) + 1
        for pid, evidence in self.items.items():
            if pid in taken:
                evidence.number = taken[pid]
            else:
                evidence.number, following = following, following + 1


def _where(location: dict[str, Any]) -> str:
    """A body passage's place for the model and the reader: "p. 4, section 3 Method"."""
    return ", ".join(part for part in (f"p. {location['page']}", location.get("section") and
                                       f"section {location['section']}") if part)


def _byline(paper: Paper) -> str:
    parts = [paper.when or "n.d.", paper.names(), paper.venue or ""]
    return " · ".join(p for p in parts if p)


# --- the marker grammar ----------------------------------------------------------------------------------


@dataclass
class Marker:
    """A citation in a text: where it is, the evidence numbers it validly names (in order), and how many of
    its members named nothing this turn retrieved."""

    start: int
    end: int
    numbers: list[int] = field(default_factory=list)
    invalid: int = 0


def find_markers(text: str, ledger: Ledger, protected: Sequence[tuple[int, int]] = ()) -> list[Marker]:
    """Every citation in `text`: `[3]`, lists `[1, 2]` / `[1; 3]`, ranges `[1-3]` / `[1–3]` / `[1]–[3]`, and
    paper ids `[doi:…]`, each member checked against the ledger.

    Not citations (left as text): brackets inside `protected` ranges (quoted sentences), bracketed words
    (`[CI]`, `[HR]`), numbers that cannot be citations (`[0]`, `[0.5, 1]`), Markdown links (`[text](url)`),
    and a bracket glued to a word (`x[0]`, `a[i]`) unless every member names this turn's evidence."""
    numbers = ledger.by_number()
    markers = []
    for match in _MARKER.finditer(text):
        start, end = match.span()
        if in_quote(start, protected):
            continue
        if match.group("body") is None:
            members: list[str | tuple[int, int]] = [(int(match.group("a")), int(match.group("b")))]
        else:
            if text[end : end + 1] == "(":
                continue
            parsed = _members(match.group("body"), ledger)
            if parsed is None:
                continue
            members = parsed
        marker = Marker(start, end)
        for member in members:
            for number in _resolve(member, numbers, ledger):
                if number is None:
                    marker.invalid += 1
                elif number not in marker.numbers:
                    marker.numbers.append(number)
        glued = start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")
        if glued and marker.invalid:
            continue
        markers.append(marker)
    return markers


def quote_lines(template: str, quotes: Sequence[tuple[str, int]]) -> tuple[str, Quoted]:
    """`template` with its one "\x00" replaced by a line "- {quote} [{number}]" per quote (an offline answer's or
    an extractive summary's list), and where each quote sits in the result: the ranges `cite` protects."""
    offset, lines, ranges = template.index("\x00"), [], []
    for quote, number in quotes:
        line = f"- {quote} [{number}]"
        ranges.append((offset + 2, offset + 2 + len(quote)))
        lines.append(line)
        offset += len(line) + 1
    return template.replace("\x00", "\n".join(lines)), ranges


def in_quote(position: int, quoted: Sequence[tuple[int, int]]) -> bool:
    """Whether `position` is inside one of the `quoted` ranges (a text has a handful: a scan is enough)."""
    return any(start <= position < end for start, end in quoted)


def _members(body: str, ledger: Ledger) -> list[str | tuple[int, int]] | None:
    """The members of a bracket's content, or None when the bracket is text rather than a citation."""
    members: list[str | tuple[int, int]] = []
    citation_like = False
    for token in (t.strip() for t in re.split(r"[,;]", body)):
        ranged = _RANGE.fullmatch(token)
        if token.isdigit():
            if int(token) == 0:
                return None
            citation_like = True
            members.append(token)
        elif ranged:
            citation_like = True
            members.append((int(ranged.group(1)), int(ranged.group(2))))
        elif _DECIMAL.fullmatch(token) or not _ID_LIKE.fullmatch(token):
            return None
        else:
            citation_like |= token in ledger.items or bool(re.search(r"[\d:]", token))
            members.append(token)
    return members if citation_like else None


def _resolve(member: str | tuple[int, int], numbers: Mapping[int, Evidence], ledger: Ledger) -> list[int | None]:
    """Evidence numbers a member names (None for each that names nothing)."""
    if isinstance(member, tuple):
        low, high = member
        if high < low or high - low > MAX_RANGE:
            return [None]
        return [n if n in numbers else None for n in range(low, high + 1)]
    if member.isdigit() and int(member) in numbers:
        return [int(member)]
    evidence = ledger.items.get(member)
    return [evidence.number if evidence else None]


def render_markers(text: str, markers: Sequence[Marker], final: Mapping[int, int],
                   quoted: Sequence[tuple[int, int]] = ()) -> tuple[str, list[Marker], Quoted]:
    """The text with each marker written as [n][m] in final numbers (`final`: number -> final number; a number
    not in it is dropped); a marker naming nothing left is removed with the space before it when punctuation
    follows ("made up [99]." -> "made up."). Returns the text, the markers' new positions and the `quoted`
    ranges moved with the text around them (they hold no marker, so each moves as one piece)."""
    out, placed, position = "", [], 0
    moved: list[tuple[int, int]] = [(0, 0)]  # (position in text, position in out) where text is copied on from
    for marker in markers:
        out += text[position : marker.start]
        position = marker.end
        shown = list(dict.fromkeys(final[n] for n in marker.numbers if n in final))
        if shown:
            written = "".join(f"[{n}]" for n in shown)
            placed.append(Marker(len(out), len(out) + len(written), shown))
            out += written
        else:
            spaces = len(text[position:]) - len(text[position:].lstrip(" \t"))
            following = text[position + spaces : position + spaces + 1]
            if following in ("", "\n") or following in ".,;:!?)":
                out = out.rstrip(" \t")
                position += spaces
            elif out.endswith((" ", "\t")):
                position += spaces
        moved.append((position, len(out)))
    out += text[position:]
    return out, placed, [_moved(start, end, moved) for start, end in quoted]


def _moved(start: int, end: int, moved: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """A range of the text where render_markers put it: shifted as the last copy point at or before its start."""
    source, target = moved[bisect_right(moved, start, key=lambda point: point[0]) - 1]
    return target + start - source, target + end - source


@dataclass
class Cited:
    """A checked, numbered text: the citations in order of first appearance, where each marker sits and where
    the quotes are (`quoted`: the protected ranges, moved with the text)."""

    text: str
    citations: list[Citation]
    markers: list[Marker]
    removed: int
    quoted: Quoted = field(default_factory=list)


def cite(text: str, ledger: Ledger, protected: Sequence[tuple[int, int]] = ()) -> Cited:
    """Check the text's markers and number its citations by first appearance, contiguous from [1] — or, in a
    conversation, from the number after the highest one used so far, with papers cited earlier keeping
    theirs. The ledger's evidence takes the same numbers.

    `protected`: ranges of `text` as given that quote a paper (their brackets are its text); the result is
    stripped, and `Cited.quoted` has them where they are in it."""
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    protected = [(max(0, start - lead), end - lead) for start, end in protected]
    markers = find_markers(text, ledger, protected)
    numbers = ledger.by_number()
    final: dict[int, int] = {}
    following = max(ledger.reserved.values(), default=0) + 1
    for number in dict.fromkeys(n for m in markers for n in m.numbers):
        paper_id = numbers[number].paper.paper_id
        if paper_id in ledger.reserved:
            final[number] = ledger.reserved[paper_id]
        else:
            final[number], following = following, following + 1
    rendered, placed, quoted = render_markers(text, markers, final, protected)
    citations = [
        Citation(number=final[n], paper_id=numbers[n].paper.paper_id, title=numbers[n].paper.title,
                 paper=numbers[n].paper, passage=numbers[n].passage, location=numbers[n].location)
        for n in final
    ]
    ledger.renumber({c.paper_id: c.number for c in citations})
    rendered = rendered.rstrip()
    return Cited(rendered, citations, placed, sum(m.invalid for m in markers),
                 [(start, min(end, len(rendered))) for start, end in quoted])


def page_note(pages: Sequence[int]) -> str:
    """", p. 4" / ", pp. 4, 7": the PDF pages a reference's cited sentences are on ("" for abstract text)."""
    if not pages:
        return ""
    return f", p. {pages[0]}" if len(pages) == 1 else f", pp. {', '.join(map(str, pages))}"


def reference_list(citations: Sequence[Citation]) -> str:
    """The references under a cited text; a title made from the abstract is marked ("Untitled — …")."""
    lines = [f"[{c.number}] {display_title(c.paper)} ({c.paper.when or 'n.d.'}) — {c.paper_id}{page_note(c.pages())}"
             for c in citations]
    return ("\n\nReferences\n" + "\n".join(lines)) if lines else ""


# --- what each cited sentence rests on ---------------------------------------------------------------------


BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")  # a list item's bullet or number
_LEADING_MARKERS = re.compile(r"(?:\[\d+\])+")


def claim_spans(text: str, markers: Sequence[Marker]) -> list[tuple[int, int, list[int]]]:
    """(start, end, cited numbers) of each sentence of `text` that holds a marker. Markers written after the
    full stop ("… scales. [2]") belong to the sentence before them."""
    sentences: list[list[int]] = []
    offset = 0
    for line in text.split("\n"):
        for start, end in sentence_spans(line):
            start, end = start + offset, end + offset
            lead = _LEADING_MARKERS.match(text, start)
            if lead and sentences and sentences[-1][1] <= start and text[sentences[-1][1]:start].strip() == "":
                sentences[-1][1] = lead.end()
                start = lead.end()
                while start < end and text[start].isspace():
                    start += 1
            if start < end:
                sentences.append([start, end])
        offset += len(line) + 1
    claims = []
    for start, end in sentences:
        cited = [n for m in markers if start <= m.start < end for n in m.numbers]
        if cited:
            claims.append((start, end, list(dict.fromkeys(cited))))
    return claims


def claim_core(sentence: str, quoted: Sequence[tuple[int, int]] = (), offset: int = 0) -> str:
    """The words a claim asserts: markers, bullets, wrapping quotes and the ellipsis of a cut quote removed. A
    bracket inside `quoted` (ranges of the text the sentence starts at `offset` of) is the quoted paper's own text
    and stays, so the quote is found whole in its source."""
    core = _MARKER.sub(lambda m: m.group() if in_quote(offset + m.start(), quoted) else "", sentence)
    core = BULLET.sub("", core).strip().strip("\"“”'‘’*…").strip()
    return re.sub(r"\s+([.,;:!?])", r"\1", core)


def support_claims(cited: Cited, embedder: Embedder | None, weak_below: float) -> list[Claim]:
    """Each cited sentence of `cited.text` with, per citation, the span(s) it rests on: of the cited abstract, or
    of the cited passage of the paper's PDF (spans on its pages, see `_sources`).

    A sentence (or a long enough part of it) found verbatim in the cited text rests on exactly that span,
    support 1.0. Otherwise every sentence of it is scored by SUPPORT_DENSE_WEIGHT * cosine (the
    embedder already loaded) + the rest * `term_coverage(claim, sentence)` (the share of the claim's terms in it);
    the best one is the span, with the runner-up when it is nearly as good, and a best score under
    `weak_below` marks the claim weak for that citation (only with an embedder: the threshold is calibrated on
    that score). The citations get the union of their claims' spans."""
    by_number = {c.number: c for c in cited.citations}
    found = [(start, end, numbers, claim_core(cited.text[start:end], cited.quoted, start)) for start, end, numbers in
             claim_spans(cited.text, cited.markers)]
    pending: list[tuple[int, Citation]] = []
    supports: dict[tuple[int, int], ClaimSupport] = {}
    for index, (_, _, numbers, core) in enumerate(found):
        for number in numbers:
            citation = by_number[number]
            spans = next((_placed(citation, source, found_spans) for source, text in enumerate(_sources(citation))
                          if (found_spans := verbatim_spans(core, text))), [])
            if spans:
                supports[(index, number)] = ClaimSupport(number=number, paper_id=citation.paper_id, spans=spans,
                                                         support=1.0)
            else:
                pending.append((index, citation))
    if pending:
        _score(found, pending, supports, embedder, weak_below)
    claims = [
        Claim(text=cited.text[start:end], start=start, end=end, citations=[supports[(i, n)] for n in numbers])
        for i, (start, end, numbers, _) in enumerate(found)
    ]
    for citation in cited.citations:
        mine = [s for claim in claims for s in claim.citations if s.number == citation.number]
        by_place = {(s.page or 0, s.start, s.end): s for support in mine for s in support.spans}
        citation.spans = [by_place[key] for key in sorted(by_place)]
        scores = [s.support for s in mine if s.support is not None]
        citation.support = min(scores) if scores else None
        citation.weak = any(s.weak for s in mine)
    return claims


def _sources(citation: Citation) -> list[str]:
    """The texts a citation's claims may rest on: the abstract, and the passage found in the paper's PDF body."""
    body = [citation.passage] if citation.location and citation.paper.pdf is not None else []
    return [citation.paper.abstract, *body]


def _placed(citation: Citation, source: int, spans: Sequence[Span]) -> list[Span]:
    """Spans of `_sources(citation)[source]` as spans of what a reader sees: the abstract's as they are, the PDF
    passage's as spans on its pages, with their boxes."""
    if source == 0:
        return list(spans)
    assert citation.paper.pdf is not None
    return [Span(start=piece.start, end=piece.end, text=piece.text, page=piece.page, rects=piece.rects)
            for span in spans
            for piece in place(citation.paper.pdf, citation.location, citation.passage, span.start, span.end)]


def verbatim_spans(core: str, abstract: str) -> list[Span]:
    """Spans of the abstract that `core` quotes word for word (line breaks and runs of spaces may differ): the
    whole quote, else each abstract sentence of four words or more that the quote contains. [] when it is not a
    quote (under four words, or paraphrased)."""
    core = core.rstrip(".;:")
    if len(core.split()) >= 4:
        match = re.search(r"\s+".join(re.escape(word) for word in core.split()), abstract)
        if match:
            start, end = match.span()
            end += abstract[end : end + 1] in (".", "!", "?")  # the sentence's own full stop belongs to it
            return [Span(start=start, end=end, text=abstract[start:end])]
    flat = " ".join(core.split())
    spans = []
    for start, end in sentence_spans(abstract):
        sentence = abstract[start:end]
        if len(sentence.split()) >= 4 and " ".join(sentence.split()).rstrip(".;:") in flat:
            spans.append(Span(start=start, end=end, text=sentence))
    return spans


def _score(
    found: Sequence[tuple[int, int, list[int], str]],
    pending: Sequence[tuple[int, Citation]],
    supports: dict[tuple[int, int], ClaimSupport],
    embedder: Embedder | None,
    weak_below: float,
) -> None:
    """Best-supporting sentences (of the abstract or the PDF passage) for claims that do not quote their source
    (one embedding batch)."""
    sources = {citation.number: _sources(citation) for _, citation in pending}
    sentences = {number: [(i, a, b) for i, text in enumerate(texts)
                          for a, b in (paragraph_sentence_spans(text) if i else sentence_spans(text))]
                 for number, texts in sources.items()}
    claim_texts = sorted({found[i][3] for i, _ in pending})
    sentence_texts = sorted({sources[n][i][a:b] for n, spans in sentences.items() for i, a, b in spans})
    dense_weight, vectors, row = 0.0, None, {}
    if embedder is not None and claim_texts and sentence_texts:  # without an embedder: terms only
        vectors = embedder.embed_documents(claim_texts + sentence_texts)
        row = {t: i for i, t in enumerate(claim_texts + sentence_texts)}
        dense_weight = SUPPORT_DENSE_WEIGHT

    def cosine(claim: str, sentence: str) -> float:
        return float(vectors[row[claim]] @ vectors[row[sentence]]) if vectors is not None else 0.0

    for index, citation in pending:
        core, texts = found[index][3], sources[citation.number]
        scored = sorted(
            ((dense_weight * max(0.0, cosine(core, texts[i][a:b]))
              + (1 - dense_weight) * term_coverage(core, texts[i][a:b]), i, a, b)
             for i, a, b in sentences[citation.number]),
            reverse=True,
        )
        if not scored:
            supports[(index, citation.number)] = ClaimSupport(number=citation.number, paper_id=citation.paper_id,
                                                              support=0.0, weak=True)
            continue
        best = scored[0][0]
        chosen = sorted((s for s in scored[:2] if s[0] >= best - 0.03 and s[0] > 0), key=lambda s: (s[1], s[2]))
        spans = [span for _, i, a, b in chosen
                 for span in _placed(citation, i, [Span(start=a, end=b, text=texts[i][a:b])])]
        supports[(index, citation.number)] = ClaimSupport(
            number=citation.number, paper_id=citation.paper_id, spans=spans, support=round(best, 3),
            weak=vectors is not None and best < weak_below)
