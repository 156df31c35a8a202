"""The seed corpus's size, derived from its pages, so that no test writes the number (179 today) down."""

from __future__ import annotations

from functools import cache

from assistant.api import DEMO_CORPUS
from assistant.corpus import merge_duplicates, parse_file


@cache
def seed_paper_count() -> int:
    """How many distinct papers the seed pages hold, as the parser and the merge of duplicates count them."""
    papers = [paper for page in sorted(DEMO_CORPUS.glob("*.txt")) for paper in parse_file(page).result.papers]
    return len(merge_duplicates(papers)[0])
