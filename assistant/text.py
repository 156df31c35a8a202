"""Text utilities shared by retrieval, citation checking, the agent and follow-up rewriting: words as the lexical
index stems them, a text's content terms, and how many of a question's terms a text covers. Below all of them, so
none imports another for a helper."""

from __future__ import annotations

from .index.lexical import stemmer


def stem(word: str) -> str:
    """A word as the lexical index stems it (English Snowball)."""
    return stemmer().stemWord(word)


def content_terms(text: str) -> set[str]:
    """Stemmed words minus a broad English stopword list (question words like "what" and "how" included)."""
    import bm25s
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    tokens = bm25s.tokenize(
        [text], stopwords=list(STOPWORDS_EN_PLUS), stemmer=stemmer(), return_ids=False, show_progress=False
    )
    return set(tokens[0])


def coverage(wanted: set[str], text: str) -> float:
    """Share of the stemmed terms `wanted` that occur in `text` (1.0 when every term is there; 0.0 for none wanted)."""
    return len(wanted & content_terms(text)) / len(wanted) if wanted else 0.0


def term_coverage(query: str, text: str) -> float:
    """Share of the query's content terms that occur in `text` (1.0 when every term is there)."""
    return coverage(content_terms(query), text)
