"""The source drawer on a PDF citation, in a real browser (`streamlit run`, Debian's chromium) at desktop and phone
sizes: clicking [n] of a claim that rests on the body of a PDF shows that page as an image with the sentence's
boxes drawn and in view, and next/previous page; nothing is fetched from another origin (the page image is data).
Screenshots go to artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from browser import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    ask,
    close_drawer,
    launch,
    open_app,
    record_requests,
    same_origin,
    serve,
    wait_until_idle,
)

from assistant import Assistant
from assistant.claims import claims, marker_claims

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
PDF = ROOT.parent / "shared" / "pdfs" / "2020.acl-main.447.pdf"
QUESTION = "How does S2ORC select canonical metadata when publisher metadata is incomplete?"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    if not PDF.exists():
        pytest.skip("the shared PDFs (../shared/pdfs) are not here")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    ARTIFACTS.mkdir(exist_ok=True)
    home = tmp_path_factory.mktemp("pdf-browser") / "home"
    assert Assistant(home=home).ingest([PDF]).new == 1
    with serve(home, {"LITASSIST_LLM_PROVIDER": "offline"}, log=ARTIFACTS / "ui-pdf-server.log") as url:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                yield {"url": url, "home": home, "browser": browser}
            finally:
                browser.close()


@pytest.fixture()
def page(site: dict, request: pytest.FixtureRequest) -> Iterator:
    viewport = PHONE if "phone" in request.node.name else DESKTOP
    page = site["browser"].new_page(viewport=viewport)
    requests = record_requests(page)
    open_app(page, site["url"])
    yield page
    foreign = sorted({r for r in requests if not same_origin(r, site["url"])})
    page.close()
    assert foreign == [], f"requests beyond the app's origin: {foreign}"


def paged_marker(home: Path, conversation_id: str) -> tuple[int, int]:
    """(marker index, page) of a marker of the latest answer whose claim rests on a sentence on a PDF page."""
    turn = Assistant(home=home).conversation(conversation_id).turns[-1]
    found = claims(turn.answer)
    for index, marker in enumerate(marker_claims(turn.answer)):
        if marker.claim is None:
            continue
        for support in found[marker.claim].citations:
            paged = [span.page for span in support.spans if span.page]
            if support.number == marker.numbers[0] and paged:
                return index, paged[0]
    raise AssertionError("no claim of the answer rests on a PDF page")


def in_view(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= -1 and box["y"] + box["height"] <= size["height"] + 1 and box["x"] >= -1 \
        and box["x"] + box["width"] <= size["width"] + 1


def open_cited_page(page, site: dict, shot: str) -> int:
    message = ask(page, QUESTION, 1)
    index, number = paged_marker(site["home"], parse_qs(urlsplit(page.url).query)["c"][0])
    message.locator(f'button.la-cite[data-marker="{index}"]').click()
    dialog = page.get_by_role("dialog")
    image = dialog.locator(".la-pdf-page img")
    image.wait_for(timeout=60_000)
    for _ in range(60):  # the image is in the component's shadow root: poll it through the locator
        if image.evaluate("i => i.complete && i.naturalWidth > 0"):
            break
        page.wait_for_timeout(250)
    assert image.evaluate("i => i.naturalWidth") > 0
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    boxes = dialog.locator(".la-pdf-box")
    assert boxes.count() >= 1
    page.wait_for_timeout(800)  # the scroll into view after the image has laid out
    assert in_view(page, boxes.first), "the highlighted sentence is not in view"
    picture = image.bounding_box()
    box = boxes.first.bounding_box()
    assert picture["x"] <= box["x"] and box["x"] + box["width"] <= picture["x"] + picture["width"] + 1
    assert dialog.get_by_text(f"Page {number} of 15").count() == 1
    page.screenshot(path=str(ARTIFACTS / shot))
    return number


def test_a_pdf_citation_opens_its_page_with_the_sentence_boxed(page, site: dict) -> None:
    number = open_cited_page(page, site, "ui-pdf-source-desktop.png")
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Next").click()
    dialog.get_by_text(f"Page {number + 1} of 15").wait_for(timeout=30_000)
    wait_until_idle(page)
    dialog.get_by_role("button", name="Previous").click()
    dialog.get_by_text(f"Page {number} of 15").wait_for(timeout=30_000)
    wait_until_idle(page)
    assert dialog.locator(".la-pdf-box").count() >= 1
    close_drawer(page)


def test_phone_pdf_page_fits_the_width_with_the_sentence_in_view(page, site: dict) -> None:
    open_cited_page(page, site, "ui-pdf-source-phone.png")
    picture = page.get_by_role("dialog").locator(".la-pdf-page img").bounding_box()
    assert picture["x"] >= 0 and picture["x"] + picture["width"] <= PHONE["width"] + 1


def test_pdfs_uploaded_in_the_library_are_read_and_a_bad_one_is_one_line(page, site: dict, tmp_path: Path) -> None:
    """Two PDFs through the Library's uploader: the real paper is added with its pages, the truncated copy is one
    line saying so; the added paper's body is then found on its page. (Last in this file: it adds a paper.)"""
    papermage = PDF.parent / "papermage.pdf"
    cut = tmp_path / "cut short.pdf"
    cut.write_bytes(papermage.read_bytes()[: papermage.stat().st_size // 2])
    page.get_by_role("tab", name=re.compile("Library")).click()
    page.locator("input[type='file']").set_input_files([str(papermage), str(cut)])
    page.get_by_text("cut short.pdf").wait_for(timeout=30_000)
    page.get_by_role("button", name=re.compile("Add to library")).click()
    wait_until_idle(page)
    added = page.locator("[data-testid='stExpander']").filter(has_text="1 paper added")
    added.get_by_text(re.compile(r"PaperMage: A Unified Toolkit.* · PDF, 13 pages")).wait_for(timeout=120_000)
    error = page.locator("[data-testid='stAlert']").filter(has_text="cut short.pdf")
    assert error.count() == 1 and "damaged or truncated" in error.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-pdf-upload.png"), full_page=True)
    lib = Assistant(home=site["home"])
    (stored,) = [p for p in lib.papers() if p.title.startswith("PaperMage")]
    assert stored.pdf is not None and Path(stored.pdf.path).parent == (site["home"] / "uploads").resolve()
    hits = lib.search("GROBID uses twelve interdependent sequence labeling models", k=2)
    (hit,) = [h for h in hits if h.paper_id == stored.paper_id]
    assert hit.location["page"] == 2 and "twelve interdependent sequence labeling models" in hit.text
