"""The offline answer's choice of sentences: the question's aspect and parts, sentences that lean on an unseen one,
bounded quotes, and "ask about this topic" on the real seed library."""

from __future__ import annotations

from pathlib import Path

import pytest
from linear import assert_linear

from assistant import Assistant
from assistant.corpus.records import SourceRef, make_paper
from assistant.evaluate import CLAIM_QUESTION, evaluate_aspects
from assistant.extractive import (
    LEANING_OPENER,
    MAX_QUOTE_CHARS,
    candidate_sentences,
    choose_sentences,
    cut,
    question_aspects,
    question_parts,
    quotable,
    quotes,
)
from assistant.index import sentence_spans
from assistant.retrieve import Filters, Hit

FIXTURE = Path(__file__).parent / "fixtures" / "aspect_questions.json"


def test_aspect_fixture_quotes_the_answering_sentence(seeded_home: Path) -> None:
    """43 hand-written aspect questions on the seeds (docs/answers.md: 32/43 before the aspect rule, 39/43 after)."""
    report = evaluate_aspects(Assistant(home=seeded_home), FIXTURE)
    assert len(report.cases) >= 30
    missed = [f"{c.aspect}: {c.question!r} quoted {c.quoted}" for c in report.cases if not c.ok]
    assert report.share >= 0.8, "\n".join(missed)


@pytest.mark.parametrize(("question", "aspects"), [
    ("How is CMFQ evaluated?", ["evaluation"]),
    ("How accurate is 2D/3D registration with the weighted edge-matching score?", ["result"]),
    ("What are the limitations of GFlowNets?", ["limitation"]),
    ("Which datasets is RedSync tested on?", ["evaluation", "dataset"]),
    ("How does NAMSG compare with ADAM?", ["comparison"]),
    ("How does CacheGen's encoder compress KV features?", ["method"]),  # "how" alone: the method, as a fallback
    ("What is CMFQ?", ["definition"]),
    # a SciFact claim asks nothing about its own words: only the sentence ending in "?" is read
    (CLAIM_QUESTION.format(claim="The dataset shows improved accuracy compared to baselines."), []),
])
@pytest.mark.unit
def test_question_aspects(question: str, aspects: list[str]) -> None:
    assert question_aspects(question) == aspects


@pytest.mark.unit
def test_question_parts() -> None:
    assert question_parts("What is CacheGen and how is it evaluated?") == ["What is CacheGen", "how is it evaluated?"]
    assert question_parts("Which papers merge weights of several LLMs?") == [
        "Which papers merge weights of several LLMs?"
    ]


ABSTRACT = ("These methods fail on long inputs. Scalability remains a challenge for mean-field methods. "
            "For this reason, we propose CMFQ. This approach quantifies each interaction via interventions. "
            "In this paper, we also test CMFQ on two games.")


@pytest.mark.parametrize(("index", "quote"), [
    (0, None),  # leans on nothing the reader can see: never quoted
    (1, "Scalability remains a challenge for mean-field methods."),
    (2, "Scalability remains a challenge for mean-field methods. For this reason, we propose CMFQ."),
    # a chain of two leaning sentences pulls in both antecedents
    (3, ("Scalability remains a challenge for mean-field methods. For this reason, we propose CMFQ. "
         "This approach quantifies each interaction via interventions.")),
    (4, "In this paper, we also test CMFQ on two games."),  # "this paper" names the paper itself
])
@pytest.mark.unit
def test_a_leaning_sentence_is_quoted_with_its_antecedent(index: int, quote: str | None) -> None:
    spans = sentence_spans(ABSTRACT)
    start = quotable(ABSTRACT, spans, index)
    assert (None if start is None else ABSTRACT[start:spans[index][1]]) == quote


