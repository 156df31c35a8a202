"""Papers out, for a reference manager: BibTeX (bibtex.py's writer), RIS and CSL-JSON, in one registry keyed by
format, so the app's evidence table and any other caller offer the same three and name the files alike."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .bibtex import bibtex, citation_key
from .corpus import Paper

_SPACE = re.compile(r"\s+")
_UNSAFE_NAME = re.compile(r"[^\w\- ]+")


def _one_line(text: str) -> str:
    """RIS is line-based: a value never spans lines."""
    return _SPACE.sub(" ", text).strip()


def _name_parts(author: str) -> dict[str, str]:
    """"Last, First" or "First Last" as CSL's family/given; a single word (or an organisation) as a literal."""
    if "," in author:
        family, given = (part.strip() for part in author.split(",", 1))
        return {"family": family, "given": given} if given else {"literal": family}
    words = author.split()
    return {"family": words[-1], "given": " ".join(words[:-1])} if len(words) > 1 else {"literal": author.strip()}


def ris(papers: Sequence[Paper]) -> str:
    """RIS records (JOUR with a venue, GEN without), the fields Zotero, EndNote and Mendeley read."""
    records = []
    for paper in papers:
        lines = [("TY", "JOUR" if paper.venue else "GEN"), ("TI", paper.title)]
        lines += [("AU", author) for author in paper.authors]
        lines += [(tag, value) for tag, value in (
            ("PY", str(paper.year) if paper.year else None), ("JO", paper.venue), ("DO", paper.doi),
            ("UR", paper.url or (f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else None)),
            ("AB", paper.abstract or None)) if value]
        lines += [("KW", keyword) for keyword in paper.keywords]
        records.append("\n".join(f"{tag}  - {_one_line(value)}" for tag, value in lines) + "\nER  - \n")
    return "\n".join(records)


def csl_json(papers: Sequence[Paper]) -> str:
    """CSL-JSON items (what Zotero, pandoc and citeproc read), keyed like the BibTeX entries."""
    items = []
    for paper in papers:
        item: dict[str, object] = {"id": citation_key(paper), "type": "article-journal" if paper.venue else "article",
                                   "title": paper.title, "author": [_name_parts(a) for a in paper.authors]}
        if paper.year:
            item["issued"] = {"date-parts": [[paper.year]]}
        for key, value in (("container-title", paper.venue), ("DOI", paper.doi), ("URL", paper.url),
                           ("abstract", paper.abstract or None)):
            if value:
                item[key] = value
        items.append(item)
    return json.dumps(items, ensure_ascii=False, indent=2)


@dataclass(frozen=True)
class PaperExport:
    write: Callable[[Sequence[Paper]], str]
    extension: str
    mime: str


PAPER_EXPORTS: dict[str, PaperExport] = {
    "BibTeX": PaperExport(bibtex, "bib", "application/x-bibtex"),
    "RIS": PaperExport(ris, "ris", "application/x-research-info-systems"),
    "CSL-JSON": PaperExport(csl_json, "json", "application/vnd.citationstyles.csl+json"),
}


def file_stem(title: str, fallback: str = "litassist") -> str:
    """A file name (without extension) from a title: "litassist-how-does-marl-scale", at most 60 characters."""
    words = _UNSAFE_NAME.sub(" ", title.lower()).split()
    stem = "-".join(words)[:60].rstrip("-")
    return f"litassist-{stem}" if stem else fallback
