"""Saved conversations (one SQLite file in the home) through the store, the Python API and the CLI, and the
claims/spans every export quotes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hostile import header, run_cli
from typer.testing import CliRunner

from assistant import Assistant
from assistant.agent import Answer
from assistant.citations import Citation, Claim, ClaimSupport, Span, verbatim_spans
from assistant.claims import citation_spans, claims, marker_claims
from assistant.cli import app
from assistant.conversations import (
    FILE_NAME,
    INTERRUPTED,
    ConversationError,
    ConversationsDamaged,
    ConversationStore,
    conversation_json,
    conversation_markdown,
    title_from,
)
from assistant.corpus import Paper
from assistant.errors import EmptyLibraryError

QUESTION = "How can multi-agent reinforcement learning scale to many agents?"
ABSTRACT = ("Scaling reinforcement learning to many agents is hard. We propose mean-field policies that treat the "
            "other agents as one average agent. Experiments on traffic show stable learning with 1,000 agents.")


def paper(paper_id: str = "t:mf", abstract: str = ABSTRACT, **fields: object) -> Paper:
    return Paper(paper_id=paper_id, title=fields.pop("title", "Mean-Field Policies"), abstract=abstract, **fields)


def answer(text: str, cited: list[Paper], question: str = "q", **fields: object) -> Answer:
    citations = [Citation(number=n, paper_id=p.paper_id, title=p.title, paper=p) for n, p in enumerate(cited, 1)]
    references = "\n\nReferences\n" + "\n".join(f"[{c.number}] {c.title}" for c in citations) if citations else ""
    return Answer(question=question, standalone_question=question, text=text + references, references=references,
                  citations=citations, provider="offline", **fields)


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITASSIST_LLM_PROVIDER", "offline")


# --- the store -------------------------------------------------------------------------------------------------


def test_store_saves_turns_lists_newest_first_and_survives_a_new_process(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / FILE_NAME)
    first, second = store.create(), store.create("Merging")
    store.add_turn(first.conversation_id, "  What is   CMFQ?  ", answer=answer("CMFQ is a method [1].", [paper()]))
    store.add_turn(first.conversation_id, "How is it evaluated?", error="cannot reach the model at http://x")
    store.add_turn(second.conversation_id, "Which papers merge models?", answer=answer("None.", []))
    library = {"t:mf": paper()}  # the papers a saved answer refers to are read from the library
    again = ConversationStore(tmp_path / FILE_NAME, lambda ids: {i: library[i] for i in ids if i in library})
    listed = again.list()
    assert [c.conversation_id for c in listed] == [second.conversation_id, first.conversation_id]
    assert listed[0].title == "Merging" and listed[1].title == "What is CMFQ?"  # titled from the first question
    assert (listed[1].answers, listed[1].failed) == (1, 1)
    saved = again.get(first.conversation_id[:3] if len({c.conversation_id[:3] for c in listed}) == 2
                      else first.conversation_id)
    assert [t.failed for t in saved.turns] == [False, True]
    assert [n for n, _ in saved.numbered()] == [1]  # a failed turn takes no number
    assert saved.turns[0].answer == store.get(first.conversation_id).turns[0].answer.model_copy(
        update={"citations": [c.model_copy(update={"paper": paper()}) for c in saved.turns[0].answer.citations]})
    assert saved.turns[0].answer.citations[0].paper.abstract == ABSTRACT  # the paper, read back from the library
    assert saved.history() == saved.turns[0].answer.history_entries()  # failed turns are not followed up on
    store.add_turn(first.conversation_id, "And then?", answer=answer("More [1].", [paper()]))
    assert store.list()[0].conversation_id == first.conversation_id  # most recently active first
    assert list(tmp_path.iterdir()) == [tmp_path / FILE_NAME]  # one file


def test_rename_delete_and_unknown_or_ambiguous_ids(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / FILE_NAME)
    info = store.create()
    store.add_turn(info.conversation_id, "q", answer=answer("a", []))
    assert store.rename(info.conversation_id, "  My   topic ").title == "My topic"
    with pytest.raises(ValueError, match="cannot be empty"):
        store.rename(info.conversation_id, "   ")
    with pytest.raises(ConversationError, match="no conversation 'nope'"):
        store.get("nope")
    ids = {store.create().conversation_id for _ in range(40)}
    prefix = next(p for p in {i[0] for i in ids} if sum(i.startswith(p) for i in ids | {info.conversation_id}) > 1)
    with pytest.raises(ConversationError, match="give more of the id"):
        store.get(prefix)
    assert store.delete(info.conversation_id).title == "My topic"
    with sqlite3.connect(tmp_path / FILE_NAME) as db:  # its turns went with it
        assert db.execute("SELECT count(*) FROM turns").fetchone()[0] == 0
    with pytest.raises(ValueError):
        store.add_turn(store.create().conversation_id, "q")  # an answer or an error


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Several app sessions (threads, each its own connection per write) adding turns to one file at once."""
    store = ConversationStore(tmp_path / FILE_NAME)
    conversations = [store.create().conversation_id for _ in range(4)]

    def write(conversation_id: str) -> None:
        own = ConversationStore(tmp_path / FILE_NAME)
        for i in range(15):
            own.add_turn(conversation_id, f"question {i}", answer=answer(f"answer {i}", []))

    threads = [threading.Thread(target=write, args=(c,)) for c in conversations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [len(store.get(c).turns) for c in conversations] == [15] * 4
    assert [t.question for t in store.get(conversations[0]).turns] == [f"question {i}" for i in range(15)]


def test_title_from_the_first_question() -> None:
    assert title_from("  How\ndoes   it scale? ") == "How does it scale?"
    long = title_from("word " * 40)
    assert len(long) == 60 and long.endswith("…")
    assert title_from("What are the main findings?", "the topic “Mean field”") == "About the topic “Mean field”"


def dead_pid() -> int:
    """The id of a process that has exited (a killed app or terminal)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_question_is_saved_before_its_answer_and_completed_in_place(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / FILE_NAME)
    info = store.create()
    first = store.add_pending(info.conversation_id, "What is CMFQ?")
    second = store.add_pending(info.conversation_id, "How is it evaluated?")  # asked while the first runs
    again = ConversationStore(tmp_path / FILE_NAME).get(info.conversation_id)  # a reload sees both at once
    assert [(t.question, t.state) for t in again.turns] == [("What is CMFQ?", "pending"),
                                                            ("How is it evaluated?", "pending")]
    assert again.title == "What is CMFQ?" and store.list()[0].pending == 2 and again.numbered() == []
    store.finish(first, answer=answer("CMFQ is a method [1].", [paper()]))
    done = store.get(info.conversation_id)
    assert [t.state for t in done.turns] == ["answered", "pending"] and [n for n, _ in done.numbered()] == [1]
    assert done.history(before=second.turn_id) == done.turns[0].answer.history_entries()
    assert done.history(before=first.turn_id) == []  # a turn follows up only on those before it
    store.finish(second, error="cannot reach the model")
    assert [t.state for t in store.get(info.conversation_id).turns] == ["answered", "failed"]
    with pytest.raises(ValueError):
        store.finish(second)


def test_a_turn_whose_process_died_is_interrupted_and_kept(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / FILE_NAME)
    info = store.create()
    store.add_pending(info.conversation_id, "What is CMFQ?", worker=dead_pid())
    (turn,) = store.get(info.conversation_id).turns
    assert turn.state == "interrupted" and turn.failed and turn.reason == INTERRUPTED
    assert store.list()[0].conversation_id == info.conversation_id  # listed: it was asked something


def test_conversations_never_asked_anything_are_not_listed_and_go_after_an_hour(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / FILE_NAME)
    asked, empty = store.create(), store.create()
    store.add_turn(asked.conversation_id, "q", answer=answer("a", []))
    assert [c.conversation_id for c in store.list()] == [asked.conversation_id]
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.execute("UPDATE conversations SET created = ? WHERE conversation_id = ?", (old, empty.conversation_id))
    fresh = store.create()  # creating one cleans up the old empty ones, never a fresh one or one with turns
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        kept = {row[0] for row in db.execute("SELECT conversation_id FROM conversations")}
    assert kept == {asked.conversation_id, fresh.conversation_id}


def test_search_over_titles_and_questions(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / FILE_NAME)
    one, two = store.create(), store.create()
    store.add_turn(one.conversation_id, "What is CMFQ?", answer=answer("a", []))
    store.add_turn(one.conversation_id, "How is it evaluated?", answer=answer("a", []))
    store.add_turn(two.conversation_id, "Which papers merge 100% of models_x?", answer=answer("a", []))
    assert [c.conversation_id for c in store.list("EVALUATED")] == [one.conversation_id]
    assert [c.conversation_id for c in store.list("100%")] == [two.conversation_id]  # LIKE characters are literal
    assert store.list("_x?") and store.list("%%") == [] and len(store.list("  ")) == 2


def interior(path: Path) -> None:
    """Every page after the first (the header and schema) overwritten with noise."""
    data = path.read_bytes()
    path.write_bytes(data[:4096] + os.urandom(len(data) - 4096))


@pytest.mark.parametrize("damage", [header, interior], ids=["header", "interior pages"])
def test_a_damaged_conversations_file_is_one_line_that_spares_the_library(
        seeded_copy: Path, damage, offline: None) -> None:
    lib = Assistant(home=seeded_copy)
    info = lib.start_conversation()
    for number in range(6):  # several pages' worth of turns
        lib.conversation_store.add_turn(info.conversation_id, f"question {number}",
                                        answer=answer("word " * 400, [paper()]))
    database = seeded_copy / FILE_NAME
    assert database.stat().st_size > 3 * 4096
    damage(database)
    fresh = Assistant(home=seeded_copy)
    with pytest.raises(ConversationsDamaged) as raised:
        fresh.conversation(info.conversation_id)
    message = str(raised.value)
    assert message.startswith(f"{database} cannot be read") and "move it aside" in message
    assert "your library is not affected" in message and "chroma" not in message and "\n" not in message
    assert fresh.paper_count() > 0 and fresh.search("mean field", k=1)  # the library itself is fine
    result = run_cli(seeded_copy, "conversations", timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert str(database) in line and "your library is not affected" in line and "chroma" not in line


# --- claims and spans -------------------------------------------------------------------------------------------


def test_extractive_claims_get_their_quoted_sentence_as_span() -> None:
    other = paper("t:tr", "Traffic control is studied. Agents coordinate   through a shared\nreward signal.",
                  title="Traffic")
    text = ("**Extractive answer** (quoted):\n\n"
            "- We propose mean-field policies that treat the other agents as one average agent. [1]\n"
            "- Agents coordinate through a shared reward signal. [2]\n"
            "- Something nobody wrote in these words at all [1].")
    cited = answer(text, [paper(), other])
    found = claims(cited)
    assert [c.text for c in found] == [line for line in text.split("\n") if "[" in line]
    assert all(cited.body[c.start:c.end] == c.text for c in found)
    first = found[0].citations[0].spans[0]
    assert ABSTRACT[first.start:first.end] == first.text == ("We propose mean-field policies that treat the other "
                                                            "agents as one average agent.")
    second = found[1].citations[0].spans[0]  # equal up to whitespace: the abstract's own stretch
    assert second.text == "Agents coordinate   through a shared\nreward signal."
    assert found[2].citations[0].spans == []  # a paraphrase gets no span: nothing unlocated is highlighted
    spans, weak = citation_spans(cited, 1)
    assert [s.text for s in spans] == [first.text] and not weak
    assert [(m.numbers, m.claim) for m in marker_claims(cited)] == [((1,), 0), ((2,), 1), ((1,), 2)]


def test_filled_claims_are_used_as_they_are() -> None:
    """Answers whose claims the agent filled (checkable answers) are never re-derived."""
    span = Span(start=0, end=52, text=ABSTRACT[:52])
    text = "Scaling to many agents is hard [1]. It is, mostly."
    cited = answer(text, [paper()])
    cited.claims = [Claim(text=text[:35], start=0, end=35,
                          citations=[ClaimSupport(number=1, paper_id="t:mf", spans=[span], support=0.31, weak=True)])]
    assert claims(cited) == cited.claims
    assert citation_spans(cited, 1) == ([span], True)
    assert marker_claims(cited)[0].claim == 0


def test_verbatim_spans_need_a_real_quote() -> None:
    assert verbatim_spans("hard", ABSTRACT) == []  # too short to be a quote
    two = verbatim_spans("Scaling reinforcement learning to many agents is hard. Experiments on traffic show "
                           "stable learning with 1,000 agents.", ABSTRACT)
    assert [s.text for s in two] == ["Scaling reinforcement learning to many agents is hard.",
                                     "Experiments on traffic show stable learning with 1,000 agents."]


def test_markdown_export_quotes_the_spans_and_leaves_out_failed_turns(tmp_path: Path) -> None:
    cited = paper(authors=["Ada Lovelace"], year=2021)
    store = ConversationStore(tmp_path / FILE_NAME, lambda ids: {cited.paper_id: cited})  # the library's paper
    info = store.create()
    store.add_turn(info.conversation_id, "Broken?", error="the model failed")
    store.add_turn(info.conversation_id, "How does it scale?", scope="the topic “RL” (34 papers)", answer=answer(
        "- We propose mean-field policies that treat the other agents as one average agent. [1]", [cited]))
    conversation = store.get(info.conversation_id)
    markdown = conversation_markdown(conversation)
    assert markdown.startswith("# Broken?\n")  # titled from the first question, even a failed one
    assert "## 1. How does it scale?" in markdown and "Broken?" not in markdown.split("\n", 1)[1]
    assert "the model failed" not in markdown
    assert "_Asked about the topic “RL” (34 papers)._" in markdown
    assert "- [1] Mean-Field Policies — Ada Lovelace (2021)" in markdown
    quoted = "We propose mean-field policies that treat the other agents as one average agent."
    start = ABSTRACT.index(quoted)
    assert f"  - [1] Mean-Field Policies: “{quoted}” (abstract characters {start}–{start + len(quoted)})" in markdown
    exported = json.loads(conversation_json(conversation))
    assert [t["number"] for t in exported["turns"]] == [1]
    span = exported["turns"][0]["claims"][0]["citations"][0]["spans"][0]
    assert ABSTRACT[span["start"]:span["end"]] == span["text"]


# --- the Python API and the CLI on a real library -----------------------------------------------------------------


def test_api_asks_in_a_saved_conversation_and_records_failures(seeded_copy: Path, offline: None,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    lib = Assistant(home=seeded_copy)
    info = lib.start_conversation()
    first = lib.ask(QUESTION, conversation=info.conversation_id)
    assert first.citations
    second = lib.ask("How is it evaluated?", conversation=info.conversation_id[:4], scope="a test scope")
    saved = Assistant(home=seeded_copy).conversation(info.conversation_id)  # a fresh process sees it all
    assert [t.question for t in saved.turns] == [QUESTION, "How is it evaluated?"]
    assert saved.title == QUESTION[:59] + "…" and saved.turns[1].scope == "a test scope"
    assert saved.turns[1].answer.text == second.text
    assert second.standalone_question != "How is it evaluated?"  # the saved history reached the follow-up
    with pytest.raises(ValueError, match="not both"):
        lib.ask("x", history=[], conversation=info.conversation_id)
    with pytest.raises(KeyError):
        lib.ask("x", conversation="no-such-id")

    monkeypatch.setenv("LITASSIST_LLM_PROVIDER", "openai-compatible")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LITASSIST_LLM_MAX_RETRIES", "0")
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises, the turn is saved as failed
        Assistant(home=seeded_copy).ask("Does this reach a model?", conversation=info.conversation_id)
    saved = lib.conversation(info.conversation_id)
    assert saved.turns[-1].failed and saved.turns[-1].error.startswith("cannot reach the model at http://127.0.0.1:9")
    assert len(saved.numbered()) == 2 and len(saved.history()) == 4
    assert [c.conversation_id for c in lib.conversations()] == [info.conversation_id]


def test_api_on_an_empty_library_records_a_failed_turn(tmp_path: Path, offline: None) -> None:
    lib = Assistant(home=tmp_path / "home")
    info = lib.start_conversation()
    with pytest.raises(EmptyLibraryError, match="library is empty"):
        lib.ask(QUESTION, conversation=info.conversation_id)
    assert lib.conversation(info.conversation_id).turns[0].error.startswith("the library is empty")


def test_cli_chat_saves_resumes_lists_and_exports(seeded_copy: Path, offline: None, tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(seeded_copy)]
    started = runner.invoke(app, [*home, "chat"], input=f"{QUESTION}\n\n")
    assert started.exit_code == 0, started.output
    conversation_id = Assistant(home=seeded_copy).conversations()[0].conversation_id
    assert f"saved as conversation {conversation_id}" in started.output

    resumed = runner.invoke(app, [*home, "chat", "--resume"], input="How is it evaluated?\n\n")
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming conversation {conversation_id}" in resumed.output and f"1. you> {QUESTION}" in resumed.output
    by_id = runner.invoke(app, [*home, "chat", "--resume", conversation_id[:5]], input="\n")
    assert by_id.exit_code == 0 and "(2 answers)" in by_id.output
    missing = runner.invoke(app, [*home, "chat", "--resume", "zzzz"], input="\n")
    assert missing.exit_code == 2 and "no conversation 'zzzz'" in missing.output

    listed = runner.invoke(app, [*home, "conversations", "--json"])
    assert [json.loads(line)["answers"] for line in listed.output.splitlines()] == [2]
    out = tmp_path / "chat.md"
    exported = runner.invoke(app, [*home, "conversations", "export", conversation_id, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    text = out.read_text(encoding="utf-8")
    assert f"## 1. {QUESTION}" in text and "## 2. How is it evaluated?" in text and "(abstract characters" in text
    as_json = runner.invoke(app, [*home, "conversations", "export", conversation_id, "--format", "json"])
    assert [t["number"] for t in json.loads(as_json.output)["turns"]] == [1, 2]
    assert runner.invoke(app, [*home, "conversations", "export", conversation_id, "--format", "pdf"]).exit_code == 2
    assert runner.invoke(app, [*home, "conversations", "rename", conversation_id, "Scaling MARL"]).exit_code == 0
    assert "Scaling MARL" in runner.invoke(app, [*home, "conversations"]).output
    deleted = runner.invoke(app, [*home, "conversations", "delete", conversation_id])
    assert deleted.exit_code == 0 and "“Scaling MARL”" in deleted.output
    assert runner.invoke(app, [*home, "conversations"]).output == ""
    nothing = runner.invoke(app, [*home, "chat", "--resume"], input="\n")
    assert nothing.exit_code == 2 and "no saved conversation to resume" in nothing.output
