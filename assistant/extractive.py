"""The offline (extractive) answer's choice of sentences: which abstract sentences answer a question, and how
each is quoted so that it reads on its own.

A sentence scores by its closeness to the question (cosine), the share of the question's words in it, its paper's
retrieval rank, and whether it speaks to the *aspect* the question asks about (its evaluation, method, a result or
number, a limitation, the data, a comparison; see ASPECTS). A question of several parts ("What is CacheGen and how
is it evaluated?") gets the best sentence of each part. A sentence that leans on one the reader cannot see ("This
approach…", "For this reason, we propose…") is quoted with the sentence before it, or not at all; a quote never
runs past MAX_QUOTE_CHARS (an abstract without sentence breaks is cut at a word, with an ellipsis).
docs/answers.md has the measured numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .index import paragraph_sentence_spans, sentence_spans
from .questions import question_terms
from .retrieve import Hit
from .text import coverage

MIN_WORDS = 6
MAX_QUOTE_CHARS = 480  # a quote, antecedent included; longer single sentences are cut at a word, with "…"
ELLIPSIS = "…"
MAX_ANTECEDENTS = 2  # a leaning sentence may pull in this many sentences before it, no more

# Openers that set the scene rather than answer anything ("Recently, deep RL has made great progress…").
GENERIC_OPENER = re.compile(
    r"^(?:recently|in recent years|over the (?:past|last)|nowadays|with the (?:rapid|recent|growing)|"
    r"(?:deep|machine) learning has|"
    r"[\w\s-]{0,60}\b(?:has|have) (?:attracted|gained|received|made (?:great|huge|significant|remarkable))|"
    r"[\w\s-]{0,60}\bplays? an? (?:important|crucial|key|vital) role|"
    r"[\w\s-]{0,60}\bis (?:a|an) (?:fundamental|important|challenging|"
    r"crucial|key|long-standing) (?:problem|task|challenge))",
    re.IGNORECASE,
)
# Openers that lean on the sentence before ("This approach…", "These issues are addressed…", "For this reason, …",
# "To meet this challenge, …", "Inspired by these observations, …", "However, …"); "This paper/work/study…" names the
# paper itself and stands alone. Matched at a sentence's start; every repeat is bounded or ends at a space, so a
# match reads a few words past it (linear in the text, tests/test_extractive.py).
_SELF = r"paper|work|study|article|survey|letter|thesis|report|chapter|review|manuscript|research|project"
_DEMONSTRATIVE = rf"(?:this|these|those|such)\b(?! (?:{_SELF})\b)"
_BACK = r"(?:this|these|that|those|such|both|the (?:above|aforementioned|former|latter))\b"
LEANING_OPENER = re.compile(
    rf"(?:(?:this|these|those|such|that)\b(?! (?:{_SELF})\b)|(?:it|its|they|their|them|he|she|his|her)\b|"
    rf"(?:for|to|in|because of|based on|as a result of|despite|given|with|by|on|from|under) "
    rf"(?:this|these|that|those|such)\b(?! (?:{_SELF})\b)|"
    # "To meet/address/deal with this challenge, …", "To achieve these goals, …"
    rf"to (?:this|that) end\b|to [a-z]+(?: (?:with|to|for|on|up))? {_BACK}|"
    # an opening phrase of at most four words with a demonstrative, closed by a comma: "Inspired by these
    # observations, …", "Building on this insight, …", "Unlike such methods, …"; "After that, …"
    rf"(?:[\w-]+ ){{1,4}}{_DEMONSTRATIVE}[^,.;:!?]{{0,60}},|"
    r"(?:after|beyond|besides|despite|following|unlike|apart from|on top of|in addition to|other than) that\b|"
    r"(?:each|all|both|none|some|many|most|one|either|neither|any) of (?:these|those|them|the above)\b|"
    r"(?:one|another) such\b|as such\b|(?:by |in )?doing so\b|"
    r"(?:therefore|thus|hence|consequently|accordingly|as a (?:result|consequence)|in this way|to do so|in turn|"
    r"in response|in addition|additionally|moreover|furthermore|further|however|nevertheless|nonetheless|instead|"
    r"then|also|yet|otherwise|conversely|alternatively|subsequently|afterwards|thereby|"
    r"besides|meanwhile|likewise|similarly|in contrast|by contrast|on the other hand|specifically|more specifically|"
    r"for example|for instance|e\.g\.|i\.e\.|"
    r"in particular|finally|lastly|second(?:ly)?|third(?:ly)?|next|notably)\b|"
    r"the (?:former|latter|same|above|resulting|aforementioned)\b|\(\d+\)|\d+\))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Aspect:
    """What a question can ask about a topic: `asks` finds it in a question, `answers` in an abstract sentence.
    A `fallback` aspect counts only when the question asks for no other ("How does X work?" is about method,
    "How is X evaluated?" only about evaluation)."""

    name: str
    asks: re.Pattern[str]
    answers: re.Pattern[str]
    fallback: bool = False


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# A measured number: with a unit or a decimal point, a count of people or items, or a bound ("less than 50").
_NUMBER = (r"\d+(?:\.\d+)?\s*(?:\\?%|%p|x\b|×|-?fold|times|fps|points?|mm|cm|°|ms|db|hours?|minutes?|seconds?)|"
           r"\d+\.\d+|\b\d{1,3}(?:,\d{3})+\b|(?:sample|total|set|group) of \d+|"
           r"(?:less|more|fewer|lower|higher) than \d|up to \d|within (?:roughly )?\d")
ASPECTS: tuple[Aspect, ...] = (
    Aspect(
        "evaluation",
        _words(r"\b(?:evaluat\w*|assess\w*|validat\w*|tested|tests?\b|benchmark\w*|experiment\w*|verif\w+)"),
        _words(
            r"\b(?:evaluat\w*|experiment\w*|we (?:test|validate|assess|benchmark|verif\w+|conduct|trial|examine)|"
            r"test(?:ed|s)? (?:on|in)\b|benchmarks?\b|datasets?\b|demonstrated on|simulations?\b|case stud\w+|"
            r"backtest\w*|ablation|results? on|tasks?\b|[A-Z][\w-]*\d[\w-]*)"
        ),
    ),
    Aspect(
        "result",
        _words(
            r"\b(?:how (?:much|many|fast|accurate|well|large|big|long|close|precise|good|often)|accura\w+|findings?|"
            r"results?\b|performance|speed-?ups?|improve\w*|errors?\b|gains?\b|scores?\b|success rate)"
        ),
        _words(rf"{_NUMBER}|\b(?:outperform\w*|achiev\w*|improv\w*|surpass\w*|reduc\w*|speed-?ups?|faster|accura\w+)"),
    ),
    Aspect(
        "limitation",
        _words(
            r"\b(?:limitations?|limits?\b|drawbacks?|weakness\w*|shortcomings?|downsides?|disadvantages?|fail\w*|"
            r"problems?|issues?|challenges?|caveats?|risks?)"
        ),
        _words(
            r"\b(?:however|but|limit\w*|lack\w*|fail\w*|cannot|can only|unable|suffer\w*|challeng\w*|drawbacks?|"
            r"difficult\w*|sensitive|expensive|costly|poor\w*|issues?|problems?|bottlenecks?|degrad\w*|slow\w*|"
            r"elusive|unfortunately|struggl\w*|insufficient|inefficient|rely|relies|reliance|only)\b"
        ),
    ),
    Aspect(
        "dataset",
        _words(r"\b(?:datasets?|data sets?|data\b|corpus|corpora|benchmarks?|samples?|instances?|how (?:large|big))"),
        _words(
            r"\b(?:datasets?|data sets?|data\b|corpus|corpora|benchmarks?|collected|annotated|instances|samples|"
            r"images|records|[A-Z][\w-]*\d[\w-]*)"
        ),
    ),
    Aspect(
        "comparison",
        _words(r"\b(?:compar\w*|versus|vs\b|better than|worse than|differ\w*|relative to|against|outperform\w*)"),
        _words(
            r"\b(?:outperform\w*|compar\w*|than\b|baselines?|state-of-the-art|surpass\w*|superior|versus|vs\b|"
            r"parity|favorabl\w*|over (?:the )?(?:baselines?|existing|previous|prior))"
        ),
    ),
    Aspect(
        "method",
        _words(
            r"\b(?:methods?|approach(?:es)?|techniques?|architectures?|mechanisms?|algorithms?|procedures?|"
            r"how (?:does|do|did|is|are|can)\b)"
        ),
        _words(
            r"\b(?:we (?:propose|introduce|present|develop|design|model|use|employ|leverage|adopt|construct|build|"
            r"formulate|derive|learn|train|combine|decompose|apply)|based on|built on|consists? of|combin\w+|via|"
            r"by (?:using|employing|leveraging|modell?ing|combining|introducing|intervening|learning)|through|"
            r"uses?|leverag\w+|employ\w*|adopt\w*|encoder|decoder|modules?|layers?|mechanism|quantif\w+)\b"
        ),
        fallback=True,
    ),
    Aspect(
        "definition",
        _words(r"^\s*(?:what|who) (?:is|are)\b(?! (?:the|its|their|his|her)\b)|\bexplain\b|\bwhat does \S+ do\b"),
        _words(
            r"\b(?:we (?:propose|introduce|present)|(?:paper|work|study) (?:presents|introduces|proposes)|"
            r"called|named|refers? to|(?:is|are) an?\b)"
        ),
    ),
)
_FALLBACK = {a.name: a.fallback for a in ASPECTS}
_PART_BREAK = re.compile(
    r"\s*(?:;|,?\s+\band\b\s+(?=(?:how|what|which|why|where|when|who|whom|whose|is|are|does|do|did|"
    r"can|could|will|would)\b))",
    re.IGNORECASE,
)


def asked_text(question: str) -> str:
    """The part of `question` that asks: its sentences ending in "?" when it has any ("Is this claim supported? <the
    claim>" asks nothing about the claim's words), else all of it."""
    asking = [question[a:b] for a, b in sentence_spans(question) if question[a:b].rstrip().endswith("?")]
    return " ".join(asking) if asking else question


def question_aspects(question: str) -> list[str]:
    """The aspects `question` asks about, by name (none for a plain "what does the literature say about X")."""
    text = asked_text(question)
    named = [a.name for a in ASPECTS if not a.fallback and a.asks.search(text)]
    return named or [a.name for a in ASPECTS if a.fallback and a.asks.search(text)]


def question_parts(question: str) -> list[str]:
    """The parts of a question that asks several things ("What is CacheGen and how is it evaluated?" -> "What is
    CacheGen", "how is it evaluated?"); one part for a single question."""
    text = asked_text(question)
    return [part for part in _PART_BREAK.split(text) if part.strip()] or [text]


def aspect_matches(aspects: Sequence[str], sentence: str) -> bool:
    return any(a.name in aspects and a.answers.search(sentence) for a in ASPECTS)


@dataclass(frozen=True)
class Selection:
    """The extractive rule's knobs. A sentence scores cosine + term_weight * (share of the question's terms in it)
    + rank_weight * (its paper's fused retrieval score relative to the best) + aspect_weight when it speaks to an
    aspect the question asks about; generic openers ("Recently, … has made great progress") are dropped whatever
    words they share with the question (on SciFact train and dev that changes nothing; on the seeds it drops
    scene-setting quotes), and so are sentences with no question term that are not `min_cosine_without_terms`
    close to the question;
    a sentence of another paper joins the best one only within `margin` of its score, a second sentence of a
    paper already quoted within `same_paper_margin` (it cites nothing new). Chosen on SciFact train claims as the
    most precise rule whose citation recall reaches 0.89 in every run of 188 claims, not just on average
    (benchmarks/tune_extractive.py); SciFact's questions ask no aspect, so `aspect_weight` was set on the seed
    aspect fixture (tests/fixtures/aspect_questions.json): 0.0 to 0.3 quote the answer for 39 of 43, 0.5 for 40 —
    the per-paper swap to an aspect sentence (`_on_aspect`) does most of the work; 0.1 keeps a part's own aspect
    ahead when its best sentence is chosen without letting a pattern match outweigh closeness (docs/answers.md)."""

    term_weight: float = 0.15
    rank_weight: float = 0.8
    margin: float = 0.4
    min_cosine_without_terms: float = 0.45
    papers: int = 6
    max_sentences: int = 3
    max_per_paper: int = 2
    drop_generic: bool = True
    same_paper_margin: float = 0.15  # a second sentence of a paper already quoted (cites nothing new)
    aspect_weight: float = 0.1


SELECTION = Selection()


@dataclass
class Candidate:
    """One sentence the extractive answer could quote (of the abstract, or with `body` of the PDF passage the
    search found), with what the rule scores it by. The quote is `source[quote_start:end]` (the sentence with any
    antecedent it leans on), cut at MAX_QUOTE_CHARS."""

    hit: Hit
    rank: int  # of its paper in the search, from 0
    start: int
    end: int
    cosine: float
    terms: float
    generic: bool
    paper_score: float  # the paper's fused score relative to the best paper's
    aspects: tuple[int, ...] = ()  # the question parts (indexes) whose aspect this sentence speaks to
    part_terms: tuple[float, ...] = ()  # per part: the share of its terms in the sentence
    quote_start: int | None = None
    steers: bool = False  # it speaks to an aspect the question names (not just the "how…?" fallback)
    body: bool = False  # a sentence of the PDF passage the search found, not of the abstract

    @property
    def source(self) -> str:
        """The text the offsets index: the paper's abstract, or the found passage of its PDF."""
        return self.hit.text if self.body else self.hit.paper.abstract

    @property
    def quote(self) -> tuple[int, int]:
        return (self.start if self.quote_start is None else self.quote_start), self.end


def quotable(abstract: str, spans: Sequence[tuple[int, int]], index: int) -> int | None:
    """Where a quote of sentence `index` must start to read on its own: at the sentence, or at the sentence(s)
    it leans on; None when it leans on nothing quotable (the abstract's first sentence) or the quote grows past
    MAX_QUOTE_CHARS."""
    first = index
    while LEANING_OPENER.match(abstract, spans[first][0]):
        if first == 0 or index - first == MAX_ANTECEDENTS:
            return None
        first -= 1
    if first != index and spans[index][1] - spans[first][0] > MAX_QUOTE_CHARS:
        return None
    return spans[first][0]


def cut(text: str, limit: int = MAX_QUOTE_CHARS) -> str:
    """`text` within `limit` characters: cut at the last word boundary before it, with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip(" ,;:") + ELLIPSIS


def candidate_sentences(question: str, hits: Sequence[Hit], embedder: Any, papers: int) -> list[Candidate]:
    """Every quotable sentence of at least MIN_WORDS words in the first `papers` hits, scored against the
    question and each of its parts (only the first MAX_QUOTE_CHARS of a sentence are read)."""
    hits = list(hits)[:papers]
    spans = []
    for rank, hit in enumerate(hits):
        for body, text in ((False, hit.paper.abstract), *(((True, hit.text),) if hit.location else ())):
            sentences = (paragraph_sentence_spans if body else sentence_spans)(text)
            for index, (a, b) in enumerate(sentences):
                start = quotable(text, sentences, index)
                if start is not None and len(text[a:b].split(maxsplit=MIN_WORDS)) >= MIN_WORDS:
                    spans.append((rank, hit, a, b, start, body))
    if not spans:
        return []
    wanted = question_terms(question)
    parts = question_parts(question)
    part_aspects = [question_aspects(p) for p in parts]
    named = {i for i, asked in enumerate(part_aspects) if any(not _FALLBACK.get(name, False) for name in asked)}
    part_terms = [question_terms(p) or wanted for p in parts]
    texts = [cut((h.text if body else h.paper.abstract)[a:b]) for _, h, a, b, _, body in spans]
    vectors = embedder.embed_documents([question] + texts)
    top = max((h.score for h in hits), default=1.0) or 1.0

    def context(hit: Hit, text: str) -> str:
        """What a sentence's terms are counted in: for an aspect question, its paper's title too, so that "We test
        it on three datasets" counts as about the paper's topic without repeating its name."""
        return f"{hit.paper.title} {text}" if any(part_aspects) else text

    return [
        Candidate(hit=h, rank=rank, start=a, end=b, cosine=float(cosine), terms=coverage(wanted, context(h, text)),
                  generic=bool(GENERIC_OPENER.match(text)), paper_score=max(0.0, h.score) / top,
                  aspects=tuple(i for i, asked in enumerate(part_aspects) if aspect_matches(asked, text)),
                  part_terms=tuple(coverage(terms, context(h, text)) for terms in part_terms), quote_start=start,
                  steers=any(aspect_matches(part_aspects[i], text) for i in named), body=body)
        for (rank, h, a, b, start, body), text, cosine in zip(spans, texts, vectors[1:] @ vectors[0])
    ]


def _score(c: Candidate, rule: Selection, part: int | None = None) -> float:
    """A candidate's score for the whole question (part None: the aspect of any part counts) or for one part."""
    terms = c.terms if part is None else c.part_terms[part]
    aspect = bool(c.aspects) if part is None else part in c.aspects
    return c.cosine + rule.term_weight * terms + rule.rank_weight * c.paper_score + rule.aspect_weight * aspect


def choose_sentences(candidates: Sequence[Candidate], rule: Selection = SELECTION) -> list[Candidate]:
    """The sentences to quote, best first (for an aspect question, those that speak to it first): one strong
    sentence from the best paper rather than several weak ones; for a question of several parts, also the best
    sentence for each part not yet answered."""
    pool = [c for c in candidates if c.rank < rule.papers and not (rule.drop_generic and c.generic) and not (
        c.terms == 0 and not c.aspects and c.cosine < rule.min_cosine_without_terms)]
    scored = sorted(((_score(c, rule), c) for c in pool), key=lambda s: -s[0])
    chosen: list[Candidate] = []
    per_paper: dict[str, int] = {}
    for score, candidate in scored:
        if len(chosen) == rule.max_sentences or score < scored[0][0] - max(rule.margin, rule.same_paper_margin):
            break
        quoted = per_paper.get(candidate.hit.paper_id, 0)
        if quoted < rule.max_per_paper and score >= scored[0][0] - (rule.same_paper_margin if quoted else rule.margin):
            chosen.append(candidate)
            per_paper[candidate.hit.paper_id] = quoted + 1
    parts = len(pool[0].part_terms) if pool else 0
    if any(c.steers for c in pool):  # quotes that speak to the aspect asked come first
        chosen = sorted((_on_aspect(c, pool, chosen, rule) for c in chosen), key=lambda c: not c.steers)
    for part in range(parts if parts > 1 else 0):
        best = max(pool, key=lambda c: _score(c, rule, part))
        if not any(c is best or part in c.aspects for c in chosen):
            chosen.append(best)
    return chosen


def _on_aspect(
    candidate: Candidate, pool: Sequence[Candidate], chosen: Sequence[Candidate], rule: Selection
) -> Candidate:
    """The sentence to quote for a chosen one's paper: itself when it speaks to an aspect asked, else the paper's
    best sentence that does (the paper was chosen for its topic; the quote is chosen for what was asked). Only an
    aspect the question names steers: a bare "how does X…?" (the method fallback) leaves the choice to the score,
    which on the seeds keeps the sentence about X rather than one about its predecessor."""
    if candidate.steers:
        return candidate
    same = [c for c in pool if c.hit.paper_id == candidate.hit.paper_id and c.steers
            and not any(c is other for other in chosen)]
    return max(same, key=lambda c: _score(c, rule), default=candidate)


def quotes(chosen: Sequence[Candidate]) -> list[tuple[Candidate, int, int]]:
    """(candidate, start, end) of each quote to write, best first: sentences of one paper that overlap or touch
    (a sentence and the antecedent quoted with it) become one quote while it stays within MAX_QUOTE_CHARS."""
    merged: list[tuple[Candidate, int, int]] = []
    for candidate in chosen:
        start, end = candidate.quote
        for i, (kept, a, b) in enumerate(merged):
            gap = candidate.source[min(b, end):max(a, start)]
            joined = max(b, end) - min(a, start) <= MAX_QUOTE_CHARS
            same = kept.hit.paper_id == candidate.hit.paper_id and kept.body == candidate.body
            if same and joined and (start <= b and a <= end or not gap.strip()):
                merged[i] = (kept, min(a, start), max(b, end))
                break
        else:
            merged.append((candidate, start, end))
    return merged
