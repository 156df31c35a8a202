"""The app end to end in a real browser: `streamlit run` on 127.0.0.1, Debian's chromium driven by Playwright.

First run on an empty home -> load the seed corpus -> ask -> the answer's citation opens the paper with the
passage highlighted -> upload a file through the real upload widget. Screenshots go to artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

from assistant.ui.browser import CHROMIUM, VIEWPORT, ask, launch, serve, wait_until_idle  # noqa: E402

ARTIFACTS = ROOT / "artifacts"
BIB = """@article{cooper2022, title={Cooperative Routing of Reviewer Experts}, author={Doe, Jane}, year={2022},
abstract={We route each submitted paper to a few expert reviewer models and show that sparse cooperative routing
improves assignment accuracy while reducing the number of reviews each expert must write.}}
"""


@pytest.mark.slow
def test_first_run_chat_citation_and_upload_in_a_browser(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    expect = sync_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    home = tmp_path / "home"
    with serve(home, {"LITASSIST_LLM_PROVIDER": "offline"}, log=ARTIFACTS / "ui-browser-server.log") as url, \
            sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url)
            page.get_by_role("button", name=re.compile("load the seed corpus", re.I)).click()
            sidebar = page.locator("[data-testid='stSidebar']")
            expect(sidebar.get_by_text(re.compile(r"^179 papers ·"))).to_be_visible(timeout=300_000)

            citation = ask(page, "How does multi-agent reinforcement learning scale?")
            expect(page.get_by_text(re.compile(r"^offline · extractive"))).to_be_visible()
            title_start = citation.inner_text().split("] ", 1)[1].rstrip("…")
            citation.click()
            panel = page.locator(".st-key-sources-chat")
            expect(panel.locator("h4")).to_contain_text(title_start, timeout=30_000)
            expect(panel.locator("mark").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "ui-chat.png"))

            page.get_by_role("tab", name=re.compile("Library")).click()
            upload = tmp_path / "reviewers.bib"
            upload.write_text(BIB, encoding="utf-8")
            page.locator("input[type='file']").set_input_files(str(upload))
            expect(page.get_by_text("reviewers.bib")).to_be_visible(timeout=30_000)
            page.get_by_role("button", name=re.compile("Add to library")).click()
            wait_until_idle(page)
            new = page.locator("[data-testid='stMetric']").filter(has_text="New")
            expect(new).to_contain_text("1", timeout=60_000)
            expect(sidebar.get_by_text(re.compile(r"^180 papers ·"))).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "ui-library.png"))
        finally:
            browser.close()
    assert (home / "uploads" / "reviewers.bib").read_text(encoding="utf-8") == BIB
