"""The Streamlit app driven through AppTest: the real script, a real library, the offline (extractive) provider
unless a test configures a model. Clicks inside the answer text (the inline [n] buttons of a custom component)
are covered in tests/test_ui_browser.py; everything else is here."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("streamlit")
import streamlit as st
from apptest import wait_answered
from assistant.ui.chat import topic_phrases
from assistant.ui.explore import map_rows
from assistant.ui.formatting import selected_paper
from assistant.ui.library import PAGE_ROWS, relevance_bar, table_key
from assistant.ui.rendering import cited_html, highlight_html, markdown_html, md_escape, paper_html
from assistant.ui.sources import marker_source
from assistant.ui.uploads import MAX_NAME_BYTES, safe_name, save_uploads
from browser import serve
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

import assistant.api
from assistant import Assistant
from assistant.api import DEMO_CORPUS
from assistant.bibtex import bibtex
from assistant.citations import Citation, CitedText, Span
from assistant.claims import claims
from assistant.conversations import INTERRUPTED, SavedTurn
from assistant.corpus import Paper
from assistant.corpus.display import display_title

APP = str(resources.files("assistant.ui").joinpath("app.py"))
CHAT, EXPLORE, LIBRARY = "Chat", "Explore", "Library"
QUESTION = "How can multi-agent reinforcement learning scale to many agents?"
SMALL_SEED = "paper-page-sparse-training-theory.txt"  # the single-paper page: 6 papers, a quick first-run ingest


@pytest.fixture()
def app(monkeypatch: pytest.MonkeyPatch):
    """An AppTest of ui/app.py on a given home, answering offline unless a test configures a model."""

    def make(home: Path, tab: str | None = None, conversation: str | None = None, **env: str) -> AppTest:
        for name, value in {"LITASSIST_HOME": str(home), "LITASSIST_LLM_PROVIDER": "offline", **env}.items():
            monkeypatch.setenv(name, value)
        st.cache_resource.clear()  # one Assistant (and chat model) per test, not one left by an earlier test
        at = AppTest.from_file(APP, default_timeout=180)
        if tab:
            at.session_state["tab"] = tab
        if conversation:
            at.query_params["c"] = conversation  # what a reload of the page's URL carries
        return at.run()

    return make


def answered(at: AppTest) -> AppTest:
    """Run the page again once this process has answered every question of the open conversation: in a browser,
    the fragment watching a turn in progress starts that run itself when the turn is saved."""
    wait_answered(Assistant(home=Path(os.environ["LITASSIST_HOME"])), at.session_state["conversation_id"])
    return at.run()


def ask(at: AppTest, question: str) -> SavedTurn:
    """Ask in the app; returns the turn as saved in the library's conversation store."""
    answered(at.chat_input[0].set_value(question).run())
    assert not at.exception, at.exception
    home = Path(os.environ["LITASSIST_HOME"])
    return Assistant(home=home).conversation(at.session_state["conversation_id"]).turns[-1]


def markdown_texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def html_texts(at: AppTest) -> list[str]:
    return [h.proto.body for h in at.html]


def cited_text_data(at: AppTest, key: str) -> dict:
    """The data the cited-text component was drawn with (its safe HTML)."""
    element = at.get_by_key(key)
    return json.loads(element.proto.json)


