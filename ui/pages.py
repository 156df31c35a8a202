"""The page of a paper's PDF that a citation rests on, in the source drawer: the page as an image (rendered here
with pypdfium2 and sent inline as a data: URL, so the browser fetches nothing) with the cited sentence's boxes
drawn over it and scrolled into view, and buttons to the previous and next page.

Abstract spans keep the abstract view (ui/sources.py); this view is added when the spans lie on PDF pages.
"""

from __future__ import annotations

import base64
import functools

import streamlit as st
from assistant.ui.components import asset
from assistant.ui.rendering import md_escape
from assistant.ui.state import SourceView

from assistant import ParseError, PdfSource, Span, pdf_text, render_page, span_boxes

PAGE_WIDTH_PX = 900  # sharp on a 640 px drawer at 1.4x, ~150-300 KB a page as PNG
_pdf_page = st.components.v2.component("litassist.pdf_page", js=asset("pdf_page.js"), css=asset("pdf_page.css"))


@functools.lru_cache(maxsize=16)
def _page_image(path: str, sha256: str, pages: int, page: int) -> str:
    png = render_page(PdfSource(path=path, sha256=sha256, pages=pages), page, PAGE_WIDTH_PX)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _boxes(source: PdfSource, spans: list[Span], page: int) -> list[list[float]]:
    """The boxes of the spans on `page`: as the answer recorded them, else found now from the PDF."""
    return [rect for span in spans if span.page == page
            for rect in (span.rects or span_boxes(source, page, span.start, span.end))]


def show_pages(view: SourceView) -> bool:
    """Draw the cited page of the view's PDF with its spans boxed, if its spans lie on pages; whether it did."""
    spans = [s for s in (view.spans or view.passage_spans) if s.page is not None]
    source = view.paper.pdf
    if not spans or source is None:
        return False
    try:
        pdf_text(source)  # the file is still there and unchanged: the boxes are where the answer found them
    except ParseError as error:
        st.warning(f"{md_escape(str(error))} (the cited text: “{md_escape(spans[0].text)}”, p. {spans[0].page})",
                   icon=":material/picture_as_pdf:")
        return True
    cited = sorted({s.page for s in spans if s.page})
    state = f"la-pdf-{view.paper.paper_id}-{view.origin}"
    page = st.session_state.setdefault(state, cited[0])
    with st.container(horizontal=True, vertical_alignment="center", key=f"{state}-nav"):  # one row, phone too
        st.button("Previous", key=f"{state}-previous", disabled=page <= 1, icon=":material/chevron_left:",
                  on_click=lambda: st.session_state.update({state: page - 1}))
        st.caption(f"Page {page} of {source.pages} · cited on p. {', '.join(map(str, cited))}", width="content")
        st.button("Next", key=f"{state}-next", disabled=page >= source.pages, icon=":material/chevron_right:",
                  on_click=lambda: st.session_state.update({state: page + 1}))
    boxes = _boxes(source, spans, page)
    _pdf_page(key=f"{state}-image", data={"image": _page_image(source.path, source.sha256, source.pages, page),
                                          "boxes": boxes, "token": f"{state}-{page}",
                                          "label": f"Page {page} of {view.paper.title}"})
    if boxes:
        st.caption("Boxed: the sentence(s) of the paper the claim rests on, on the page as printed.")
    if view.weak:
        st.warning("Weak support: even the closest sentence hardly supports the claim.", icon=":material/warning:")
    return True
