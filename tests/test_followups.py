"""Follow-ups that are follow-ups: the rule that decides whether a question depends on the conversation, its
referent and grammatical rewrite, the conversation fixture (tests/fixtures/conversations.json) answered offline on
the seed library, and the follow-up questions suggested under an answer (named by the cited papers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from assistant.ui.chat import Topics, follow_ups
from linear import assert_linear

from assistant import Answer, Assistant, Paper
from assistant.citations import Citation
from assistant.evaluate import evaluate_conversations
from assistant.questions import defined_name, paper_name, read, referent_of, standalone_question

FIXTURE = Path(__file__).parent / "fixtures" / "conversations.json"


@pytest.mark.parametrize(("question", "reason"), [
    ("How is it evaluated?", "refers back ('it')"),
    ("What are its limitations?", "refers back ('its')"),
    ("What datasets do they use?", "refers back ('they')"),
    ("How does this method scale?", "refers back ('this method')"),
    ("Why does that work?", "refers back ('that work')"),
    ("Compare it with the above.", "refers back ('it')"),
    ("Which of these use reinforcement learning?", "refers back ('of these')"),
    ("How does it compare to AdaMerging?", "refers back ('it')"),
    ("What problem does the paper solve?", "refers back ('the paper')"),
    ("How big is it?", "refers back ('it')"),
    ("Why are heterogeneous ranks a problem for it?", "refers back ('it')"),
    ("Which bit widths does it target?", "refers back ('it')"),
    ("Why?", "no topic of its own"),
    ("Limitations?", "no topic of its own"),
    ("Tell me more.", "no topic of its own"),
    ("What are the results?", "no topic of its own"),
])
@pytest.mark.unit
def test_questions_that_lean_on_the_conversation(question: str, reason: str) -> None:
    assert read(question).reason == reason


@pytest.mark.parametrize("question", [
    "What is CMFQ?",
    "Which papers merge weights of several LLMs and how?",
    "What is CMFQ and how is it evaluated?",  # its own referent, across a clause break
    "Which papers use transformers, and what do they find?",
    "Is it possible to merge LLM weights without training?",  # "it" is not a reference
    "How do these papers make multi-agent RL scale?",  # "these papers" with a topic: the library
    "Which papers show that merging works?",  # "that" joins clauses
    "What is the best method for graph partitioning?",
    "what about phishing detection?",  # an ellipsis with a topic of its own
    "graph edge partitioning",
])
@pytest.mark.unit
def test_questions_searched_as_asked(question: str) -> None:
    assert not read(question).dependent


@pytest.mark.parametrize(("history", "question", "standalone"), [
    (["What is CMFQ?"], "How is it evaluated?", "How is CMFQ evaluated?"),
    (["What is CMFQ?"], "What are its limitations?", "What are CMFQ's limitations?"),
    (["How does CMFQ make multi-agent RL scale?"], "Why?", "CMFQ multi-agent RL: Why?"),
    (["What is CMFQ?"], "How does it compare to AdaMerging?", "How does CMFQ compare to AdaMerging?"),
    # a chain: the second follow-up still knows the topic; a switch then drops it
    (["What is CMFQ?", "How is it evaluated?"], "What are its limitations?", "What are CMFQ's limitations?"),
    (["What is CMFQ?", "Which papers merge LLM weights?"], "How do they do it?",
     "How do the papers that merge LLM weights do it?"),
    # the referent is the noun phrase that introduced the topic; a follow-up's own words ("accurate") never join it
    (["What is the weighted edge-matching score?", "How accurate is it?"], "what are its limitations?",
     "what are the limitations of the weighted edge-matching score?"),
    (["How accurate is the weighted edge-matching score?"], "How does its training cost compare?",
     "How does the training cost of the weighted edge-matching score compare?"),
    (["What is the Flag Aggregator?"], "Under what failures does it still work?",
     "Under what failures does the Flag Aggregator still work?"),
    (["Which papers merge weights of several LLMs and how?"], "What are their limitations?",
     "What are the limitations of the papers that merge weights of several LLMs?"),
    (["What is OccRWKV?", "How does it handle sparse scenes?"], "Why is its complexity linear?",
     "Why is OccRWKV's complexity linear?"),
    (["What is CMFQ?"], "Which papers merge weights of several LLMs and how?",
     "Which papers merge weights of several LLMs and how?"),
    (["How is CMFQ evaluated?"], "What about AdaMerging?", "What about AdaMerging (evaluated)?"),
])
@pytest.mark.unit
def test_offline_rewrite(history: list[str], question: str, standalone: str) -> None:
    turns = [{"role": "user", "content": q} for q in history]
    assert standalone_question(question, turns)[0] == standalone


# First questions on seed-corpus papers (their titles' words): the referent is the whole name, common words inside
# it ("mean", "model", "systems") included; a verb, after "How does…", ends it.
@pytest.mark.parametrize(("question", "referent"), [
    ("What is causal mean field Q-learning?", "causal mean field Q-learning"),  # "mean" is part of the name
    ("causal mean field Q-learning", "causal mean field Q-learning"),
    ("How does causal mean field multi-agent reinforcement learning scale?",
     "causal mean field multi-agent reinforcement learning"),
    ("How does causal mean field Q-learning handle many agents?", "causal mean field Q-learning"),
    ("What is the mean teacher model in semi-supervised segmentation?",
     "the mean teacher model in semi-supervised segmentation"),
    ("What is the main idea of adaptive model merging?", "adaptive model merging"),
    ("What is similarity-aware propagation learning for breast cancer segmentation?",
     "similarity-aware propagation learning for breast cancer segmentation"),
    ("How do proto-value networks scale representation learning?", "proto-value networks"),
    ("How do Telecom foundation models work?", "Telecom foundation models"),
    ("How do recommender systems use graph neural networks?", "recommender systems"),
    ("How do LLM agents collaborate in multi-agent systems?", "LLM agents"),
    ("How can federated learning handle heterogeneous clients?", "federated learning"),
    ("How accurate is 2D/3D registration of the femur?", "2D/3D registration of the femur"),
    ("How well does Muon outperform Adam in tail-end associative memory learning?", "Muon"),
    ("What does Rethinking the Value of Network Pruning find?", "Rethinking the Value of Network Pruning"),
    ("How does CMFQ make multi-agent RL scale?", "CMFQ"),
    ("How can adversarial training be made faster?", "adversarial training"),
    ("Explain the Discrete Key-Value Bottleneck", "the Discrete Key-Value Bottleneck"),
])
@pytest.mark.unit
def test_the_referent_is_the_whole_noun_phrase(question: str, referent: str) -> None:
    assert referent_of(question) == referent


@pytest.mark.parametrize(("first", "question", "standalone"), [
    ("What is causal mean field Q-learning?", "How is it evaluated?", "How is causal mean field Q-learning evaluated?"),
    ("What is causal mean field Q-learning?", "What are its results?",
     "What are the results of causal mean field Q-learning?"),
    ("What is causal mean field Q-learning?", "What datasets do they use?",
     "What datasets does causal mean field Q-learning use?"),  # the verb agrees with the referent
    ("What is causal mean field Q-learning?", "Why does it work?", "Why does causal mean field Q-learning work?"),
    ("How do LLM agents collaborate in multi-agent systems?", "How is it evaluated?", "How are LLM agents evaluated?"),
    ("What are Order-Preserving GFlowNets?", "Does it scale?", "Do Order-Preserving GFlowNets scale?"),
    ("What is the mean teacher model in semi-supervised segmentation?", "What are its limitations?",
     "What are the limitations of the mean teacher model in semi-supervised segmentation?"),
    ("How do Telecom foundation models work?", "How does this method scale?",
     "How do Telecom foundation models scale?"),
])
@pytest.mark.unit
def test_follow_ups_on_seed_papers_are_rewritten_grammatically(first: str, question: str, standalone: str) -> None:
    assert standalone_question(question, [{"role": "user", "content": first}])[0] == standalone


@pytest.mark.unit
def test_referent_extraction_is_linear() -> None:
    assert_linear(lambda n: "What is causal mean field " + "deep mean " * n + "learning?", referent_of)
    assert_linear(lambda n: "How does " + "graph of " * n + "agents scale?", referent_of)


def test_conversation_fixture_offline(seeded_home: Path) -> None:
    """Every topic switch is answered from the new topic with nothing of the old one cited; every follow-up
    stays on the earlier paper (the rule and this fixture: docs/citations.md, "Follow-ups")."""
    report = evaluate_conversations(Assistant(home=seeded_home), FIXTURE)
    assert report.switches >= 20 and report.follow_ups >= 20
    failures = [f"{c.kind}: {c.first!r} -> {c.second!r} searched as {c.standalone!r}, cited {c.cited}"
                for c in report.cases if not c.ok]
    assert not failures, "\n".join(failures)


# Seed papers by title prefix, and the name a suggested question calls each by: the name before the title's colon,
# the method the abstract introduces (not the background it defines first: MFRL), or a short title; no name for a
# title that is a sentence or a derived title of a paper whose abstract names nothing of its own.
SEED_NAMES = {
    "Causal Mean Field Multi-Agent Reinforcement Learning": "causal mean-field Q-learning",
    "AdaMerging: Adaptive Model Merging": "AdaMerging",
    "Order-Preserving GFlowNets": "Order-Preserving GFlowNets",
    "TabSim: A Siamese Neural Network": "TabSim",
    "Towards Deeper Graph Neural Networks": "Deep Adaptive Graph Neural Network",
    "Stitchable Neural Networks": "Stitchable Neural Networks",
    "MetaMixer Is All You Need": "",
}


def _seed_paper(home: Path, prefix: str) -> Paper:
    return next(p for p in Assistant(home=home).papers() if p.title.startswith(prefix))


def test_a_paper_is_named_by_its_own_name(seeded_home: Path) -> None:
    for prefix, name in SEED_NAMES.items():
        paper = _seed_paper(seeded_home, prefix)
        assert paper_name(paper.title, paper.abstract, paper.title_derived) == name, prefix


def test_suggested_follow_ups_name_the_cited_papers(seeded_home: Path) -> None:
    """The questions under an answer ask about the cited papers' names, grammatically, never about a lone topic
    word ("What are the limitations of policy?" was suggested before)."""
    cited = [_seed_paper(seeded_home, prefix) for prefix in
             ("Causal Mean Field Multi-Agent", "AdaMerging:", "Order-Preserving GFlowNets")]
    answer = Answer(question="How do agents scale?", standalone_question="How do agents scale?", text="…",
                    provider="offline", citations=[Citation(number=n, paper_id=p.paper_id, title=p.title, paper=p)
                                                   for n, p in enumerate(cited, 1)])
    lone_words = Topics(by_paper={p.paper_id: ["policy", "merging"] for p in cited}, largest=[])
    assert follow_ups(lone_words, answer.question, answer) == [
        "How is causal mean-field Q-learning evaluated?",
        "What are AdaMerging's limitations?",
        "How do Order-Preserving GFlowNets compare with other methods?",
    ]
    # one cited paper: its name in every question; a name the question says is not suggested again
    answer.citations = answer.citations[2:]
    assert follow_ups(lone_words, "What are Order-Preserving GFlowNets?", answer) == []
    again = follow_ups(lone_words, "What is this?", answer)
    assert again[1] == "What are the limitations of Order-Preserving GFlowNets?" and len(again) == 3


@pytest.mark.unit
def test_naming_is_linear() -> None:
    assert_linear(lambda n: "We propose a deep mean field (DMF). " * n, defined_name)
    assert_linear(lambda n: "we propose " + "word " * n + "(ABCDEFGHIJKLMNO)", defined_name)