def test_first_run_offers_the_seed_corpus_and_loads_it(app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(DEMO_CORPUS / SMALL_SEED, seeds)
    monkeypatch.setattr(assistant.api, "DEMO_CORPUS", seeds)  # the app imports it on every run
    at = app(tmp_path / "home")
    assert not at.exception
    assert any("is empty" in text for text in markdown_texts(at))
    at.button(key="load_seeds").click().run()
    assert not at.exception
    report = at.session_state["last_ingest"].report
    assert report.new == 6 and not report.files_failed
    assert len(Assistant(home=tmp_path / "home").papers()) == 6
    assert not any(b.key == "load_seeds" for b in at.button)  # the offer is gone once there are papers
    assert any(c.value.startswith("6 papers") for c in at.sidebar.caption)


def test_empty_library_question_is_a_failed_turn_saying_what_to_do(app, tmp_path: Path) -> None:
    at = app(tmp_path / "home")
    turn = ask(at, QUESTION)
    assert turn.failed and "library is empty" in turn.error and "seed corpus" in turn.error
    assert [e.value for e in at.error] == [turn.error]
    assert any("no number" in c.value for c in at.caption)
    assert not any(s.label.startswith("Answer") for s in at.status)


def test_answer_is_numbered_with_inline_citations_references_and_the_source_drawer(app, seeded_copy: Path) -> None:
    home = seeded_copy
    at = app(home)
    turn = ask(at, QUESTION)
    answer = turn.answer
    assert answer is not None and answer.extractive and answer.citations
    assert at.status[0].label == f"Answer 1 · 1 search · {len(answer.evidence)} papers retrieved"
    assert any(text.startswith("- Searched for “") for text in markdown_texts(at))
    assert any(c.value.startswith("offline · extractive") for c in at.caption)
    # every [n] in the text is a button carrying the paper's title; every cited paper is listed with its number
    page = cited_text_data(at, f"answer-{turn.turn_id}")["html"]
    for citation in answer.citations:
        shown = display_title(citation.paper)  # a derived title reads "Untitled — …"
        assert f'data-number="{citation.number}" title="{shown[:40]}' in page.replace("&#x27;", "'")
    assert "<img" not in page and "<a " not in page
    references = [b for b in at.button if (b.key or "").startswith(f"answer-{turn.turn_id}-")]
    assert [b.key for b in references] == [f"answer-{turn.turn_id}-{c.number}" for c in answer.citations]
    assert not any(" authors" in b.label and "not listed" not in b.label for b in references)

    references[0].click().run()  # the drawer: the paper with exactly the sentence(s) the answer quoted
    citation = answer.citations[0]
    quoted = [s.text for claim in claims(answer) for support in claim.citations if support.number == citation.number
              for s in support.spans]
    drawer = [h for h in html_texts(at) if 'class="la-paper"' in h]
    assert len(drawer) == 1 and quoted
    assert re.findall(r"<mark>(.*?)</mark>", drawer[0]) == [highlight_html(q, []) for q in quoted]
    assert any(c.value.startswith(f"Opened from \\[{citation.number}\\] in answer 1") for c in at.caption)
    assert at.session_state["dialog"].paper.paper_id == citation.paper_id


def test_inline_marker_opens_the_claims_own_sentence() -> None:
    """What the component reports (a marker's index) becomes the paper with that claim's span highlighted; a
    weakly supported claim says so."""
    abstract = "Scaling is hard. Mean-field policies scale to many agents. Results hold on traffic."
    paper = Paper(paper_id="t:1", title="Mean Field", abstract=abstract)
    text = CitedText(text="- Mean-field policies scale to many agents. [1]\n- Results hold on traffic [1].",
                     citations=[Citation(number=1, paper_id="t:1", title="Mean Field", paper=paper)],
                     provider="offline")
    second = marker_source(text, 1, "answer 2", {})
    assert second.origin == "[1] in answer 2" and second.claim == "Results hold on traffic [1]."
    assert [s.text for s in second.spans] == ["Results hold on traffic."]
    assert marker_source(text, 7, "answer 2", {}) is None
    text.claims = claims(text)
    text.claims[0].citations[0].weak = True
    assert marker_source(text, 0, "answer 2", {}).weak


def test_conversation_survives_a_reload_and_switching_between_saved_ones(app, seeded_copy: Path) -> None:
    at = app(seeded_copy)
    first = ask(at, QUESTION)
    second = ask(at, "How is it evaluated?")
    # offline, a follow-up is made standalone by the rule in assistant.questions: "it" -> the earlier topic
    assert second.answer.standalone_question == "How is multi-agent reinforcement learning evaluated?"  # grammatical
    assert [c.value for c in at.caption if c.value.startswith("Read as")] == [  # shown under the follow-up only
        "Read as “How is multi-agent reinforcement learning evaluated?” (a follow-up, completed from the conversation)"]
    conversation_id = at.session_state["conversation_id"]
    assert at.query_params["c"] == conversation_id  # the URL names the open conversation

    reloaded = app(seeded_copy, conversation=conversation_id)  # a new session, as after a browser reload
    assert [s.label.split(" ·")[0] for s in reloaded.status] == ["Answer 1", "Answer 2"]
    assert reloaded.session_state["conversation_id"] == conversation_id

    reloaded.button(key="new_conversation").click().run()
    assert not reloaded.status and "c" not in reloaded.query_params
    other = ask(reloaded, "Which papers merge the weights of several language models?")
    saved = Assistant(home=seeded_copy).conversations()
    assert [c.title for c in saved] == ["Which papers merge the weights of several language models?",
                                        QUESTION[:59] + "…"]  # newest first, titled from the first question
    listed = [b for b in reloaded.sidebar.button if (b.key or "").startswith("conversation-")]
    assert [b.key for b in listed] == [f"conversation-{c.conversation_id}" for c in saved]
    listed[1].click().run()  # back to the first conversation
    assert reloaded.session_state["conversation_id"] == conversation_id
    assert len(reloaded.status) == 2 and first.question in markdown_texts(reloaded)
    assert other.question not in markdown_texts(reloaded)


def test_rename_and_delete_a_conversation_with_confirmation(app, seeded_copy: Path) -> None:
    at = app(seeded_copy)
    ask(at, QUESTION)
    conversation_id = at.session_state["conversation_id"]
    at.text_input(key=f"title-{conversation_id}").set_value("Scaling MARL").run()  # Enter: no button needed
    assert Assistant(home=seeded_copy).conversation(conversation_id).title == "Scaling MARL"
    listed = at.sidebar.button(key=f"conversation-{conversation_id}").label
    assert listed.startswith("Scaling MARL") and "· 1 answer" in listed  # with its date and answer count
    at.text_input(key="conversation_search").set_value("nothing like it").run()
    assert not [b for b in at.sidebar.button if (b.key or "").startswith("conversation-")]
    at.text_input(key="conversation_search").set_value("scale").run()  # a word of its question
    assert [b.key for b in at.sidebar.button if (b.key or "").startswith("conversation-")] == \
        [f"conversation-{conversation_id}"]
    at.button(key="delete_conversation").click().run()
    assert any("Scaling MARL" in text for text in markdown_texts(at))  # the confirmation names it
    assert Assistant(home=seeded_copy).conversations()  # nothing gone before the yes
    at.button(key="confirm-yes").click().run()
    assert not at.exception
    assert Assistant(home=seeded_copy).conversations() == []
    assert at.session_state["conversation_id"] is None


def test_failed_turn_is_shown_failed_and_takes_no_number(app, seeded_copy: Path) -> None:
    at = app(seeded_copy, LITASSIST_LLM_PROVIDER="openai-compatible", OPENAI_BASE_URL="http://127.0.0.1:9/v1",
             LITASSIST_LLM_MAX_RETRIES="0")
    assert any("openai-compatible" in c.value for c in at.sidebar.caption)
    failed = ask(at, QUESTION)
    assert failed.failed and failed.error.startswith("cannot reach the model at http://127.0.0.1:9/v1")
    assert [e.value for e in at.error] == [failed.error]
    at.sidebar.selectbox(key="provider").set_value("offline").run()
    answered = ask(at, QUESTION)
    assert not answered.failed
    assert [s.label.split(" ·")[0] for s in at.status] == ["Answer 1"]  # the failed turn shifted nothing
    conversation = Assistant(home=seeded_copy).conversation(at.session_state["conversation_id"])
    assert [n for n, _ in conversation.numbered()] == [1] and len(conversation.turns) == 2


def test_year_filter_with_or_without_undated_and_k_bound_every_search(app, seeded_copy: Path) -> None:
    at = app(seeded_copy)
    at.sidebar.slider(key="years").set_value((2024, 2024))
    at.sidebar.slider(key="k").set_value(3).run()
    assert at.sidebar.checkbox(key="include_undated").value  # undated papers are kept unless unticked
    with_undated = ask(at, QUESTION).answer
    assert {e.paper.year for e in with_undated.evidence} <= {2024, None}
    at.sidebar.checkbox(key="include_undated").uncheck().run()
    answer = ask(at, QUESTION).answer
    assert answer.steps[0].args["year_min"] == 2024 and answer.steps[0].args["year_max"] == 2024
    assert 0 < len(answer.evidence) <= 3
    assert {e.paper.year for e in answer.evidence} == {2024}
    assert any("year min 2024" in text for text in markdown_texts(at))


def browse_ids(at: AppTest) -> list[str]:
    return sorted(next(d for d in at.dataframe if "ID" in d.value.columns).value["ID"])


def test_author_venue_and_undated_filters_bound_the_browse_table(app, seeded_copy: Path) -> None:
    extra = seeded_copy.parent / "extra.jsonl"
    extra.write_text("\n".join(json.dumps(r) for r in [
        {"id": "doe-1", "title": "Gossip protocols for swarm maps", "abstract": "Robots gossip their maps.",
         "authors": ["Jane Doe"], "venue": "ICML", "year": 2024},
        {"id": "roe-1", "title": "Undated notes on swarm maps", "abstract": "Robots broadcast their maps.",
         "authors": ["John Roe"], "venue": "NeurIPS Workshop"}]), encoding="utf-8")
    assert Assistant(home=seeded_copy).ingest([extra]).new == 2
    at = app(seeded_copy, tab=LIBRARY)
    at.sidebar.text_input(key="author").set_value("DOE").run()
    assert browse_ids(at) == ["doe-1"]
    assert any("within the sidebar filters (author 'DOE')" in c.value for c in at.caption)
    at.sidebar.text_input(key="author").set_value("").run()
    at.sidebar.text_input(key="venue").set_value("neurips").run()
    assert browse_ids(at) == ["roe-1"]  # undated, kept: no year range is set
    at.sidebar.slider(key="years").set_value((2024, 2024)).run()
    assert browse_ids(at) == ["roe-1"]  # a year range keeps undated papers while "include undated" is ticked
    at.sidebar.checkbox(key="include_undated").uncheck().run()
    assert browse_ids(at) == []
    at.sidebar.text_input(key="venue").set_value("").run()
    shown = browse_ids(at)
    assert "doe-1" in shown and "roe-1" not in shown
    assert all(p.year == 2024 for p in Assistant(home=seeded_copy).papers() if p.paper_id in shown)


def test_model_answer_streams_tokens_counts_usage_and_drops_unknown_citations(
        app, seeded_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A (fake) tool-calling model behind the page: its tool step, streamed tokens, usage and citation check.
    Its reply also carries an image and raw HTML: they reach the page as text."""
    from langchain_core.messages import AIMessage
    from test_agent import ScriptedChatModel, tool_call

    import assistant.llm

    reply = ("Mean-field methods reduce many agents to two [1]. Nothing supports this [42]. "
             "![status](http://127.0.0.1:9/exfil?q=secret) <img src=http://127.0.0.1:9/img2>")
    model = ScriptedChatModel(messages=iter([tool_call("search_papers", query="mean field reinforcement learning"),
                                             AIMessage(reply)]), calls=[])
    monkeypatch.setattr(assistant.llm, "chat_model", lambda settings: model)
    at = app(seeded_copy, LITASSIST_LLM_PROVIDER="openai-compatible", OPENAI_BASE_URL="http://127.0.0.1:9/v1",
             LITASSIST_LLM_MODEL="scripted")
    turn = ask(at, QUESTION)
    answer = turn.answer
    assert len(model.calls) == 2  # the question with its evidence, then the answer after the tool result
    assert "<evidence" in str(model.calls[0][-1].content)
    assert [c.number for c in answer.citations] == [1] and answer.removed_citations == 1
    assert "[42]" not in answer.text and not answer.extractive
    assert at.status[0].label == f"Answer 1 · 2 searches · {len(answer.evidence)} papers retrieved"
    assert any("mean field reinforcement learning" in text for text in markdown_texts(at))
    caption = next(c.value for c in at.caption if c.value.startswith("openai-compatible · scripted"))
    assert f"{answer.usage.prompt_tokens:,} prompt + {answer.usage.completion_tokens:,} completion tokens" in caption
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert [b.key for b in at.button if (b.key or "").startswith(f"answer-{turn.turn_id}-")] == [
        f"answer-{turn.turn_id}-1"]
    page = cited_text_data(at, f"answer-{turn.turn_id}")["html"]
    assert "![status](http://127.0.0.1:9/exfil?q=secret)" in page and "&lt;img src=http://127.0.0.1:9/img2&gt;" in page
    assert "<img" not in page and "href" not in page


def test_rejected_api_key_is_one_friendly_line(app, seeded_copy: Path) -> None:
    """A real HTTP server on 127.0.0.1 that answers 401, as OpenAI does for a bad key."""
    from scripted_openai import scripted_openai

    with scripted_openai("Incorrect API key provided", status=401) as (base_url, _):
        at = app(seeded_copy, LITASSIST_LLM_PROVIDER="openai-compatible", LITASSIST_LLM_MAX_RETRIES="0",
                 OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-wrong")
        turn = ask(at, QUESTION)
    assert turn.failed
    assert [e.value for e in at.error] == ["the model server rejected the API key: check OPENAI_API_KEY"]


def test_upload_reports_new_merged_skipped_and_failed_files(app, seeded_copy: Path) -> None:
    seed = next(p for p in Assistant(home=seeded_copy).papers() if p.year and not p.title_derived)
    bib = (
        "@article{new1, title={Sparse Mixtures of Reviewers for Peer Review}, author={Doe, Jane and Roe, Rick},"
        " year={2022}, journal={Journal of Imaginary Results}, abstract={We study how sparse mixtures of reviewer"
        " models assign papers to reviewers, and show that routing each paper to few experts improves accuracy.}}\n"
        f"@article{{dup, title={{{seed.title}}}, year={{{seed.year}}}, abstract={{{seed.abstract}}}}}\n"
        "@article{bare, title={A Title Without Any Abstract}, year={2020}}\n"
        "@misc{empty, year={2021}}\n"
    )
    at = app(seeded_copy, tab=LIBRARY)
    at.file_uploader[0].set_value([("refs.bib", bib.encode(), "text/x-bibtex"),
                                   ("broken.ris", b"\x00\x01binary", "application/x-research-info-systems")])
    at.run()
    at.button(key="add_files").click().run()
    assert not at.exception
    report = at.session_state["last_ingest"].report
    assert (report.new, report.without_abstract, report.merged_duplicates) == (2, 1, 1)
    assert [(s.position, s.label) for s in report.skipped] == [(4, "empty")]
    assert [(Path(f.file).name, f.reason) for f in report.files_failed] == [
        ("broken.ris", "binary file (a NUL byte at offset 0), not a text export")]
    assert {m.label: m.value for m in at.metric}["New"] == "2"
    assert {m.label: m.value for m in at.metric}["Without abstract"] == "1"
    assert {m.label: m.value for m in at.metric}["Merged"] == "1"
    assert any("broken.ris" in e.value and "binary file" in e.value for e in at.error)
    assert (seeded_copy / "uploads" / "refs.bib").read_text() == bib
    assert any(p.title == "Sparse Mixtures of Reviewers for Peer Review" for p in Assistant(home=seeded_copy).papers())
    added = at.expander(key="ingest-added")
    assert added.label == "2 papers added"  # named, not only counted
    listed = added.markdown[0].value
    assert "Sparse Mixtures of Reviewers for Peer Review" in listed and "A Title Without Any Abstract" in listed
    assert seed.title[:30] not in listed  # the merged duplicate was not added


def select_rows(at: AppTest, papers: list[Paper], rows: list[int]) -> None:
    """Select table rows as a click would (Streamlit takes a selection through session state)."""
    at.session_state[table_key(papers)] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    at.run()


def test_delete_names_every_paper_and_waits_for_the_yes(app, seeded_copy: Path) -> None:
    papers = Assistant(home=seeded_copy).papers()
    at = app(seeded_copy, tab=LIBRARY)
    select_rows(at, papers, [0, 2, 5])
    victims = [papers[0], papers[2], papers[5]]
    assert at.session_state["selected_papers"] == [p.paper_id for p in victims]
    at.button(key="delete_button").click().run()
    confirmation = "\n".join(markdown_texts(at))
    assert "Delete 3 papers from the library?" in confirmation
    assert all(md_escape(p.paper_id) in confirmation for p in victims)
    at.button(key="confirm-no").click().run()
    assert len(Assistant(home=seeded_copy).papers()) == len(papers)  # cancelled: nothing went
    at.button(key="delete_button").click().run()
    at.button(key="confirm-yes").click().run()
    assert not at.exception
    remaining = {p.paper_id for p in Assistant(home=seeded_copy).papers()}
    assert remaining == {p.paper_id for p in papers} - {p.paper_id for p in victims}
    notice = at.success[0].value
    assert notice.startswith("Deleted 3 papers") and md_escape(victims[0].title[:30]) in notice
    assert at.session_state["selected_papers"] == []  # no other paper inherits the deleted rows' positions


def test_table_selection_follows_the_paper_not_the_row(app, seeded_copy: Path) -> None:
    papers = Assistant(home=seeded_copy).papers()
    at = app(seeded_copy, tab=LIBRARY)
    select_rows(at, papers, [4])
    chosen = papers[4]
    Assistant(home=seeded_copy).remove(paper_ids=[papers[0].paper_id])  # rows shift up by one underneath
    at.run()
    assert at.session_state["selected_papers"] == [chosen.paper_id]
    assert any(chosen.title[:40] in h for h in html_texts(at))  # the reader shows the same paper
    at.text_input(key="papers_filter").set_value(chosen.title[:25]).run()
    assert at.session_state["selected_papers"] == [chosen.paper_id]


def test_forget_a_source_file_names_the_papers_that_go(app, seeded_copy: Path) -> None:
    papers = Assistant(home=seeded_copy).papers()
    small = next(s.file for p in papers for s in p.sources if s.file.endswith(SMALL_SEED))
    going = [p for p in papers if all(s.file == small for s in p.sources)]
    at = app(seeded_copy, tab=LIBRARY)
    at.selectbox(key="forget_source").set_value(small).run()
    at.button(key="forget_button").click().run()
    confirmation = "\n".join(markdown_texts(at))
    assert f"Forget {SMALL_SEED}?" in confirmation and all(md_escape(p.paper_id) in confirmation for p in going)
    at.button(key="confirm-yes").click().run()
    assert not at.exception
    remaining = Assistant(home=seeded_copy).papers()
    assert not any(s.file == small for p in remaining for s in p.sources)
    assert at.success[0].value.startswith(f"Forgot {md_escape(SMALL_SEED)}")


def test_no_page_run_reads_every_paper(app, seeded_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Assistant.papers` parses every record (minutes at a million papers): no page run calls it, in any tab, with
    or without filters, paging the table, filtering it, forgetting a file or uploading one. The table shows 200
    rows a page, of the papers within the filters and the text."""
    extra = seeded_copy.parent / "extra.jsonl"
    extra.write_text("\n".join(json.dumps({"id": f"extra-{i:03d}", "title": f"Swarm paper {i}", "year": 2020 + i % 3,
                                           "abstract": f"Robots number {i} share maps by gossip."})
                               for i in range(40)), encoding="utf-8")
    lib = Assistant(home=seeded_copy)
    assert lib.ingest([extra]).new == 40
    ids = sorted(p.paper_id for p in lib.papers())  # read here, before the app runs
    assert len(ids) > PAGE_ROWS
    lib.clusters()  # computed and saved before Explore opens, as after any earlier visit

    def every_paper(self: Assistant) -> list[Paper]:
        raise AssertionError("a page run read every paper")

    monkeypatch.setattr(Assistant, "papers", every_paper)
    at = app(seeded_copy)
    assert not at.exception and any(f"{len(ids)} papers" in c.value for c in at.sidebar.caption)
    at.session_state["tab"] = LIBRARY
    at.run()
    assert browse_ids(at) == ids[:PAGE_ROWS]
    at.button(key="browse_next").click().run()
    assert browse_ids(at) == ids[PAGE_ROWS:]
    assert any(f"rows {PAGE_ROWS + 1}-{len(ids)}" in c.value for c in at.caption)
    at.text_input(key="papers_filter").set_value("gossip").run()  # a new query starts at its first page
    assert browse_ids(at) == [f"extra-{i:03d}" for i in range(40)]
    assert "browse_next" not in [b.key for b in at.button]  # one page: no pager
    at.sidebar.slider(key="years").set_value((2021, 2021)).run()
    at.sidebar.checkbox(key="include_undated").uncheck().run()
    assert browse_ids(at) == [f"extra-{i:03d}" for i in range(1, 40, 3)]
    at.session_state["tab"] = EXPLORE  # the topics within the year range
    at.run()
    assert not at.exception and at.button_group(key="topic").options
    at.session_state["tab"] = LIBRARY
    at.run()
    at.selectbox(key="forget_source").set_value(str(extra.resolve())).run()
    at.button(key="forget_button").click().run()
    assert "These 40 papers come only from this file" in "\n".join(markdown_texts(at))
    at.button(key="confirm-yes").click().run()
    at.file_uploader[0].set_value([("more.jsonl", extra.read_bytes(), "application/jsonl")]).run()
    at.button(key="add_files").click().run()
    assert not at.exception
    assert at.expander(key="ingest-added").label == "40 papers added"


def test_the_app_never_calls_papers() -> None:
    """The runtime test above covers the page runs it makes; this covers every line of ui/."""
    calls = [f"{path.name}:{number}" for path in Path(APP).parent.glob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"\.papers\(\)", line)]
    assert calls == []


def test_search_shows_rank_and_relative_relevance_not_raw_scores(app, seeded_copy: Path) -> None:
    at = app(seeded_copy, tab=LIBRARY)
    at.text_input(key="library_query").set_value("mean field multi-agent reinforcement learning").run()
    labels = [e.label for e in at.expander if re.match(r"^\d+\. ", e.label)]
    assert labels[0].startswith("1. ") and len(labels) == 10
    assert not any(re.search(r"\b[01]\.\d\d\b", label) for label in labels)
    assert relevance_bar(2.0, 4.0) == ('<div class="la-relevance" title="relevance relative to the best match">'
                                       '<span style="width:50%"></span></div>')


def test_explore_shows_topics_and_asks_about_one(app, seeded_copy: Path) -> None:
    at = app(seeded_copy, tab=EXPLORE)
    assert not at.exception
    cluster_map = Assistant(home=seeded_copy).clusters()
    first = cluster_map.topics[0]
    legend = next(h for h in html_texts(at) if 'class="la-legend"' in h)
    assert legend.count("<span>") == len(cluster_map.groups())
    summary = cited_text_data(at, f"topic-{first.cluster_id}")["html"]
    assert 'class="la-cite"' in summary
    at.button(key=f"topic-{first.cluster_id}-1").click().run()  # a summary's reference opens the paper
    assert any('class="la-paper"' in h for h in html_texts(at))
    second = cluster_map.topics[1]
    at.button_group(key="topic").set_value(second.cluster_id).run()
    assert any(f"{len(second.paper_ids)} papers" in text for text in markdown_texts(at))

    answered(at.button(key=f"ask-{second.cluster_id}").click().run())
    assert not at.exception
    assert at.session_state["tab"] == CHAT
    turn = Assistant(home=seeded_copy).conversation(at.session_state["conversation_id"]).turns[-1]
    assert turn.question == "What are the main findings and methods in these papers?"
    assert turn.filters.paper_ids == second.paper_ids and turn.scope.startswith("the topic “")
    assert {e.paper.paper_id for e in turn.answer.evidence} <= set(second.paper_ids)
    assert turn.answer.steps[0].args["papers"] == len(second.paper_ids)
    title = Assistant(home=seeded_copy).conversation(at.session_state["conversation_id"]).title
    assert title.startswith(f"About the topic “{second.label[:20]}")  # each topic's conversation titled by it


def test_map_hover_says_undated_never_null(seeded_home: Path) -> None:
    lib = Assistant(home=seeded_home)
    cluster_map = lib.clusters()
    rows = map_rows(cluster_map, {c.cluster_id: c.label for c in cluster_map.groups()}, lib.paper_years)
    assert {r["year"] for r in rows} >= {"undated", "2024"} and None not in {r["year"] for r in rows}


# --- the server -------------------------------------------------------------------------------------------------


def listening_hosts(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port`, from /proc/net/tcp{,6} (hex, little-endian IPv4)."""
    hosts = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                hosts.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)) if len(address) == 8
                          else address)
    return hosts


def websocket_handshake(port: int, host: str) -> str:
    """The status line the app's WebSocket answers to a browser handshake sent with this Host header."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{host}\r\n"
               "Sec-WebSocket-Protocol: streamlit\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(request.encode())
        return connection.recv(200).decode(errors="replace").split("\r\n")[0]


@pytest.mark.slow
def test_plain_streamlit_run_listens_on_loopback_only_and_refuses_other_host_names(tmp_path: Path) -> None:
    """`streamlit run ui/app.py` with no flags: the app's own config keeps it on 127.0.0.1, and its connection
    answers only loopback Host names, so a page whose name resolves to 127.0.0.1 (DNS rebinding) gets nothing."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp on this system")
    with serve(tmp_path / "home", {"LITASSIST_LLM_PROVIDER": "offline"}) as url:
        port = int(url.rsplit(":", 1)[1])
        assert listening_hosts(port) == {"127.0.0.1"}
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            assert websocket_handshake(port, host) == "HTTP/1.1 101 Switching Protocols", host
        for host in (f"rebind.attacker.example:{port}", "evil.test"):
            assert websocket_handshake(port, host) == "HTTP/1.1 403 Forbidden", host


def test_litassist_ui_allows_the_loopback_names_the_bound_host_and_the_ones_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant.cli

    commands: list[list[str]] = []
    monkeypatch.setattr(assistant.cli, "run_forwarding_signals", lambda command: commands.append(command) or 0)
    cli = assistant.cli.app
    result = CliRunner().invoke(cli, ["ui", "--host", "0.0.0.0", "--allow-host", "box.lan"])
    assert result.exit_code == 0, result.output
    allowed = [arg.split("=", 1)[1] for arg in commands[0] if arg.startswith("--server.allowedHosts=")]
    assert allowed == ["localhost", "127.0.0.1", "::1", "box.lan"]


# --- the helpers behind the page ------------------------------------------------------------------------


def test_paper_text_and_model_output_render_as_text_with_only_the_apps_own_links() -> None:
    hostile = Paper(paper_id="t:x", title="Pixel ![p](http://127.0.0.1:9/pixel.png) see http://evil.example/a",
                    abstract="We <b>propose</b> $5 ![p](http://127.0.0.1:9/pixel.png) <img src=x onerror=alert(1)> "
                             "and [click](javascript:alert(1)) or www.evil.example, mail a@b.example.",
                    url="javascript:alert(1)", doi="10.1000/x\"><script>", arxiv_id="2101.00001", authors=[])
    card = paper_html(hostile, [Span(start=3, end=17, text="<b>propose</b>")], "authors not listed")
    assert "<img" not in card and "<script" not in card and 'href="javascript' not in card
    assert re.findall(r'href="([^"]+)"', card) == ["https://doi.org/10.1000/x%22%3E%3Cscript%3E",
                                                    "https://arxiv.org/abs/2101.00001"]
    assert "<mark>&lt;b&gt;propose&lt;/b&gt;</mark>" in card and "&#36;5" in card
    rendered = markdown_html("**Bold** and ![status](http://127.0.0.1:9/exfil?q=1) [x](http://a.example) "
                             "<http://b.example> <img src=y>\n\n[r]: http://c.example\n\n- item [1]")
    assert "<strong>Bold</strong>" in rendered and "<li>item [1]</li>" in rendered
    assert "<img" not in rendered and "<a" not in rendered and "[r]: http://c.example" in rendered
    label = md_escape("![p](http://x.example/p.png) www.y.example a@b.example *em* $x$")
    assert "![" not in label and "http://" not in label and "www." not in label and "a@" not in label


def test_cited_html_makes_every_marker_a_button_with_its_title() -> None:
    paper = Paper(paper_id="t:1", title='Title with "quotes" & <tags>', abstract="Abstract.", year=2020)
    text = CitedText(text="One claim [1]. Two claims [1][2].\n\nReferences\n[1] x",
                     references="\n\nReferences\n[1] x", provider="offline",
                     citations=[Citation(number=1, paper_id="t:1", title=paper.title, paper=paper)])
    html = cited_html(text)
    assert html.count('class="la-cite"') == 2 and "References" not in html
    assert 'title="Title with &quot;quotes&quot; &amp; &lt;tags&gt; (2020)"' in html
    assert '[<button type="button" class="la-cite" data-marker="1" data-number="1"' in html and "</button>][2]" in html


def test_cited_html_leaves_a_quoted_papers_brackets_as_escaped_text() -> None:
    """An extractive text quotes a paper whose sentence holds its own "[1][2]": they are its text (escaped like
    all of it), not buttons for this text's [1] and [2]; the markers keep their indexes for the drawer."""
    first, second = (Paper(paper_id=f"t:{n}", title=f"Paper {n}", abstract=quote, year=2020) for n, quote in
                     ((1, "Tags <img src=x> stay text, as others found [1][2]."), (2, "A second quoted sentence.")))
    body = f"- {second.abstract} [1]\n- {first.abstract} [2]"
    text = CitedText(text=body, provider="offline", extractive=True,
                     quoted=[(2, 2 + len(second.abstract)), (body.index(first.abstract), body.rindex(" [2]"))],
                     citations=[Citation(number=n, paper_id=p.paper_id, title=p.title, paper=p)
                                for n, p in ((1, second), (2, first))])
    html = cited_html(text)
    assert html.count('class="la-cite"') == 2 and "&lt;img src=x&gt; stay text, as others found [1][2]." in html
    assert "<img" not in html
    view = marker_source(text, 1, "answer 1", {})
    assert view.paper.paper_id == "t:1" and view.claim == f"{first.abstract} [2]"
    assert [s.text for s in view.spans] == [first.abstract]
    assert marker_source(text, 2, "answer 1", {}) is None  # only two markers


def test_highlight_merges_overlapping_spans_and_escapes_the_rest() -> None:
    abstract = "We propose <b>X</b>. It costs $5 and scales. Results improve by 10% on A & B."
    spans = [Span(start=21, end=44, text=""), Span(start=30, end=44, text="")]
    assert highlight_html(abstract, spans) == (
        "We propose &lt;b&gt;X&lt;/b&gt;. <mark>It costs &#36;5 and scales.</mark> Results improve by 10% on A &amp; B."
    )
    assert "<mark>" not in highlight_html(abstract, [])


def test_app_styles_survive_the_html_sanitizer() -> None:
    """Streamlit drops a <style> whose text holds `<` followed by a letter: the whole stylesheet would vanish."""
    css = resources.files("assistant.ui").joinpath("app.css").read_text(encoding="utf-8")
    assert not re.search(r"<[/\w!]", css)


def test_bibtex_of_cited_papers(seeded_home: Path) -> None:
    papers = Assistant(home=seeded_home).papers()
    dated = next(p for p in papers if p.year and p.authors)
    other = next(p for p in papers if p.paper_id != dated.paper_id)
    entries = bibtex([dated, dated, other])
    assert entries.count("\n@") + entries.startswith("@") == 2  # duplicates collapse
    key = entries.split("{", 1)[1].split(",", 1)[0]
    assert key.startswith(dated.authors[0].split()[-1].lower()[:3]) and str(dated.year) in key
    assert f"  year = {{{dated.year}}}" in entries
    import bibtexparser

    parsed = bibtexparser.parse_string(entries)
    assert len(parsed.entries) == 2 and not parsed.failed_blocks


def upload(name: str, data: bytes) -> SimpleNamespace:
    return SimpleNamespace(name=name, size=len(data), getvalue=lambda: data)


def test_uploads_are_kept_inside_the_folder_and_limited(tmp_path: Path) -> None:
    result = save_uploads([upload("../../etc/evil.bib", b"@misc{a}"), upload("slides.pptx", b"PK"),
                           upload("big.csv", b"x" * 2048), upload(".hidden.ris", b"TY  - JOUR")],
                          tmp_path / "uploads", max_mb=0.001)
    assert [p.name for p in result.saved] == ["evil.bib", "hidden.ris"]
    assert all(p.parent == tmp_path / "uploads" for p in result.saved)
    assert result.rejected[0].startswith("slides.pptx: .pptx is not a supported format")
    assert result.rejected[1] == ("big.csv: 0.0 MB is over the 0.001 MB limit per file; split the export or "
                                  "ingest it with `litassist ingest`")
    assert safe_name("...") == "upload.txt"
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == ["evil.bib", "hidden.ris"]  # no .part left


def test_upload_names_never_replace_another_files_papers(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    first = save_uploads([upload("my refs.jsonl", b"1")], folder).saved
    second = save_uploads([upload("my_refs.jsonl", b"2")], folder).saved
    assert first != second and first[0].read_bytes() == b"1"  # two files, two sources: nothing replaced
    batch = save_uploads([upload("../../x.bib", b"unix"), upload("..\\x.bib", b"windows"),
                          upload("X.bib", b"upper")], folder).saved
    assert [p.name for p in batch] == ["x.bib", "x (2).bib", "X (3).bib"]
    assert [p.read_bytes() for p in batch] == [b"unix", b"windows", b"upper"]
    long = "a" * 250 + ".bib"  # 254 characters: the staging file's suffix must not push it over the limit
    saved = save_uploads([upload(long, b"long")], folder).saved[0]
    assert saved.suffix == ".bib" and len(saved.name.encode()) <= MAX_NAME_BYTES and saved.read_bytes() == b"long"
    assert save_uploads([upload("é" * 200 + ".ris", b"wide")], folder).saved[0].name.endswith(".ris")
    assert safe_name("a\x00b\nc.bib") == "a_b_c.bib"


def test_ingesting_an_upload_of_the_same_name_updates_it_in_place(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    save_uploads([upload("refs.bib", b"old")], folder)
    assert save_uploads([upload("refs.bib", b"new")], folder).saved[0].read_bytes() == b"new"
    assert [p.name for p in folder.iterdir()] == ["refs.bib"]


def test_topic_phrases_prefer_phrases_then_long_words_and_acronyms() -> None:
    assert topic_phrases("RL, reinforcement learning, control", ["rl", "reinforcement", "reinforcement learning",
                                                                   "control", "policy", "environments"]) == \
        ["reinforcement learning", "RL", "reinforcement", "control", "policy", "environments"]
    assert topic_phrases("Graph neural, node, GNN", ["graph neural", "node", "gnn", "nodes"]) == \
        ["graph neural", "GNN", "nodes"]


def test_map_selection_gives_the_clicked_paper() -> None:
    assert selected_paper({"pick": [{"paper_id": "t:abc"}]}, "pick") == "t:abc"
    assert selected_paper({"pick": []}, "pick") is None
    assert selected_paper({}, "pick") is None


def test_the_uploader_takes_every_extension_ingest_knows() -> None:
    from assistant.ui.uploads import UPLOAD_TYPES

    from assistant.corpus import _EXTENSION_HINTS

    assert {suffix.lstrip(".") for suffix in _EXTENSION_HINTS} | {"txt", "gz", "pdf"} <= set(UPLOAD_TYPES)


# --- never lose a question, evidence, suggestions -----------------------------------------------------------------


def test_interrupted_turn_is_kept_and_retried(app, seeded_copy: Path) -> None:
    lib = Assistant(home=seeded_copy)
    info = lib.start_conversation()
    child = subprocess.Popen(["true"])
    child.wait()  # the process that was answering is gone (an app killed mid-answer)
    lib.conversation_store.add_pending(info.conversation_id, QUESTION, worker=child.pid)
    at = app(seeded_copy, conversation=info.conversation_id)
    assert [e.value for e in at.error] == [INTERRUPTED] and QUESTION in markdown_texts(at)
    answered(at.button(key=f"retry-{lib.conversation(info.conversation_id).turns[0].turn_id}").click().run())
    assert not at.exception
    turns = Assistant(home=seeded_copy).conversation(info.conversation_id).turns
    assert [(t.question, t.state) for t in turns] == [(QUESTION, "interrupted"), (QUESTION, "answered")]
    assert [s.label.split(" ·")[0] for s in at.status] == ["Answer 1"]


def test_deleted_conversations_link_is_a_not_found_page(app, seeded_copy: Path) -> None:
    lib = Assistant(home=seeded_copy)
    info = lib.start_conversation()
    lib.conversation_store.add_turn(info.conversation_id, "q", error="x")
    lib.delete_conversation(info.conversation_id)
    at = app(seeded_copy, conversation=info.conversation_id)
    assert any(h.value == "Conversation not found" for h in at.subheader)
    assert any(info.conversation_id in text for text in markdown_texts(at))
    at.button(key="missing-new").click().run()
    assert not any(h.value == "Conversation not found" for h in at.subheader)


def test_damaged_conversations_file_is_one_line_and_the_library_still_works(app, seeded_copy: Path) -> None:
    lib = Assistant(home=seeded_copy)
    info = lib.start_conversation()
    lib.conversation_store.add_turn(info.conversation_id, "q", error="x")
    database = seeded_copy / "conversations.sqlite3"
    database.write_bytes(b"garbage!" * 8 + database.read_bytes()[64:])
    at = app(seeded_copy, conversation=info.conversation_id)
    assert not at.exception
    (line,) = [e.value for e in at.error]
    assert line.startswith(f"{database} cannot be read") and "your library is not affected" in line
    assert "chroma" not in line and "Cannot open the library" not in line
    assert at.chat_input[0].disabled  # a question could not be saved
    at.session_state["tab"] = LIBRARY
    at.run()
    assert browse_ids(at)  # the papers are all there


def test_evidence_table_cited_first_ask_only_about_them_and_similar(app, seeded_copy: Path) -> None:
    at = app(seeded_copy)
    turn = ask(at, QUESTION)
    answer = turn.answer
    table = at.dataframe(key=f"evidence-{turn.turn_id}").value
    cited = [c.number for c in answer.citations]
    assert list(table["Cited"][:len(cited)]) == [f"[{n}]" for n in cited]
    assert set(table["Cited"][len(cited):]) <= {"no"} and len(table) == len({e.paper.paper_id for e in answer.evidence})
    assert list(table.columns) == ["Cited", "Title", "Authors", "Year", "Venue", "Best sentence"]
    first = answer.citations[0]
    quoted = [part.rstrip("…") for part in table["Best sentence"][0].split(" … ")]
    assert all(part in " ".join(first.paper.abstract.split()) for part in quoted)  # sentences of the paper itself
    code = next(c.value for c in at.code)
    assert f"**{QUESTION}**" in code and f"[{first.number}] {first.title}" in code  # "copy answer with references"

    at.session_state[f"evidence-{turn.turn_id}"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()  # one row selected, as a click would: the actions are about it alone
    assert at.button(key=f"evidence-ask-{turn.turn_id}").label == "Ask only about 1 selected"
    at.session_state[f"evidence-{turn.turn_id}"] = {"selection": {"rows": [], "columns": [], "cells": []}}
    at.run()
    at.button(key=f"evidence-similar-{turn.turn_id}").click().run()
    similar = [b for b in at.button if (b.key or "").startswith(f"similar-{turn.turn_id}-")]
    shown = {e.paper.paper_id for e in answer.evidence}
    assert similar and not {b.label for b in similar} & {e.paper.title for e in answer.evidence}

    at.button(key=f"evidence-ask-{turn.turn_id}").click().run()
    assert "of answer 1" in at.session_state["scope"].describe()
    narrowed = ask(at, "Which of them use mean field theory?")
    assert {e.paper.paper_id for e in narrowed.answer.evidence} <= shown
    assert narrowed.scope.startswith(f"{len(shown)} papers of answer 1")


def test_empty_chat_offers_example_questions_and_an_answer_follow_ups(app, seeded_copy: Path) -> None:
    at = app(seeded_copy)
    examples = [b for b in at.button if (b.key or "").startswith("example-")]
    assert len(examples) == 3 and len({b.label for b in examples}) == 3
    largest = Assistant(home=seeded_copy).clusters().topics[0]
    phrases = topic_phrases(largest.label, largest.keywords)
    assert examples[0].label == f"What are the main findings on {' and '.join(phrases[:2])}?"
    assert all(phrase.lower() in largest.keywords for phrase in phrases)
    answered(examples[0].click().run())
    turn = Assistant(home=seeded_copy).conversation(at.session_state["conversation_id"]).turns[-1]
    assert turn.question == examples[0].label and turn.answer is not None
    suggested = [b for b in at.button if (b.key or "").startswith(f"follow-{turn.turn_id}-")]
    assert suggested and all(b.label.endswith("?") for b in suggested)
    answered(suggested[0].click().run())
    assert Assistant(home=seeded_copy).conversation(at.session_state["conversation_id"]).turns[-1].question == \
        suggested[0].label
