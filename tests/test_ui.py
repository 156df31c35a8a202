"""The Streamlit app driven through AppTest: the real script, a real library, the offline (extractive) provider."""

from __future__ import annotations

import html
import shutil
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("streamlit")
import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

import assistant.api  # noqa: E402
from assistant.agent import Answer  # noqa: E402
from assistant import Assistant  # noqa: E402
from assistant.api import DEMO_CORPUS  # noqa: E402


from assistant.bibtex import bibtex  # noqa: E402
from assistant.ui.conversation import Turn, conversation_markdown, history  # noqa: E402
from assistant.ui.formatting import highlight, selected_paper  # noqa: E402
from assistant.ui.browser import serve  # noqa: E402
from assistant.ui.uploads import safe_name, save_uploads  # noqa: E402

APP = str(resources.files("assistant.ui").joinpath("app.py"))
CHAT, EXPLORE, LIBRARY = ":material/forum: Chat", ":material/hub: Explore", ":material/library_books: Library"
QUESTION = "How can multi-agent reinforcement learning scale to many agents?"
SMALL_SEED = "paper-page-sparse-training-theory.txt"  # the single-paper page: 6 papers, a quick first-run ingest


@pytest.fixture()
def app(monkeypatch: pytest.MonkeyPatch):
    """An AppTest of ui/app.py on a given home, answering offline unless a test configures a model."""

    def make(home: Path, tab: str | None = None, **env: str) -> AppTest:
        for name, value in {"LITASSIST_HOME": str(home), "LITASSIST_LLM_PROVIDER": "offline", **env}.items():
            monkeypatch.setenv(name, value)
        st.cache_resource.clear()  # one Assistant (and chat model) per test, not one left by an earlier test
        at = AppTest.from_file(APP, default_timeout=180)
        if tab:
            at.session_state["tab"] = tab
        return at.run()

    return make


def ask(at: AppTest, question: str) -> Turn:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at.session_state["turns"][-1]


def markdown_texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


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


def test_empty_library_question_is_one_line_saying_what_to_do(app, tmp_path: Path) -> None:
    at = app(tmp_path / "home")
    turn = ask(at, QUESTION)
    assert turn.answer is None
    assert [e.value for e in at.error] == [turn.error]
    assert "library is empty" in turn.error and "seed corpus" in turn.error


def test_answer_shows_steps_citations_usage_and_opens_the_cited_source(app, seeded_home: Path) -> None:
    at = app(seeded_home)
    turn = ask(at, QUESTION)
    answer = turn.answer
    assert answer is not None and answer.extractive and answer.citations
    assert at.status[0].label == f"1 search · {len(answer.evidence)} papers retrieved"
    assert any(text.startswith("- Searched for “") for text in markdown_texts(at))
    cited = [b for b in at.button if (b.key or "").startswith("cite-0-")]
    assert [b.key for b in cited] == [f"cite-0-{c.number}" for c in answer.citations]
    assert any(c.value.startswith("offline · extractive") for c in at.caption)

    cited[0].click().run()
    citation = answer.citations[0]
    passage = next(e.passage for e in answer.evidence if e.paper.paper_id == citation.paper_id)
    panel = markdown_texts(at)
    assert any(citation.title[:30] in text for text in panel)
    marked = [text for text in panel if "<mark>" in text]
    assert len(marked) == 1 and f"<mark>{html.escape(passage)[:60]}" in marked[0].replace("&#36;", "$")
    at.button(key="close-chat").click().run()
    assert not any("<mark>" in text for text in markdown_texts(at))


def test_follow_up_uses_the_history_and_the_conversation_survives_reruns(app, seeded_home: Path) -> None:
    at = app(seeded_home)
    first = ask(at, QUESTION)
    second = ask(at, "How is it evaluated?")
    # offline, a follow-up is made standalone by prefixing the previous question
    assert second.answer.standalone_question == f"{QUESTION} How is it evaluated?"
    at.run()
    assert len(at.chat_message) == 4
    assert [t.question for t in at.session_state["turns"]] == [first.question, second.question]
    exported = conversation_markdown(at.session_state["turns"])
    assert f"## {QUESTION}" in exported and "**References**" in exported
    assert not any(b.disabled for b in at.sidebar.download_button)


