"""The lexical index's text: what of a paper BM25 sees, tokenized as bm25s does (English Snowball stems,
stopwords out), so the catalog's index (bm25.py) ranks with the same terms the bm25s index used before it."""

from __future__ import annotations

import functools
from typing import Any

from ..corpus import Paper


@functools.cache
def stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    return tokenize_many([text])[0]


def tokenize_many(texts: list[str]) -> list[list[str]]:
    """Many texts in one call (bm25s's per-call overhead is most of the cost of one short text)."""
    import bm25s

    return bm25s.tokenize(texts, stemmer=stemmer(), return_ids=False, show_progress=False)


def lexical_text(paper: Paper) -> str:
    """Title, authors, venue, year, keywords and abstract: an entry stored without an abstract is found by its
    metadata (a derived title is the abstract's own opening words, so it is not indexed twice)."""
    title = "" if paper.title_derived else paper.title
    metadata = [title, ", ".join(paper.authors), paper.venue or "", str(paper.year or ""), ", ".join(paper.keywords)]
    return "\n".join([*(part for part in metadata if part), paper.abstract])


def lexical_tokens(papers: list[Paper]) -> list[str]:
    """Each paper's lexical text as space-separated stems (what the catalog's BM25 index stores)."""
    return [" ".join(tokens) for tokens in tokenize_many([lexical_text(paper) for paper in papers])]


def query_terms(query: str) -> list[str]:
    """A search's terms: its stems, each once."""
    return list(dict.fromkeys(tokenize(query)))
