"""What a question asks: its topic words, whether it leans on the conversation, and its standalone form; and what
a suggested question calls a paper (`paper_name`, asked through the same rewrite: `about`).

A question is searched as asked unless it depends on the conversation: a pronoun or demonstrative with no
referent of its own ("how is it evaluated?", "what are their limitations?", "this method"; a topic word earlier
in the question is its referent only across a clause break: "what is CMFQ and how is it evaluated?"), a comparison to
"the above", a partitive ("which of these…"), an ellipsis ("and for graphs?", "what about…") or a question with
no topic words at all ("why?", "limitations?"). Only then is it rewritten with the referent: offline by the
rule here (the referring words are replaced by the topic words of the last standalone question), with a model
by the condense prompt. The rule was chosen on tests/fixtures/conversations.json (24 topic switches, 25 true
follow-ups), which tests/test_followups.py answers offline on the seed library (evaluate.evaluate_conversations).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Words that frame a question about the literature without naming a topic ("papers", "evidence", "show").
FRAMING_WORDS = """paper papers study studies work works research literature library collection corpus evidence claim
claims support supported supports show shows shown find found say says tell explain describe discuss mention
mentioned use used uses using make makes made do does done get got give gives know known exist exists existing
main key overall general specific way ways thing things kind kinds one ones also else other others many much
mean means meaning please could would briefly detail details detailed summary summarize summarise overview
several various different possible well without within new recent recently current currently today exactly really
address addresses addressed handle handles handled solve solves solved propose proposes proposed introduce
introduces introduced present presents presented achieve achieves achieved provide provides enable enables allow
allows based via""".split()
# Words that name an aspect of a topic, not the topic ("how is it evaluated?", "what are the limitations?").
ASPECT_WORDS = """evaluate evaluated evaluation evaluations benchmark benchmarks dataset datasets data experiment
experiments experimental result results performance perform performs accuracy accurate accurately precise
precision metric metrics baseline baselines
compare compared comparison comparisons differ differs difference differences limitation limitations drawback
drawbacks weakness weaknesses strength strengths advantage advantages disadvantage disadvantages problem problems
challenge challenges future application applications apply applied implement implemented implementation code
train trained training cost costs complexity scale scales scaling scalable scalability efficient efficiency
robust robustness work works working idea ideas contribution contributions novelty novel author authors
published publish year venue example examples improve improves improvement better best worse good fast faster
slow slower method methods approach approaches model models technique techniques framework frameworks system
systems algorithm algorithms architecture design result outcome findings finding conclusion conclusions
assumption assumptions reason reasons motivation goal goals purpose setting settings task tasks""".split()

_PERSONAL = r"it|itself|they|them|themselves|he|she"  # never followed by their noun: "why does it work?"
_PRONOUN = r"its|their|theirs|these|those|this|such|his|her"
_NOUN = (r"method|methods|approach|approaches|paper|papers|model|models|work|works|technique|techniques|framework|"
         r"frameworks|algorithm|algorithms|idea|ideas|result|results|finding|findings|system|systems|study|studies|"
         r"one|ones|architecture|dataset|datasets|authors?")
_REFERRING = re.compile(
    rf"\b(?:the above|the former|the latter|the same|above-mentioned|aforementioned|"
    rf"the (?:method|approach|paper|algorithm|framework|technique|authors|study|proposed \w+)\b"
    rf"(?! (?:of|for|on|in|to|that|which|by)\b)|"
    rf"that (?:{_NOUN})\b|(?:is|was|does|did|about|of|like|with) that\b(?=\s*(?:[?.!]|$))|^that\b|"
    rf"(?:{_PERSONAL})|(?:{_PRONOUN})(?: (?:{_NOUN})\b)?)\b",
    re.IGNORECASE,
)
_EXPLETIVE = re.compile(
    r"\b(?:it (?:is|was|'s)|(?:is|was) it) (?:possible|true|known|feasible|better|necessary|worth|common|hard|"
    r"easy|useful|likely|wise|advisable)\b|\bdoes it make sense\b",
    re.IGNORECASE,
)
_LIBRARY = re.compile(r"\b(?:these|those|the|my|our|all) (?:papers|works|articles|studies|documents|abstracts)\b",
                      re.IGNORECASE)
_PARTITIVE = re.compile(r"\b(?:of|among|between) (?:these|those|them|the above|both)\b", re.IGNORECASE)
_ELLIPSIS = re.compile(r"^\s*(?:and|but|also|what about|how about|same for|and what about|and how about|or)\b",
                       re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*")
# Between a topic word and a pronoun, one of these lets the pronoun refer to that topic within the question
# ("what is CMFQ and how is it evaluated?"); without one ("why are heterogeneous ranks a problem for it?") the
# pronoun points back into the conversation.
_CLAUSE_BREAK = re.compile(r"[,;:]|\b(?:and|or|but|that|which|who|where|while|whereas|because|so|if|when|then)\b",
                           re.IGNORECASE)


@functools.cache
def _stop_stems() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    from .text import stem

    return (frozenset(STOPWORDS_EN_PLUS), frozenset(map(stem, FRAMING_WORDS)), frozenset(map(stem, ASPECT_WORDS)))


def _kind(word: str) -> str:
    """"stop", "framing", "aspect" or "topic" for one word of a question."""
    from .text import stem

    stop, framing, aspect = _stop_stems()
    lower = word.lower()
    if lower in stop or len(lower) < 2:
        return "stop"
    stemmed = stem(lower)
    if stemmed in framing:
        return "framing"
    return "aspect" if stemmed in aspect else "topic"


def question_terms(question: str) -> set[str]:
    """The question's stemmed content words (as the lexical index sees them), less those that only frame it
    ("evidence", "papers", "claim")."""
    from .text import content_terms

    _, framing, _ = _stop_stems()
    return content_terms(question) - framing


def topic_terms(question: str) -> set[str]:
    """The question's stemmed topic words: neither framing nor an aspect ("evaluated", "limitations"); all its
    content words when it has no topic words."""
    _, _, aspect = _stop_stems()
    terms = question_terms(question)
    return (terms - aspect) or terms


def words_of(text: str, kind: str) -> list[str]:
    """The words of `text` of one kind, as written, each once, in order."""
    return list(dict.fromkeys(w for w in _WORD.findall(text) if _kind(w) == kind))


@dataclass
class Reading:
    """How a question relates to the conversation: `reason` says why it depends on it (empty: it does not);
    `referring` is the stretch that points back (replaced by the referent when rewriting)."""

    question: str
    topic: list[str]
    aspect: list[str]
    reason: str = ""
    referring: tuple[int, int] | None = None
    ellipsis: bool = False

    @property
    def dependent(self) -> bool:
        return bool(self.reason)


def read(question: str) -> Reading:
    """Whether `question` can be searched as asked (see the module docstring for the rule)."""
    reading = Reading(question, words_of(question, "topic"), words_of(question, "aspect"))
    topic_ends = [m.end() for m in _WORD.finditer(question) if _kind(m.group()) == "topic"]
    partitive = _PARTITIVE.search(question)
    if partitive:
        reading.reason, reading.referring = f"refers back ({partitive.group()!r})", partitive.span()
        return reading
    for match in _REFERRING.finditer(question):
        if any(m.start() <= match.start() < m.end() for m in _EXPLETIVE.finditer(question)):
            continue
        if reading.topic and any(m.start() <= match.start() < m.end() for m in _LIBRARY.finditer(question)):
            continue  # "these papers" with a topic of its own means the library
        if not any(end <= match.start() and _CLAUSE_BREAK.search(question, end, match.start()) for end in topic_ends):
            reading.reason, reading.referring = f"refers back ({match.group()!r})", match.span()
            return reading
    if not reading.topic:
        reading.reason = "no topic of its own"
    elif _ELLIPSIS.match(question):
        reading.ellipsis = True  # "what about X?": X is the topic, the earlier question's aspect carries over
    return reading


@dataclass
class Conversation:
    """The topic the conversation is on, replayed from its user turns by the same rule: its topic words (what a
    question with nothing to replace is searched with) and `referent`, the noun phrase a pronoun stands for (from
    the last question that named its own topic; a follow-up's own words never join it)."""

    topic: list[str] = field(default_factory=list)
    aspect: list[str] = field(default_factory=list)
    referent: str = ""

    def standalone(self, question: str) -> tuple[str, Reading]:
        """The question as a standalone search query, and how it was read; the conversation moves on to it."""
        reading = read(question)
        if reading.dependent and self.topic:
            rewritten = rewrite(reading, self.referent or " ".join(self.topic), " ".join(self.topic))
            self.topic = list(dict.fromkeys(self.topic + reading.topic))
            self.aspect = reading.aspect or self.aspect
            return rewritten, reading
        if reading.ellipsis and self.aspect and not reading.aspect:
            rewritten = f"{question.rstrip(' ?')} ({' '.join(self.aspect)})?"
        else:
            rewritten = question
        if reading.topic:
            self.topic, self.aspect = reading.topic, reading.aspect or (self.aspect if reading.ellipsis else [])
            self.referent = referent_of(question)
        return rewritten, reading


_COLLECTION = re.compile(
    r"^\s*(?:which|what) (papers|works|studies|articles|methods|approaches|models|techniques|systems)\s+"
    r"(?!do|does|did|are|is|were|was)"
    r"(.+?)(?:,?\s+and\s+(?:how|why|what|which|when|where)\b.*)?\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_JOINERS = frozenset({"of", "for", "in", "on", "with", "the", "and", "to"})
_POSSESSIVE = frozenset({"its", "their", "theirs", "his", "her"})
# An auxiliary before the topic means a main verb follows it ("How does X scale?", "How can X handle Y?").
_AUXILIARIES = frozenset("do does did can could will would should may might must".split())
_DEGREE = frozenset({"well", "much", "often", "far"})  # "How well does X…?"
# Framing and aspect words that never stand inside a topic's name: verbs ("How is X evaluated?", "How does X handle
# Y?"), adverbs and prepositions. The rest ("mean", "main", "key", "model", "systems") can: "causal mean field
# Q-learning", "the mean teacher model", "recommender systems".
_BREAKS = frozenset("""support supports supported show shows shown showed find finds found say says tell tells
explain explains describe describes discuss discusses mention mentions mentioned use uses used using make makes made
do does did done get gets got give gives know knows known exist exists address addresses addressed handle handles
handled solve solves solved propose proposes proposed introduce introduces introduced present presents presented
achieve achieves achieved provide provides enable enables allow allows based evaluate evaluates evaluated compare
compares compared differ differs apply applies applied implement implements implemented improve improves improved
perform performs performed outperform outperforms outperformed surpass surpasses reduce reduces increase increases
generalize generalizes work works worked publish published trained also else please briefly exactly really
recently currently today well without within via""".split())
# Aspect words that name a thing, so may end a topic's name ("recommender systems", "the mean teacher model").
_HEADS = frozenset("""model models system systems method methods approach approaches framework frameworks algorithm
algorithms architecture architectures technique techniques benchmark benchmarks dataset datasets""".split())


def referent_of(question: str) -> str:
    """The noun phrase a later pronoun stands for: "which papers merge LLM weights?" -> "the papers that merge LLM
    weights"; else the noun phrase around the question's first topic word, with "of/for/in…" inside and a "the"
    before ("How accurate is the weighted edge-matching score?" -> "the weighted edge-matching score"). A common
    word inside the name stays ("What is causal mean field Q-learning?" -> all four words); a verb ends it
    ("How does CMFQ handle many agents?"; after "How does", a verb is due: "How does X scale?", "How do X learn to
    Y?"). A few passes over the words: linear."""
    collection = _COLLECTION.match(question)
    if collection:
        return f"the {collection.group(1).lower()} that {collection.group(2).strip()}"
    words = list(_WORD.finditer(question))
    kinds = [_kind(w.group()) for w in words]
    lower = [w.group().lower() for w in words]
    first = next((i for i, kind in enumerate(kinds) if kind == "topic"), None)
    if first is None:
        return ""

    def joined(i: int) -> bool:  # words i-1 and i stand side by side (a space or a slash between: "2D/3D")
        return question[words[i - 1].end():words[i].start()].strip() in ("", "/")

    def inside(i: int) -> bool:  # a word that can be part of a topic's name
        return kinds[i] != "stop" and lower[i] not in _BREAKS

    begin = first
    while begin and joined(begin) and inside(begin - 1):
        begin -= 1
    auxiliary = next((j for j in range(begin) if lower[j] in _AUXILIARIES), None)
    verb_due = auxiliary is not None and all(kinds[j] == "stop" or lower[j] in _DEGREE for j in range(auxiliary))

    def verb(i: int) -> bool:  # after "How does…", an aspect word is the verb ("How do X scale Y?"; not "training")
        return verb_due and kinds[i] == "aspect" and lower[i] not in _HEADS and not lower[i].endswith("ing")

    last, i = first, first + 1
    while i < len(words) and joined(i) and (inside(i) or lower[i] in _JOINERS) and not verb(i):
        if kinds[i] != "stop":
            last = i
        i += 1
    if verb_due and not (i < len(words) and joined(i)):  # a main verb is due and none ended the phrase
        joiner = next((j for j in range(first + 1, last) if kinds[j] == "stop"), None)
        if last == len(words) - 1 > first and lower[last] not in _HEADS and joiner is None:
            last -= 1  # "What does the mean squared error loss measure?": the last word is the verb
        elif joiner is not None and joiner - 1 > first:
            last = joiner - 2  # "How do LLM agents collaborate in multi-agent systems?": the word before "in"
    while last > first and kinds[last] == "framing":
        last -= 1
    if begin and lower[begin - 1] == "the":
        begin -= 1
    return question[words[begin].start():words[last].end()]


_NUMBER = {"is": "are", "was": "were", "does": "do", "has": "have"}
_NUMBER.update({plural: singular for singular, plural in _NUMBER.items()})
_VERB_BEFORE = re.compile(r"\b(is|was|does|has|are|were|do|have)(\s+)$", re.IGNORECASE)  # the verb before "it"


def _agreeing(before: str, plural: bool) -> str:
    """`before` (the question up to its referring words) with its last word, a verb, in the referent's number:
    "How is it evaluated?" + "LLM agents" -> "How are…"; "What datasets do they use?" + "CMFQ" -> "…does…"."""
    def agree(match: re.Match[str]) -> str:
        verb = match.group(1)
        if (verb.lower() in {"are", "were", "do", "have"}) == plural:
            return match.group()
        other = _NUMBER[verb.lower()]
        return (other.capitalize() if verb[0].isupper() else other) + match.group(2)

    return _VERB_BEFORE.sub(agree, before)


def _plural(referent: str) -> bool:
    """Whether the noun phrase's head (its last word before "of/for/in…") is a plural: "LLM agents", "GFlowNets",
    "the papers that…"; not "CMFQ", "the weighted edge-matching score", "2D/3D registration of the femur"."""
    head = re.split(r"\s+(?:of|for|in|on|with|to|via|that|which)\s+", referent, maxsplit=1)[0].split()[-1]
    return head.lower().endswith("s") and not head.lower().endswith(("ss", "us", "is")) and not head.isupper()


def rewrite(reading: Reading, referent: str, topic: str = "") -> str:
    """The question with its referring words replaced by the referent, grammatically: "how is it evaluated?" +
    "CMFQ" -> "how is CMFQ evaluated?"; "what are its limitations?" -> "what are CMFQ's limitations?", or, for a
    referent of several words, "what are the limitations of the weighted edge-matching score?". With nothing to
    replace, the topic words lead ("CMFQ: why?")."""
    question = reading.question.strip()
    if reading.referring is None:
        return f"{topic or referent}: {question}"
    start, end = reading.referring
    said = question[start:end].split()
    first = said[0].lower()
    if first in {"of", "among", "between"}:
        return f"{question[:start]}{said[0]} {referent}{question[end:]}"
    if first not in _POSSESSIVE:
        return f"{_agreeing(question[:start], _plural(referent))}{referent}{question[end:]}"
    end = start + len(said[0])  # "its results": the possessive alone, its noun kept
    if len(referent.split()) == 1:
        return f"{question[:start]}{referent}'s{question[end:]}"
    owned = re.match(r"\s+([A-Za-z][\w-]*(?:\s+[A-Za-z][\w-]*)?)", question[end:])
    nouns = owned.group(1).split() if owned else []
    while nouns and _kind(nouns[-1]) == "stop":
        nouns.pop()
    if owned is None or not nouns or _kind(nouns[0]) == "stop":
        return f"{question[:start]}{referent}'s{question[end:]}"
    after = end + owned.start(1) + len(" ".join(nouns))
    return f"{question[:start]}the {' '.join(nouns)} of {referent}{question[after:]}"


def user_questions(history: Sequence[dict[str, Any]]) -> list[str]:
    return [str(turn["content"]) for turn in history if turn.get("role") == "user"]


def standalone_question(question: str, history: Sequence[dict[str, Any]]) -> tuple[str, Reading]:
    """The offline rule over a whole conversation: replay the earlier user questions, then read this one."""
    conversation = Conversation()
    for earlier in user_questions(history):
        conversation.standalone(earlier)
    return conversation.standalone(question)


# --- a paper's name, for the questions suggested under an answer ------------------------------------------------------

_DEFINED = re.compile(r"\(([A-Za-z][A-Za-z0-9-]{1,14})\)")  # "causal mean-field Q-learning (CMFQ)"
_CLAUSE_END = re.compile(r"[.,;:()\[\]]")
# The paper introducing the name a few words before it: "we propose (an algorithm called) …", "this paper
# introduces a technique called …".
_OWN = re.compile(r"\b(?:we|our|this (?:paper|work|article|study))\b[^.]{0,120}\b(?:propos|introduc|present|develop|"
                  r"design|call|nam|dub|term|build|buil|creat|devis|formulat)\w*(?:\s+[\w-]+){0,4}\s*$",
                  re.IGNORECASE)
_NAME_WORDS = 8  # a long form of at most this many words
_SHORT_TITLE_WORDS = 6


def _spells(words: list[str], letters: str) -> bool:
    """Whether `letters` (an acronym's capitals) are the initials of `words`: each word gives its first letter and
    may give the initials of its hyphenated parts and its inner capitals ("mean-field" -> M or MF, "GFlowNets" ->
    G, GF or GFN). A set of reachable positions, so at most _NAME_WORDS x 15 steps."""
    reachable = {0}
    for word in words:
        optional = [part[0] for part in word.split("-")[1:] if part] + [c for c in word[1:] if c.isupper()]
        after = set()
        for at in reachable:
            if at < len(letters) and word[0].upper() == letters[at]:
                at += 1
                after.add(at)
                for letter in optional:
                    if at < len(letters) and letter.upper() == letters[at]:
                        at += 1
                        after.add(at)
        reachable = after
    return len(letters) in reachable


def defined_name(abstract: str) -> str:
    """The name an abstract defines for its own method or system: the long form of "… (ACRONYM)" whose initials
    spell the acronym, a few words after the paper speaks of itself ("we propose an algorithm called causal
    mean-field Q-learning (CMFQ)", not "a framework named mean-field reinforcement learning (MFRL)"), the acronym
    used most if several. Empty when it defines none. Reads 200 characters before each parenthesis and counts
    the abstract's words once: linear in the abstract."""
    used = Counter(_WORD.findall(abstract))
    best: tuple[int, int] | None = None
    name = ""
    for match in _DEFINED.finditer(abstract):
        letters = "".join(c for c in match.group(1) if c.isupper())
        if len(letters) < 2:
            continue
        before = _CLAUSE_END.split(abstract[max(0, match.start() - 100):match.start()])[-1]
        words = before.split()[-_NAME_WORDS:]
        long_form = next((words[-k:] for k in range(1, len(words) + 1) if _spells(words[-k:], letters)), None)
        if not long_form:
            continue
        leading = abstract[max(0, match.start() - 200):match.start()].rsplit(". ", 1)[-1]
        leading = leading[:len(leading.rstrip()) - len(" ".join(long_form))]
        if not _OWN.search(leading):
            continue
        rank = (used[match.group(1)], match.start())
        if best is None or rank > best:
            best, name = rank, " ".join(long_form)
    return name


def title_name(title: str, whole: bool) -> str:
    """A title's name to ask about: the name before its colon ("AdaMerging: Adaptive Model Merging…" ->
    "AdaMerging"), or with `whole` the title itself; of at most _SHORT_TITLE_WORDS words, and a noun phrase: no
    stop word but "of/for/in/on/with/and/to/the/a", not opening with a gerund or "for"; else empty."""
    if ":" not in title and not whole:
        return ""
    name = title.split(":", 1)[0].strip().rstrip("?!.")
    words = _WORD.findall(name)
    if not 0 < len(words) <= _SHORT_TITLE_WORDS or any(
            _kind(w) == "stop" and w.lower() not in _JOINERS | {"a", "an"} for w in words) or (
            len(words) > 1 and (words[0].lower() in _JOINERS or words[0].lower().endswith("ing"))):
        return ""  # not a sentence ("MetaMixer Is All You Need"), nor "For a semiotic AI", "Rethinking the Value…"
    return name


def paper_name(title: str, abstract: str, derived: bool) -> str:
    """What to call a paper in a suggested question: the name before its title's colon, else the name its
    abstract defines for its own method, else its whole title if short; empty when none fits (a derived title
    is the abstract's first words, never a name)."""
    if derived:
        return defined_name(abstract)
    return title_name(title, whole=False) or defined_name(abstract) or title_name(title, whole=True)


def about(template: str, name: str) -> str:
    """`template`, a question that says "it"/"its", asked about `name`, grammatically: "What are its limitations?"
    + "causal mean-field Q-learning" -> "What are the limitations of causal mean-field Q-learning?"."""
    return rewrite(read(template), name)
