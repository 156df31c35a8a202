"""Paper text and model output as safe HTML, and text safe for Streamlit's Markdown labels.

Titles, abstracts and answers come from files and models the app does not control: an abstract holding
`![p](http://host/pixel.png)` or a model reply with an image would make the browser fetch it (an exfiltration
channel for injected instructions). So nothing they contain is ever rendered as an image, raw HTML or a link:
answers and summaries go through markdown-it with images, links, autolinks, link references and HTML switched
off (lists, emphasis and code stay), paper text is HTML-escaped, and the only links on a page are the ones
built here from a paper's DOI, arXiv id or URL field, and only with an http(s) scheme.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from assistant import NO_ABSTRACT, CitedText, Paper, Span, display_title, mark_spans, markdown_html, marker_claims

_LABEL_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>#|~$:@!()])")
_WWW = re.compile(r"(?i)\b(www)\.")
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")


def md_escape(text: str) -> str:
    """Text shown through Streamlit's Markdown (labels, captions) exactly as written: no emphasis, no LaTeX,
    no image or link, and no autolink either (`:` and `@` are escaped, which breaks `http://`, `a@b.c`)."""
    return _WWW.sub(r"\1\\.", _LABEL_MARKDOWN.sub(r"\\\1", text))


def text_html(text: str) -> str:
    """HTML-escaped text (with `$` as an entity, in case it passes through Markdown)."""
    return html.escape(text).replace("$", "&#36;")


def cited_html(cited: CitedText) -> str:
    """A cited text's body (its reference list left out) as safe HTML whose `[n]` markers are buttons: each
    carries `data-marker` (the marker's index, see claims.marker_claims), the paper's title on hover and, for
    screen readers, as its name ("1: Causal Mean Field…", not "button 1")."""
    content = cited.body
    titles = {c.number: reference_title(c.paper) for c in cited.citations}
    found = marker_claims(cited)
    pieces, last = [], 0
    for index, marker in enumerate(found):
        pieces += [content[last:marker.start], f"\ue000{index}\ue001"]
        last = marker.end
    pieces.append(content[last:])

    def button(match: re.Match[str]) -> str:
        index = int(match.group(1))
        links = [f'<button type="button" class="la-cite" data-marker="{index}" data-number="{n}" '
                 f'title="{html.escape(titles[n], quote=True)}" aria-label="{n}: {html.escape(titles[n], quote=True)}"'
                 f'>{n}</button>' if n in titles else str(n)
                 for n in found[index].numbers]
        return "[" + ", ".join(links) + "]"

    return _PLACEHOLDER.sub(button, markdown_html("".join(pieces)))


def reference_title(paper: Paper) -> str:
    return f"{display_title(paper)} ({paper.when or 'undated'})"


def safe_url(url: str | None) -> str | None:
    """`url` if it is an absolute http(s) URL with a host, else None."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def paper_links(paper: Paper) -> list[tuple[str, str]]:
    """(label, URL) for the paper's own page, DOI and arXiv id: every link the app shows for a paper."""
    links = []
    if url := safe_url(paper.url):
        links.append(("Source page", url))
    if paper.doi:
        links.append((f"doi:{paper.doi}", f"https://doi.org/{quote(paper.doi, safe='/:;()._-')}"))
    if paper.arxiv_id:
        links.append((f"arXiv:{paper.arxiv_id}", f"https://arxiv.org/abs/{quote(paper.arxiv_id, safe='/._-')}"))
    return links


def highlight_html(abstract: str, spans: Sequence[Span]) -> str:
    """The abstract as escaped HTML with each span wrapped in <mark> (overlapping spans merged)."""
    return mark_spans(abstract, spans, text_html)


def paper_html(paper: Paper, spans: Sequence[Span] = (), authors: str = "") -> str:
    """A paper's card: title, authors, year or "undated", venue, its links, and the abstract with `spans`
    highlighted. Everything from the paper is escaped; links are built by paper_links."""
    meta = " · ".join(text_html(part) for part in (authors, paper.when or "undated",
                                                    paper.venue or "") if part)
    links = " · ".join(f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">'
                       f"{text_html(label)}</a>" for label, url in paper_links(paper))
    return (f'<div class="la-paper"><h4 class="la-title">{text_html(display_title(paper))}</h4>'
            f'<p class="la-meta">{meta}</p>' + (f'<p class="la-links">{links}</p>' if links else "")
            + (f'<div class="la-abstract">{highlight_html(paper.abstract, spans)}</div></div>' if paper.has_abstract
               else f'<p class="la-no-abstract">{NO_ABSTRACT.capitalize()}: only the title and details above are '
                    'stored for this paper, so nothing of it can be quoted.</p></div>'))
