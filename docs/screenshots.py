"""Regenerate the app's pictures in docs/ from the running app (offline provider), at desktop and phone sizes.

    python docs/screenshots.py [--home DIR]

Without --home, the seed corpus is ingested into a temporary home first. Uses Debian's chromium through
Playwright (tests/browser.py), the same way the browser test does. Writes, at 1440x900: chat.png (an answer with
a cited paper open and the quoted sentence highlighted), evidence-table.png (the papers the answer looked at),
follow-up.png ("How is it evaluated?" asked after a question on CMFQ, read as a standalone question), explore.png,
explore-topic.png (the largest topic zoomed into its subtopics, with its papers per year), library.png; at 390x844:
phone-chat.png (the newest answer), phone-evidence-table.png, phone-source.png (the source drawer), phone-explore.png,
phone-explore-topic.png.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/browser.py: the browser driver the tests use

from browser import DESKTOP, PHONE, ask, close_drawer, launch, open_app, serve, wait_until_idle  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from assistant import Assistant
from assistant.api import DEMO_CORPUS

DOCS = ROOT / "docs"
QUESTION = "How do these papers make multi-agent reinforcement learning scale?"
FOLLOW_UP_ON = "How does causal mean field Q-learning handle many agents?"  # a new conversation, on one paper
FOLLOW_UP = "How is it evaluated?"
SAMPLE_BIB = """@article{doe2022routing, title={Cooperative Routing of Reviewer Experts},
author={Doe, Jane and Roe, Rick},
year={2022}, journal={Journal of Peer Review Systems}, abstract={We route each submitted paper to a few expert
reviewer models and show that sparse cooperative routing improves assignment accuracy while reducing the number of
reviews each expert must write.}}
@article{noabstract, title={A Record Without an Abstract}, year={2021}}
"""


def open_page(browser, url: str, viewport: dict[str, int]) -> Page:
    page = browser.new_page(viewport=viewport)
    open_app(page, url)
    return page


def open_first_citation(page: Page, answer) -> None:
    """Click the answer's first inline [n] and wait for the drawer's highlighted sentence."""
    answer.locator("button.la-cite").first.click()
    expect(page.get_by_role("dialog").locator("mark").first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(800)  # the drawer slides in


def top(element) -> None:
    """Scroll `element` to the top of the window, below the app's header."""
    element.evaluate(
        "e => { e.style.scrollMarginTop = '4.5rem'; e.scrollIntoView({block: 'start', behavior: 'instant'}); }"
    )


def evidence_table(page: Page, answer, name: str) -> None:
    """The newest answer's evidence table (drawn open) at the top of the window."""
    page.mouse.wheel(0, 50)  # a reader's scroll: the page stops holding the question in view (scroll_anchor.js)
    box = answer.locator("[data-testid='stExpander']").filter(has_text="Evidence:").first
    box.locator("[data-testid='stDataFrame']").wait_for(timeout=30_000)
    wait_until_idle(page)
    top(box)
    page.wait_for_timeout(800)  # the grid draws its canvas
    page.screenshot(path=str(DOCS / name))


def follow_up(page: Page) -> None:
    """A follow-up that leans on the answer before it (in a new conversation on CMFQ), shown from its question
    down."""
    page.get_by_role("button", name="New conversation").click()
    wait_until_idle(page)
    ask(page, FOLLOW_UP_ON, 1)
    ask(page, FOLLOW_UP, 2).get_by_text("Read as").wait_for(timeout=30_000)
    page.mouse.wheel(0, 50)
    question = page.locator("[data-testid='stChatMessage']").filter(has_text=FOLLOW_UP).first
    top(question)
    page.wait_for_timeout(800)
    page.screenshot(path=str(DOCS / "follow-up.png"))


def explore(page: Page, name: str) -> None:
    page.get_by_role("tab", name=re.compile("Explore")).click()
    page.locator(".la-legend").wait_for(timeout=180_000)
    wait_until_idle(page)
    page.wait_for_timeout(1500)  # the chart's entry animation
    page.screenshot(path=str(DOCS / name))


def explore_topic(page: Page, name: str) -> None:
    """The largest topic zoomed into: its subtopics (map legend, pills) and its papers per year, from the legend
    down (the map itself is above, in explore.png)."""
    page.get_by_role("button", name=re.compile("Zoom into")).click()
    page.get_by_role("button", name=re.compile("All topics")).wait_for(timeout=60_000)
    wait_until_idle(page)
    top(page.locator(".la-legend").first)
    page.wait_for_timeout(1500)  # the charts' entry animation
    page.screenshot(path=str(DOCS / name))


def library(page: Page, workdir: Path) -> None:
    page.get_by_role("tab", name=re.compile("Library")).click()
    sample = workdir / "reviewers.bib"
    sample.write_text(SAMPLE_BIB, encoding="utf-8")
    page.locator("input[type='file']").set_input_files(str(sample))
    page.get_by_role("button", name=re.compile("Add to library")).click()
    wait_until_idle(page)
    expect(page.locator("[data-testid='stMetric']").filter(has_text="New")).to_contain_text("2", timeout=120_000)
    page.screenshot(path=str(DOCS / "library.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a library to show (default: the seed corpus in a temp home)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        home = args.home or workdir / "home"
        if not Assistant(home=home).papers():
            Assistant(home=home).ingest([DEMO_CORPUS])
        with serve(home, {"LITASSIST_LLM_PROVIDER": "offline"}) as url, sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                page = open_page(browser, url, DESKTOP)
                answer = ask(page, QUESTION, 1)
                open_first_citation(page, answer)
                page.screenshot(path=str(DOCS / "chat.png"))
                close_drawer(page)
                evidence_table(page, answer, "evidence-table.png")
                follow_up(page)
                explore(page, "explore.png")
                explore_topic(page, "explore-topic.png")
                library(page, workdir)

                phone = open_page(browser, url, PHONE)
                answer = ask(phone, QUESTION, 1)
                phone.screenshot(path=str(DOCS / "phone-chat.png"))
                evidence_table(phone, answer, "phone-evidence-table.png")
                open_first_citation(phone, answer)
                phone.screenshot(path=str(DOCS / "phone-source.png"))
                close_drawer(phone)
                explore(phone, "phone-explore.png")
                explore_topic(phone, "phone-explore-topic.png")
            finally:
                browser.close()
    names = ("chat.png", "evidence-table.png", "follow-up.png", "explore.png", "explore-topic.png", "library.png",
             "phone-chat.png", "phone-evidence-table.png", "phone-source.png", "phone-explore.png",
             "phone-explore-topic.png")
    print("wrote", ", ".join(str(DOCS / name) for name in names))


if __name__ == "__main__":
    main()
