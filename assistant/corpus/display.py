"""What a person is shown of a paper's metadata, honestly: a title made from the abstract's first words is marked
as such, LaTeX in a title or abstract reads as text ("11\\%" -> "11%", "$N:M$" -> "N:M"), and a date without a
year ("May 24") is shown as written, never as a year. Shared by the CLI, the app and the exports; see
docs/metadata.md.
"""

from __future__ import annotations

from .exports import _latex
from .records import Paper

UNTITLED = "Untitled"  # what a derived title is shown after; it is never exported as a title
_TILDE = ("\\~{}", "\\textasciitilde{}", "\\textasciitilde")  # LaTeX's literal tilde (pylatexenc drops "\~{}")
_KEPT_TILDE = "\ue000"  # stands for it while pylatexenc decodes (a bare "~" is a tie: a no-break space)


def plain_text(text: str) -> str:
    """LaTeX markup as the reader would see it typeset ("11\\%" -> "11%", "$N:M$" -> "N:M", "\\emph{x}" -> "x");
    text without markup is returned as it is (see corpus.exports._latex for the cost)."""
    for tilde in _TILDE:
        text = text.replace(tilde, _KEPT_TILDE)
    return _latex(text).replace(_KEPT_TILDE, "~")


def display_title(paper: Paper) -> str:
    """The title to show: as the source gave it, or, for a title derived from the abstract's first words,
    'Untitled — “Recently, deep reinforcement…”' so it cannot pass for a real title."""
    title = plain_text(paper.title)
    return f"{UNTITLED} — “{title}”" if paper.title_derived else title


def display_abstract(paper: Paper) -> str:
    return plain_text(paper.abstract)


def display_date(paper: Paper) -> str:
    """The year; else a date without a year as written, marked ("May 24, no year"); else "undated"."""
    return paper.when or "undated"