@pytest.mark.parametrize(("sentence", "leans"), [
    ("To meet this challenge, we propose CMFQ.", True),  # the offline answer a tester saw open with this
    ("To address these issues, we design a scheduler.", True),
    ("To deal with this problem, we use interventions.", True),
    ("To this end, we build a benchmark.", True),
    ("In this case, the agents cannot coordinate.", True),
    ("Such methods fail on long inputs.", True),
    ("These results hold for every game.", True),
    ("Inspired by these observations, we introduce a causal module.", True),
    ("Building on this insight, we merge the layers.", True),
    ("Unlike such approaches, ours needs no labels.", True),
    ("After that, the model is fine-tuned.", True),
    ("Each of these methods needs a teacher.", True),
    ("By doing so, the agents scale to hundreds.", True),
    ("As such, the bound is tight.", True),
    ("In this paper, we propose CMFQ.", False),  # names the paper itself
    ("This work studies mean field games.", False),
    ("We test CMFQ in a mixed cooperative-competitive game.", False),
    ("Unlike previous methods that rely on labels, we learn from rewards.", False),  # a relative "that"
    ("We show that, unlike GANs, flows are exact.", False),
    ("To the best of our knowledge, this is the first such study.", False),
])
@pytest.mark.unit
def test_openers_that_lean_on_an_unseen_sentence(sentence: str, leans: bool) -> None:
    assert bool(LEANING_OPENER.match(sentence)) is leans


@pytest.mark.unit
def test_the_leaning_rule_is_linear() -> None:
    def leaning_starts(text: str) -> int:
        return sum(bool(LEANING_OPENER.match(text, start)) for start, _ in sentence_spans(text))

    assert_linear(lambda n: "To meet this challenge, we go on. " * n, leaning_starts)
    assert_linear(lambda n: "Inspired by " + "x" * n + " these, we go on.", leaning_starts)
    assert_linear(lambda n: "word-" * n + " such that", leaning_starts)


def _hit(abstract: str, title: str = "A paper") -> Hit:
    paper = make_paper(abstract=abstract, title=title, source_id=title,
                       source=SourceRef(file="f", format="jsonl", position=1))
    return Hit(paper_id=paper.paper_id, title=title, score=1.0, text=abstract[:200], paper=paper)


def test_a_quote_is_bounded(seeded_home: Path) -> None:
    """An abstract without sentence breaks is read and quoted up to MAX_QUOTE_CHARS, cut at a word (a 5 MB one
    made a 5 MB answer), in time linear in its length."""
    embedder = Assistant(home=seeded_home).embedder
    abstract = "we test the mean field method on many agents " * 120_000  # ~5.4 MB, one "sentence"
    chosen = choose_sentences(
        candidate_sentences("How is the mean field method tested?", [_hit(abstract)], embedder, 6)
    )
    [(candidate, start, end)] = quotes(chosen)
    quote = cut(candidate.hit.paper.abstract[start:end])
    assert len(quote) <= MAX_QUOTE_CHARS + 1 and quote.endswith("…") and abstract.startswith(quote[:-1])

    def quote_all(text: str) -> list[str]:
        spans = sentence_spans(text)
        return [cut(text[start:b]) for i, (_, b) in enumerate(spans) if (start := quotable(text, spans, i)) is not None]

    assert_linear(lambda n: "This approach leans on the one before it. " * n + "word " * n, quote_all)


def test_an_abstract_sentence_that_answers_the_aspect_is_preferred(seeded_home: Path) -> None:
    """The issue's follow-up: "How is it evaluated?" after "What is CMFQ?" quotes the test, not the background."""
    lib = Assistant(home=seeded_home)
    first = lib.ask("What is CMFQ?")
    body = first.body
    assert "Therefore, we propose an algorithm called causal mean-field Q-learning" in body
    assert "Causality contains relatively invariant mechanisms" in body  # its antecedent, quoted with it
    follow = lib.ask("How is it evaluated?", history=first.history_entries())
    assert follow.standalone_question == "How is CMFQ evaluated?"
    assert follow.body.split("\n")[2].startswith("- We test CMFQ in a mixed cooperative-competitive game")
    assert all(c.citations[0].support == 1.0 for c in follow.claims)  # every quote located verbatim


def test_ask_about_this_topic_builds_on_the_topic_summary(seeded_home: Path) -> None:
    lib = Assistant(home=seeded_home)
    cluster = lib.clusters().topics[0]
    summary = lib.cluster_summary(cluster.cluster_id)
    answer = lib.ask("What are the main findings and methods in these papers?",
                     filters=Filters(paper_ids=cluster.paper_ids))
    assert [s.tool for s in answer.steps] == ["search_papers", "cluster_summary"]
    summary_lines = [line for line in summary.body.splitlines() if line.startswith("- ")]
    for line in summary_lines:  # every quoted line of the summary, renumbered into this answer
        assert line.rsplit(" [", 1)[0] in answer.body
    assert len(answer.citations) > len(summary.citations)  # and more papers of the topic than the summary quotes
    assert {c.paper_id for c in answer.citations} <= set(cluster.paper_ids)
