"""Regenerate docs/chat.png, docs/explore.png and docs/library.png from the running app (offline provider).

    python docs/screenshots.py [--home DIR]

Without --home, the seed corpus is ingested into a temporary home first. Uses Debian's chromium through
Playwright (ui/browser.py), the same way the browser test does; 1400x900 viewport.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from assistant import Assistant  # noqa: E402
from assistant.api import DEMO_CORPUS  # noqa: E402
from assistant.ui.browser import VIEWPORT, ask, launch, serve, wait_until_idle  # noqa: E402

DOCS = ROOT / "docs"
QUESTION = "How do these papers make multi-agent reinforcement learning scale?"
SAMPLE_BIB = """@article{doe2022routing, title={Cooperative Routing of Reviewer Experts}, author={Doe, Jane and Roe, Rick},
year={2022}, journal={Journal of Peer Review Systems}, abstract={We route each submitted paper to a few expert
reviewer models and show that sparse cooperative routing improves assignment accuracy while reducing the number of
reviews each expert must write.}}
@article{noabstract, title={A Record Without an Abstract}, year={2021}}
"""


def chat(page: Page) -> None:
    ask(page, QUESTION).click()
    expect(page.locator(".st-key-sources-chat mark").first).to_be_visible(timeout=30_000)
    wait_until_idle(page)
    page.screenshot(path=str(DOCS / "chat.png"))
    page.locator(".st-key-close-chat button").first.click()  # the explore shot shows topic summaries, not this paper
    wait_until_idle(page)


def explore(page: Page) -> None:
    page.get_by_role("tab", name=re.compile("Explore")).click()
    expect(page.locator("[data-testid='stVegaLiteChart'], .vega-embed").first).to_be_visible(timeout=120_000)
    page.locator(".st-key-topics [data-testid='stExpander'] button").first.wait_for(timeout=30_000)
    wait_until_idle(page)
    page.wait_for_timeout(1500)  # the chart's entry animation
    page.screenshot(path=str(DOCS / "explore.png"))


def library(page: Page, workdir: Path) -> None:
    page.get_by_role("tab", name=re.compile("Library")).click()
    sample = workdir / "reviewers.bib"
    sample.write_text(SAMPLE_BIB, encoding="utf-8")
    page.locator("input[type='file']").set_input_files(str(sample))
    page.get_by_role("button", name=re.compile("Add to library")).click()
    wait_until_idle(page)
    expect(page.locator("[data-testid='stMetric']").filter(has_text="New")).to_contain_text("1", timeout=120_000)
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
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(url)
                expect(page.get_by_placeholder("Ask about your papers…")).to_be_visible(timeout=120_000)
                chat(page)
                explore(page)
                library(page, workdir)
            finally:
                browser.close()
    print("wrote", ", ".join(str(DOCS / name) for name in ("chat.png", "explore.png", "library.png")))


if __name__ == "__main__":
    main()
