"""A paper's own reference brackets inside a quoted sentence ("… uridylation [1][2][3][4].") are its text: an offline
answer on a real library shows them as text, not as citation buttons, derives no claim from them, and keeps where its
quotes are through a saved conversation (a turn saved before answers carried them still loads)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from assistant.ui.rendering import cited_html
from typer.testing import CliRunner

from assistant import Assistant
from assistant.agent import Answer
from assistant.claims import derive_claims, marker_claims, rendered_markers
from assistant.cli import app
from assistant.conversations import FILE_NAME, conversation_json

QUOTED = ("The methyltransferase HEN1 adds a 2'-O-methyl group to the 3' end of small RNAs, which protects plant "
          "microRNAs from degradation and 3' terminal uridylation [1][2][3][4].")
RECORDS = [
    {"id": "hen1", "title": "HEN1 methylates plant small RNAs", "year": 2019,
     "abstract": f"Small RNAs guide gene silencing in plants and animals. {QUOTED} We solve the structure of HEN1 "
                 "bound to a small RNA duplex."},
    {"id": "hen1b", "title": "Methylation of microRNAs in Arabidopsis", "year": 2021,
     "abstract": "In Arabidopsis, HEN1 methylation protects microRNAs from 3' uridylation and degradation by HESO1. "
                 "Without it, microRNAs are tailed and decay."},
    {"id": "wheat", "title": "Drought tolerance in wheat", "year": 2018,
     "abstract": "Drought reduces wheat yields worldwide. We breed lines that keep their yield under water deficit."},
]
QUESTION = "How does HEN1 methylation protect plant microRNAs from degradation and uridylation?"


@pytest.fixture(scope="module")
def rna_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rna")
    (folder / "papers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    home = folder / "home"
    assert Assistant(home=home).ingest([folder / "papers.jsonl"]).new == len(RECORDS)
    return home


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITASSIST_LLM_PROVIDER", "offline")


def real_markers(answer: Answer) -> list[tuple[int, str]]:
    """(number, line) of each citation the answer writes after a quote: the only citations it has."""
    return [(c.number, line) for line in answer.body.splitlines() for c in answer.citations
            if line.startswith("- ") and line.endswith(f" [{c.number}]")]


def test_an_offline_answer_shows_a_quoted_papers_brackets_as_text(rna_home: Path, offline: None) -> None:
    answer = Assistant(home=rna_home).ask(QUESTION)
    assert answer.extractive and f"{QUOTED} [" in answer.body  # the sentence with the paper's brackets is quoted
    cited = {c.paper_id: c.number for c in answer.citations}
    assert set(cited) == {"hen1", "hen1b"}  # so its "[1]" and "[2]" are both numbers of this answer's citations
    assert [answer.body[a:b] for a, b in answer.quoted] == [line[2:].rsplit(" [", 1)[0] for _, line in
                                                            real_markers(answer)]
    markers = rendered_markers(answer)
    assert [(m.numbers, answer.body[m.start:m.end]) for m in markers] == [
        ([n], f"[{n}]") for n, _ in real_markers(answer)]
    assert all(answer.body[m.end:m.end + 1] in ("", "\n") for m in markers)  # each at the end of its quote's line
    assert len(marker_claims(answer)) == len(answer.citations) == 2
    # a text saved without claims derives them from its markers: the HEN1 quote cites HEN1 alone
    derived = {claim.text: [s.number for s in claim.citations] for claim in derive_claims(answer)}
    assert derived[f"- {QUOTED} [{cited['hen1']}]"] == [cited["hen1"]]
    assert [c.text for c in answer.claims] == list(derived)
    rests_on = {s.paper_id: [span.text for span in s.spans] for c in answer.claims for s in c.citations}
    assert rests_on["hen1"] == [QUOTED]  # the whole quoted sentence, its brackets included, is what it rests on
    html = cited_html(answer)
    assert html.count('class="la-cite"') == 2 and "uridylation [1][2][3][4]." in html


def test_a_saved_answer_keeps_its_quotes_and_an_older_one_loads_without(rna_home: Path, offline: None) -> None:
    lib = Assistant(home=rna_home)
    info = lib.start_conversation()
    asked = lib.ask(QUESTION, conversation=info.conversation_id)
    saved = Assistant(home=rna_home).conversation(info.conversation_id).turns[0].answer
    assert saved.quoted == asked.quoted and len(saved.quoted) == 2
    assert len(marker_claims(saved)) == 2
    exported = json.loads(conversation_json(Assistant(home=rna_home).conversation(info.conversation_id)))
    turn = exported["turns"][0]
    assert [turn["answer"][a:b] for a, b in turn["quoted"]] == [asked.body[a:b] for a, b in asked.quoted]
    with sqlite3.connect(rna_home / FILE_NAME) as db:  # as a file written before answers carried their quotes
        (stored,) = db.execute("SELECT answer FROM turns").fetchone()
        record = json.loads(stored)
        del record["quoted"]
        db.execute("UPDATE turns SET answer = ?", (json.dumps(record),))
    old = Assistant(home=rna_home).conversation(info.conversation_id).turns[0].answer
    assert old.quoted == [] and old.body == asked.body and old.citations == saved.citations


def test_ask_json_says_where_the_answer_quotes(rna_home: Path, offline: None) -> None:
    result = CliRunner().invoke(app, ["--home", str(rna_home), "ask", QUESTION, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert QUOTED in [payload["answer"][a:b] for a, b in payload["quoted"]]