def test_year_filter_and_k_bound_every_search(app, seeded_home: Path) -> None:
    at = app(seeded_home)
    at.sidebar.slider(key="years").set_value((2024, 2024))
    at.sidebar.slider(key="k").set_value(3).run()
    answer = ask(at, QUESTION).answer
    assert answer.steps[0].args["year_min"] == 2024 and answer.steps[0].args["year_max"] == 2024
    assert 0 < len(answer.evidence) <= 3
    assert {e.paper.year for e in answer.evidence} == {2024}
    assert any("year min 2024" in text for text in markdown_texts(at))


def test_unreachable_model_is_one_friendly_line(app, seeded_home: Path) -> None:
    at = app(seeded_home, LITASSIST_LLM_PROVIDER="openai-compatible", OPENAI_BASE_URL="http://127.0.0.1:9/v1",
             LITASSIST_LLM_MAX_RETRIES="0")
    assert any("openai-compatible" in c.value for c in at.sidebar.caption)
    turn = ask(at, QUESTION)
    assert turn.answer is None
    assert [e.value for e in at.error] == [turn.error]
    assert turn.error.startswith("cannot reach the model at http://127.0.0.1:9/v1")


def test_model_answer_streams_tokens_counts_usage_and_drops_unknown_citations(
        app, seeded_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A (fake) tool-calling model behind the page: its tool step, streamed tokens, usage and citation check."""
    from langchain_core.messages import AIMessage
    from test_agent import ScriptedChatModel, tool_call

    import assistant.llm

    model = ScriptedChatModel(messages=iter([tool_call("search_papers", query="mean field reinforcement learning"),
                                             AIMessage("Mean-field methods reduce many agents to two [1]. "
                                                       "Nothing supports this [42].")]), calls=[])
    monkeypatch.setattr(assistant.llm, "chat_model", lambda settings: model)
    at = app(seeded_home, LITASSIST_LLM_PROVIDER="openai-compatible", OPENAI_BASE_URL="http://127.0.0.1:9/v1",
             LITASSIST_LLM_MODEL="scripted")
    answer = ask(at, QUESTION).answer
    assert len(model.calls) == 2  # the question with its evidence, then the answer after the tool result
    assert "<evidence" in str(model.calls[0][-1].content)
    assert [c.number for c in answer.citations] == [1] and answer.removed_citations == 1
    assert "[42]" not in answer.text and not answer.extractive
    assert at.status[0].label == f"2 searches · {len(answer.evidence)} papers retrieved"
    assert any("mean field reinforcement learning" in text for text in markdown_texts(at))
    caption = next(c.value for c in at.caption if c.value.startswith("openai-compatible · scripted"))
    assert f"{answer.usage.prompt_tokens:,} prompt + {answer.usage.completion_tokens:,} completion tokens" in caption
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert [b.key for b in at.button if (b.key or "").startswith("cite-0-")] == ["cite-0-1"]


def test_rejected_api_key_is_one_friendly_line(app, seeded_home: Path) -> None:
    """A real HTTP server on 127.0.0.1 that answers 401, as OpenAI does for a bad key."""
    import http.server
    import threading

    class Unauthorized(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
            body = b'{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unauthorized)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        at = app(seeded_home, LITASSIST_LLM_PROVIDER="openai-compatible", LITASSIST_LLM_MAX_RETRIES="0",
                 OPENAI_BASE_URL=f"http://127.0.0.1:{server.server_address[1]}/v1", OPENAI_API_KEY="sk-wrong")
        turn = ask(at, QUESTION)
    finally:
        server.shutdown()
    assert turn.answer is None
    assert [e.value for e in at.error] == ["the model server rejected the API key: check OPENAI_API_KEY"]


def test_upload_reports_new_merged_skipped_and_failed_files(app, seeded_copy: Path) -> None:
    seed = next(p for p in Assistant(home=seeded_copy).papers() if p.year and not p.title_derived)
    bib = (
        "@article{new1, title={Sparse Mixtures of Reviewers for Peer Review}, author={Doe, Jane and Roe, Rick},"
        " year={2022}, journal={Journal of Imaginary Results}, abstract={We study how sparse mixtures of reviewer"
        " models assign papers to reviewers, and show that routing each paper to few experts improves accuracy.}}\n"
        f"@article{{dup, title={{{seed.title}}}, year={{{seed.year}}}, abstract={{{seed.abstract}}}}}\n"
        "@article{bare, title={A Title Without Any Abstract}, year={2020}}\n"
    )
    at = app(seeded_copy, tab=LIBRARY)
    at.file_uploader[0].set_value([("refs.bib", bib.encode(), "text/x-bibtex"),
                                   ("broken.ris", b"\x00\x01binary", "application/x-research-info-systems")])
    at.run()
    at.button(key="add_files").click().run()
    assert not at.exception
    report = at.session_state["last_ingest"].report
    assert (report.new, report.merged_duplicates, len(report.skipped)) == (1, 1, 1)
    assert [(Path(f.file).name, f.reason) for f in report.files_failed] == [
        ("broken.ris", "binary file (contains NUL bytes), not a text export")]
    assert {m.label: m.value for m in at.metric}["New"] == "1"
    assert any(e.value == "broken.ris: binary file (contains NUL bytes), not a text export" for e in at.error)
    assert (seeded_copy / "uploads" / "refs.bib").read_text() == bib
    assert any(p.title == "Sparse Mixtures of Reviewers for Peer Review" for p in Assistant(home=seeded_copy).papers())


def test_delete_a_paper_and_forget_a_source_file(app, seeded_copy: Path) -> None:
    papers = Assistant(home=seeded_copy).papers()
    victim = papers[0].paper_id
    at = app(seeded_copy, tab=LIBRARY)
    at.multiselect(key="delete_papers").select(victim).run()
    at.button(key="delete_button").click().run()
    assert [s.value for s in at.success] == ["Deleted 1 paper(s)."]
    small = next(str(f) for f in {s.file for p in papers for s in p.sources} if f.endswith(SMALL_SEED))
    at.selectbox(key="forget_source").set_value(small).run()
    at.button(key="forget_button").click().run()
    assert not at.exception
    remaining = Assistant(home=seeded_copy).papers()
    assert victim not in {p.paper_id for p in remaining}
    assert not any(s.file == small for p in remaining for s in p.sources)
    assert at.success[0].value.startswith(f"Forgot {SMALL_SEED}:")


def test_explore_shows_topics_with_summaries_and_asks_about_one(app, seeded_copy: Path) -> None:
    at = app(seeded_copy, tab=EXPLORE)
    assert not at.exception
    cluster_map = Assistant(home=seeded_copy).current_clusters()
    first = cluster_map.topics[0]
    assert len(at.expander) == len(cluster_map.clusters)
    assert at.expander[0].label.endswith(f"· {len(first.paper_ids)} papers")
    assert any("[1]" in text and "- " in text for text in (m.value for m in at.expander[0].markdown))
    summary_citation = at.button(key=f"topic-{first.cluster_id}-1")
    summary_citation.click().run()
    assert any("#### " in text for text in markdown_texts(at))  # the sources panel opened the paper

    at.button(key=f"ask-{first.cluster_id}").click().run()
    assert not at.exception
    assert at.session_state["tab"] == CHAT
    turn = at.session_state["turns"][-1]
    assert turn.question == "What are the main findings and methods in these papers?"
    assert turn.scope.paper_ids == first.paper_ids
    assert {e.paper.paper_id for e in turn.answer.evidence} <= set(first.paper_ids)
    assert turn.answer.steps[0].args["papers"] == len(first.paper_ids)


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


@pytest.mark.slow
def test_plain_streamlit_run_listens_on_loopback_only(tmp_path: Path) -> None:
    """`streamlit run ui/app.py` with no address flag: the app's own config keeps it on 127.0.0.1."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp on this system")
    with serve(tmp_path / "home", {"LITASSIST_LLM_PROVIDER": "offline"}) as url:
        port = int(url.rsplit(":", 1)[1])
        assert listening_hosts(port) == {"127.0.0.1"}


# --- the helpers behind the page ------------------------------------------------------------------------


def test_highlight_marks_the_passage_and_escapes_the_rest() -> None:
    abstract = "We propose <b>X</b>. It costs $5 and scales. Results improve by 10% on A & B."
    assert highlight(abstract, "It costs $5 and scales.") == (
        "We propose &lt;b&gt;X&lt;/b&gt;. <mark>It costs &#36;5 and scales.</mark> Results improve by 10% on A &amp; B.")
    # a passage that is not verbatim (read/similar tools trim it) still marks the sentences it holds
    assert highlight(abstract, "Title\nResults improve by 10% on A & B. more") == (
        "We propose &lt;b&gt;X&lt;/b&gt;. It costs &#36;5 and scales. <mark>Results improve by 10% on A &amp; B.</mark>")
    assert "<mark>" not in highlight(abstract, None)


def test_bibtex_of_cited_papers(seeded_home: Path) -> None:
    papers = Assistant(home=seeded_home).papers()
    dated = next(p for p in papers if p.year and p.authors)
    other = next(p for p in papers if p.paper_id != dated.paper_id)
    entries = bibtex([dated, dated, other])
    assert entries.count("\n@") + entries.startswith("@") == 2  # duplicates collapse
    key = entries.split("{", 1)[1].split(",", 1)[0]
    assert key.startswith(dated.authors[0].split()[-1].lower()[:3]) and str(dated.year) in key
    assert "  year = {%d}" % dated.year in entries
    import bibtexparser

    parsed = bibtexparser.parse_string(entries)
    assert len(parsed.entries) == 2 and not parsed.failed_blocks


def test_history_only_carries_answered_turns() -> None:
    answer = Answer(question="q2", standalone_question="q2", text="It scales [1].", provider="offline")
    turns = [Turn(question="q1", error="cannot reach the model"), Turn(question="q2", answer=answer)]
    assert history(turns) == [{"role": "user", "content": "q2"},
                              {"role": "assistant", "content": "It scales [1].", "citations": []}]


def test_uploads_are_kept_inside_the_folder_and_limited(tmp_path: Path) -> None:
    def upload(name: str, data: bytes) -> SimpleNamespace:
        return SimpleNamespace(name=name, size=len(data), getvalue=lambda: data)

    result = save_uploads([upload("../../etc/evil.bib", b"@misc{a}"), upload("paper.pdf", b"%PDF"),
                           upload("big.csv", b"x" * 2048), upload(".hidden.ris", b"TY  - JOUR")],
                          tmp_path / "uploads", max_mb=0.001)
    assert [p.name for p in result.saved] == ["evil.bib", "hidden.ris"]
    assert all(p.parent == tmp_path / "uploads" for p in result.saved)
    assert result.rejected[0].startswith("paper.pdf: .pdf is not a supported format")
    assert result.rejected[1] == ("big.csv: 0.0 MB is over the 0.001 MB limit per file; split the export or "
                                  "ingest it with `litassist ingest`")
    assert safe_name("...") == "upload.txt"


def test_map_selection_gives_the_clicked_paper() -> None:
    assert selected_paper({"pick": [{"paper_id": "t:abc"}]}, "pick") == "t:abc"
    assert selected_paper({"pick": []}, "pick") is None
    assert selected_paper({}, "pick") is None
