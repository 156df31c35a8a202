"""The Explore tab's two levels on the real seed library: zoom into a topic and back, a subtopic's own summary,
every member opens its paper, member lists page, and a large map is sampled per topic with complete counts."""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
import streamlit as st
from assistant.ui.explore import MEMBERS_PAGE, map_rows, sample_points
from streamlit.testing.v1 import AppTest

from assistant import Assistant
from assistant.clusters import MapPoint

APP = str(resources.files("assistant.ui").joinpath("app.py"))
EXPLORE = "Explore"  # the tab's label (ui/state.py)


@pytest.fixture()
def explore(seeded_copy: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    for name, value in {"LITASSIST_HOME": str(seeded_copy), "LITASSIST_LLM_PROVIDER": "offline"}.items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["tab"] = EXPLORE
    return at.run()


def legend(at: AppTest) -> str:
    return next(h.proto.body for h in at.html if 'class="la-legend"' in h.proto.body)


def test_zoom_into_a_topic_pick_a_subtopic_open_a_member_and_come_back(explore: AppTest) -> None:
    at = explore
    cluster_map = Assistant(home=Path(os.environ["LITASSIST_HOME"])).clusters()
    topic = next(t for t in cluster_map.topics if t.subtopics)
    at.button_group(key="topic").set_value(topic.cluster_id).run()
    at.button(key="zoom-in").click().run()
    assert not at.exception
    unplaced = len(topic.paper_ids) > sum(len(s.paper_ids) for s in topic.subtopics)
    assert legend(at).count("<span>") == len(topic.subtopics) + unplaced  # the subtopics (and "in no subtopic")
    sub = topic.subtopics[0]
    at.button_group(key=f"subtopic-{topic.cluster_id}").set_value(sub.cluster_id).run()
    assert any(f"{len(sub.paper_ids)} papers" in m.value for m in at.markdown)
    summary = json.loads(at.get_by_key(f"topic-{sub.cluster_id}").proto.json)["html"]
    assert 'class="la-cite"' in summary  # its own cited summary
    member = sub.paper_ids[-1]  # not a representative: every member opens, not only the starred ones
    at.button(key=f"member-{sub.cluster_id}-{member}").click().run()
    assert at.session_state["dialog"].paper.paper_id == member
    at.button(key="zoom-out").click().run()
    assert legend(at).count("<span>") == len(cluster_map.groups())


def test_member_lists_page(explore: AppTest) -> None:
    at = explore
    cluster_map = Assistant(home=Path(os.environ["LITASSIST_HOME"])).clusters()
    big = max(cluster_map.groups(), key=lambda c: len(c.paper_ids))
    if len(big.paper_ids) <= MEMBERS_PAGE:
        pytest.skip("no topic of the seeds is over a page")
    at.button_group(key="topic").set_value(big.cluster_id).run()
    keys = {b.key for b in at.button if (b.key or "").startswith(f"member-{big.cluster_id}-")}
    assert len(keys) == MEMBERS_PAGE
    at.number_input(key=f"page-{big.cluster_id}").set_value(2).run()
    second = {b.key for b in at.button if (b.key or "").startswith(f"member-{big.cluster_id}-")}
    assert second and not keys & second and len(keys | second) == min(len(big.paper_ids), 2 * MEMBERS_PAGE)


def explore_counting_reads(home: str) -> None:
    """The Explore tab alone, over a library whose reads are counted: records read per run in session_state."""
    import streamlit as st
    from assistant.ui.explore import render_explore
    from assistant.ui.state import init_state

    from assistant import Assistant

    init_state()
    lib = Assistant(home=home)
    reads = st.session_state.setdefault("records_read", [])
    reads.append(0)
    get_papers = lib.store.get_papers

    def counted(paper_ids):
        found = get_papers(paper_ids)
        reads[-1] += len(found)
        return found

    def every_paper():
        raise AssertionError("Explore loaded every paper")

    size = lib.paper_count()  # what the app's sidebar counted from the catalog
    lib.store.get_papers, lib.papers = counted, every_paper
    render_explore(lib, size)


def test_explore_reads_only_the_records_it_shows(seeded_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Explore never loads the whole library: the map comes from the saved map and the catalog's year column,
    and a topic's member list reads the page it shows (at 1M papers a topic has ~25,000 members)."""
    lib = Assistant(home=seeded_copy)
    cluster_map = lib.clusters()  # computed and saved before the app opens it, as after any earlier visit
    big = max(cluster_map.groups(), key=lambda c: len(c.paper_ids))
    assert len(big.paper_ids) > MEMBERS_PAGE
    st.cache_resource.clear()
    monkeypatch.setenv("LITASSIST_LLM_PROVIDER", "offline")  # os.environ set by hand outlived the test (xdist)
    at = AppTest.from_function(explore_counting_reads, args=(str(seeded_copy),), default_timeout=180).run()
    assert not at.exception
    at.button_group(key="topic").set_value(big.cluster_id).run()
    at.number_input(key=f"page-{big.cluster_id}").set_value(2).run()
    assert not at.exception
    shown = [b.key.rsplit("-", 1)[1] for b in at.button if (b.key or "").startswith(f"member-{big.cluster_id}-")]
    assert shown == big.paper_ids[MEMBERS_PAGE : 2 * MEMBERS_PAGE]
    # the first run: a page of members and the offline summary's evidence (the group's representatives)
    summary_reads = len(big.representative_ids)
    first, *later = at.session_state["records_read"]
    assert first <= MEMBERS_PAGE + summary_reads < lib.paper_count()
    assert later[-1] == MEMBERS_PAGE  # page 2: its 25 members (the summary is kept for the session)
    at.button(key=f"member-{big.cluster_id}-{shown[0]}").click().run()
    assert at.session_state["dialog"].paper.paper_id == shown[0]


def test_a_large_map_is_sampled_per_topic() -> None:
    points = [MapPoint(paper_id=f"p{i:06d}", title="t", cluster_id=f"c{1 + i % 7 // 6}", x=0.0, y=0.0)
              for i in range(70_000)]  # c1: 6/7 of the papers, c2: 1/7
    drawn = sample_points(points, 4000)
    assert 3990 <= len(drawn) <= 4010
    share = sum(p.cluster_id == "c2" for p in drawn) / len(drawn)
    assert abs(share - 1 / 7) < 0.01
    assert sample_points(points, 4000) == drawn  # the same points every run
    assert len(map_rows.__defaults__) == 2  # topic and limit are optional: the map of all topics by default


def test_a_sampled_map_is_drawn_by_the_topics_full_counts() -> None:
    """The saved map holds at most POINTS_PER_TOPIC points a topic, so shares come from the topics' real sizes."""
    points = [MapPoint(paper_id=f"p{i:05d}", title="t", cluster_id="c1" if i < 1000 else "c2", x=0.0, y=0.0)
              for i in range(2000)]  # saved: 1,000 points each, of topics of 90,000 and 10,000 papers
    drawn = sample_points(points, 500, {"c1": 90_000, "c2": 10_000})
    assert sum(p.cluster_id == "c1" for p in drawn) == 450 and sum(p.cluster_id == "c2" for p in drawn) == 50


def test_the_sidebar_filters_bound_the_topics(explore: AppTest) -> None:
    """An author, then a year range without undated papers: the legend's counts, the caption and a topic's member
    list are of the admitted papers only (they were of the whole library whatever the filters said)."""
    at = explore
    home = Path(os.environ["LITASSIST_HOME"])
    papers = Assistant(home=home).papers()

    def counted() -> int:
        return sum(int(n) for n in re.findall(r"<small>(\d+)</small>", legend(at)))

    assert counted() == len(papers)
    author = next(p for p in papers if p.authors).authors[0].split()[-1]
    at.text_input(key="author").set_value(author).run()
    assert counted() == sum(any(author.lower() in a.lower() for a in p.authors) for p in papers)
    at.text_input(key="author").set_value("").run()

    years = sorted({p.year for p in papers if p.year})
    low = years[-2]
    at.slider(key="years").set_value((low, years[-1])).run()
    at.checkbox(key="include_undated").uncheck().run()
    recent = {p.paper_id for p in papers if p.year is not None and p.year >= low}
    assert 0 < len(recent) < len(papers) and counted() == len(recent)
    assert any(f"{len(recent)} of {len(papers)} papers" in c.value for c in at.caption)
    topic = max((t for t in Assistant(home=home).clusters().topics if recent & set(t.paper_ids)),
                key=lambda t: len(set(t.paper_ids) - recent))  # the topic with most papers filtered out
    at.button_group(key="topic").set_value(topic.cluster_id).run()
    listed = {b.key.rsplit("-", 1)[-1] for b in at.button if (b.key or "").startswith(f"member-{topic.cluster_id}-")}
    assert listed and listed <= recent
