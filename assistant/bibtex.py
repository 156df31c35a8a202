"""BibTeX out: the one writer behind the report's references.bib and the app's citation export.

The corpus parses BibTeX with bibtexparser; writing needs only the few fields a reference manager reads, with
readable keys (`guo2023scalable`) and the characters that break a field escaped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from .citations import page_note
from .corpus import Paper
from .corpus.display import plain_text

_BIBTEX_SPECIAL = re.compile(r"([&%$#_{}])")
_KEY_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset({"a", "an", "the", "on", "of", "in", "for", "and", "to", "with", "towards", "toward"})


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _KEY_WORD.findall(folded)


def _escape(value: str) -> str:
    """A field written once, correctly: LaTeX the source already had is decoded first (an abstract's "11\\%" is
    "11%", "$N:M$" is "N:M"), then the characters that break or change a BibTeX field are escaped ("11\\%", never
    "11\\\\%"); the rest is left as UTF-8 (biber reads it)."""
    return _BIBTEX_SPECIAL.sub(r"\\\1", plain_text(value)).replace("~", r"\textasciitilde{}")


def citation_key(paper: Paper) -> str:
    """A readable key: first author's last name, year, first meaningful title word (e.g. `guo2023scalable`)."""
    surname = _ascii_words(paper.authors[0].split(",")[0].split()[-1]) if paper.authors else []
    title = [w for w in _ascii_words(paper.title) if w not in _STOP_WORDS]
    year = str(paper.year) if paper.year else ""
    return "".join([(surname or ["anon"])[0], year, (title or ["paper"])[0]])


def bibtex_entry(paper: Paper, key: str, pages: Sequence[int] = ()) -> str:
    """One entry: @article when there is a venue, @misc (with the arXiv eprint when known) otherwise; a paper read
    from a PDF links it (`file`), and `pages` (the PDF pages cited) go in a note. A title derived from the
    abstract's first words is not a title: the entry has none, and the note says so."""
    fields: list[tuple[str, str]] = [] if paper.title_derived else [("title", "{" + _escape(paper.title) + "}")]
    if paper.authors:
        fields.append(("author", _escape(" and ".join(paper.authors))))
    if paper.year:
        fields.append(("year", str(paper.year)))
    if paper.venue:
        fields.append(("journal", _escape(paper.venue)))
    if paper.doi:
        fields.append(("doi", paper.doi))
    if paper.arxiv_id:
        fields += [("eprint", paper.arxiv_id), ("archiveprefix", "arXiv")]
    if paper.url:
        fields.append(("url", paper.url))
    if paper.keywords:
        fields.append(("keywords", _escape(", ".join(paper.keywords))))
    if paper.abstract:
        fields.append(("abstract", _escape(paper.abstract)))
    if paper.pdf is not None:
        fields.append(("file", _escape(paper.pdf.path)))
    notes = (["No title in the source"] if paper.title_derived else []) + (
        ["cited " + page_note(pages).removeprefix(", ")] if pages else [])
    if notes:
        fields.append(("note", "; ".join(notes)))
    kind = "article" if paper.venue else "misc"
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def bibtex(papers: Iterable[Paper], pages: Mapping[str, Sequence[int]] | None = None) -> str:
    """Entries for distinct papers, in the order given, with keys made unique (a, b, ... suffixes); `pages`: paper
    id -> the PDF pages cited (see Conversation.cited_pages)."""
    entries, used, seen = [], set(), set()
    for paper in papers:
        if paper.paper_id in seen:
            continue
        seen.add(paper.paper_id)
        base = key = citation_key(paper)
        suffix = ord("a")
        while key in used:
            key, suffix = f"{base}{chr(suffix)}", suffix + 1
        used.add(key)
        entries.append(bibtex_entry(paper, key, (pages or {}).get(paper.paper_id, ())))
    return "\n".join(entries)
