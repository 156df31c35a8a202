"""The answer without a generative model (the offline provider): the sentences of the best papers that address
the question, quoted and cited; a question about the library's themes is answered from its topic clusters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .citations import quote_lines
from .extractive import SELECTION, Selection, candidate_sentences, choose_sentences, cut, quotes
from .prompting import prompt
from .tools.clusters import summary_in_ledger

if TYPE_CHECKING:
    from .citations import Ledger
    from .clusters import ClusterSummary
    from .index import Embedder
    from .retrieve import Filters, Hit
    from .tools import Topics

# "What are the main themes in my library?": offline, such a question is answered from the clusters.
_THEME_WORDS = re.compile(r"\b(themes?|topics?|clusters?|research areas?|landscape|groups? of (?:papers|work))\b",
                          re.IGNORECASE)
_LIBRARY_WORDS = re.compile(r"\b(library|collection|corpus|my papers|these papers|all papers|main|major|overall)\b",
                            re.IGNORECASE)
# "Ask about this topic" offline: after the topic's summary, one sentence from each of up to six papers, each
# within a wide margin of the best (a topic question asks for breadth; the summary quotes only the central papers).
TOPIC_RULE = Selection(max_sentences=6, max_per_paper=1, margin=0.8, papers=10)


def is_overview_question(question: str) -> bool:
    return bool(_THEME_WORDS.search(question) and _LIBRARY_WORDS.search(question))


def topic_summary(topics: Topics | None, filters: Filters) -> ClusterSummary | None:
    """The cited summary of the topic a turn is scoped to ("Ask about this topic": its filters hold exactly
    one cluster's papers), else None."""
    if topics is None or filters.paper_ids is None:
        return None
    wanted = set(filters.paper_ids)
    cluster = next((c for c in topics.clusters().topics if set(c.paper_ids) == wanted), None)
    return topics.cluster_summary(cluster.cluster_id) if cluster else None


def extractive_answer(question: str, hits: Sequence[Hit], ledger: Ledger, embedder: Embedder,
                      summary: ClusterSummary | None = None) -> tuple[str, list[tuple[int, int]]]:
    """The offline answer: the sentences of the best papers that address the question, quoted and cited. A
    question about a topic builds on the topic's summary: the summary first, then one sentence from each of
    up to TOPIC_RULE.max_sentences papers that answers the question, none that the summary already quotes.

    Returns the text and where the quotes are (brackets inside them are the paper's text, not citations)."""
    rule = SELECTION if summary is None else TOPIC_RULE
    lead = ""
    protected: list[tuple[int, int]] = []
    if summary is not None:  # its quotes are quotes here too
        text, _, quoted = summary_in_ledger(summary, ledger)
        shift = len(text) - len(text.lstrip())
        lead, protected = f"{text.strip()}\n\n", [(start - shift, end - shift) for start, end in quoted]
    chosen = choose_sentences(candidate_sentences(question, hits, embedder, rule.papers), rule)
    chosen = [c for c in chosen if " ".join(c.source[c.start:c.end].split()) not in " ".join(lead.split())]
    if not chosen:
        return (lead.strip(), protected) if lead else (
            prompt("abstain").format(best=nothing_to_quote(hits[:rule.papers])), [])
    listed = [(cut(candidate.source[start:end]), ledger.items[candidate.hit.paper_id].number)
              for candidate, start, end in quotes(chosen) if candidate.hit.paper_id in ledger.items]
    text, ranges = quote_lines(lead + prompt("offline_answer").format(sentences="\x00"), listed)
    return text, protected + ranges


def nothing_to_quote(hits: Sequence[Hit]) -> str:
    """Why the extractive answer quotes nothing. Papers found by their title alone (stored without an abstract)
    are named, never quoted: a title is not a finding, but the reader learns where to look."""
    bare = [h.paper.title for h in hits if not h.paper.has_abstract]
    if not bare:
        return "no sentence of the papers found addresses the question"
    named = "; ".join(f"“{title if len(title) <= 80 else title[:79] + '…'}”" for title in bare[:3])
    return (f"the closest papers have no abstract stored, so nothing of them can be quoted ({named}); "
            "`litassist enrich` fetches missing abstracts")
