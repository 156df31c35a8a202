"""Evaluation: retrieval on any BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), cited
answers to SciFact claims (citation recall and precision against the gold papers), and the follow-up and
aspect fixtures of tests/fixtures (conversations.json, aspect_questions.json) answered offline.

The corpus goes through the real ingest path (same parser, chunking and embeddings) into a home of its own,
so the user's library is untouched and a second run reuses the index.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs import user_cache_path
from pydantic import BaseModel

from .retrieve import Mode

if TYPE_CHECKING:
    from .api import Assistant

MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")
CLAIM_QUESTION = "Is this claim supported by the evidence? {claim}"  # how `eval answers` asks about a claim


class Metrics(BaseModel):
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float


class RetrievalReport(BaseModel):
    dataset: str
    split: str
    queries: int
    corpus_papers: int
    home: str
    results: dict[str, Metrics]
    seconds_per_query: dict[str, float]



def load_queries(folder: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Queries that have judgements in the split, and the judgements (query -> doc -> relevance)."""
    qrels_file = folder / "qrels" / f"{split}.tsv"
    if not qrels_file.exists():
        splits = ", ".join(sorted(p.stem for p in (folder / "qrels").glob("*.tsv")))
        raise FileNotFoundError(f"{qrels_file}: no such file (splits: {splits})")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if str(record["_id"]) in qrels:
                queries[str(record["_id"])] = record["text"]
    return queries, qrels


def ndcg_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    gains = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sum(rel / math.log2(i + 2) for i, rel in enumerate(sorted(relevant.values(), reverse=True)[:k]))
    return gains / ideal if ideal else 0.0


def recall_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, doc in enumerate(ranked[:k]) if doc in relevant), 0.0)


def score_run(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> Metrics:
    n = len(run)
    return Metrics(
        ndcg_at_10=sum(ndcg_at_k(r, qrels[q]) for q, r in run.items()) / n,
        recall_at_10=sum(recall_at_k(r, qrels[q], 10) for q, r in run.items()) / n,
        recall_at_100=sum(recall_at_k(r, qrels[q], 100) for q, r in run.items()) / n,
        mrr_at_10=sum(mrr_at_k(r, qrels[q]) for q, r in run.items()) / n,
    )


def eval_home(folder: Path) -> Path:
    """A home per dataset folder, outside the user's library, reused across runs."""
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    return user_cache_path("litassist") / "eval" / f"{folder.resolve().name}-{digest}"


def evaluate_retrieval(
    assistant: Assistant, folder: Path, split: str = "test", modes: Sequence[Mode] = MODES
) -> RetrievalReport:
    """Ingest the corpus (a no-op when already indexed), then score every mode on the split's queries."""
    import time

    queries, qrels = load_queries(folder, split)
    assistant.ingest([folder / "corpus.jsonl"])
    ids, texts = list(queries), list(queries.values())
    results: dict[str, Metrics] = {}
    timings: dict[str, float] = {}
    for mode in modes:
        started = time.perf_counter()
        hits = assistant.search_many(texts, k=100, mode=mode)
        timings[mode] = round((time.perf_counter() - started) / len(ids), 4)
        results[mode] = score_run({q: [h.paper_id for h in hs] for q, hs in zip(ids, hits)}, qrels)
    return RetrievalReport(
        dataset=folder.resolve().name,
        split=split,
        queries=len(ids),
        corpus_papers=assistant.stats().papers,
        home=str(assistant.settings.home),
        results=results,
        seconds_per_query=timings,
    )


class AnswerReport(BaseModel):
    dataset: str
    provider: str
    model: str | None
    claims: int
    claims_with_evidence: int
    citation_recall: float
    citation_precision: float
    abstained: int
    mean_citations: float
    seconds_per_answer: float


def load_claims(folder: Path, split: str = "dev") -> list[tuple[str, set[str]]]:
    """SciFact claims and their gold evidence papers (empty for claims the corpus cannot settle)."""
    path = folder / f"claims_{split}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (SciFact claims_<split>.jsonl)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["claim"], {str(doc) for doc in row.get("evidence", {})}) for row in rows]


def evaluate_answers(assistant: Assistant, folder: Path, split: str = "dev", limit: int | None = None) -> AnswerReport:
    """Ask whether each claim is supported; score the citations against the gold evidence papers.

    Recall: share of claims with gold evidence whose answer cites at least one gold paper.
    Precision: share of all citations (on those claims) that are gold papers.
    """
    import time

    claims = load_claims(folder, split)[:limit]
    assistant.ingest([folder / "corpus.jsonl"])
    hits = cited_total = cited_gold = abstained = judged = 0
    started = time.perf_counter()
    for claim, gold in claims:
        answer = assistant.ask(CLAIM_QUESTION.format(claim=claim))
        abstained += answer.abstained
        if not gold:
            continue
        judged += 1
        cited = {c.paper_id for c in answer.citations}
        hits += bool(cited & gold)
        cited_total += len(cited)
        cited_gold += len(cited & gold)
    return AnswerReport(
        dataset=folder.resolve().name,
        provider=assistant.agent.provider,
        model=assistant.agent.model_name,
        claims=len(claims),
        claims_with_evidence=judged,
        citation_recall=round(hits / judged, 4) if judged else 0.0,
        citation_precision=round(cited_gold / cited_total, 4) if cited_total else 0.0,
        abstained=abstained,
        mean_citations=round(cited_total / judged, 2) if judged else 0.0,
        seconds_per_answer=round((time.perf_counter() - started) / max(1, len(claims)), 3),
    )


class ConversationCase(BaseModel):
    """One two-turn conversation of the fixture and what happened to its second turn."""

    kind: str  # "switch" or "follow_up"
    first: str
    second: str
    standalone: str
    ok: bool
    cited: list[str]
    leaked: list[str] = []  # switches: papers of the first topic cited in the second answer
    expected: list[str] = []  # follow-ups: the earlier paper; switches: what the second question cites alone


class ConversationReport(BaseModel):
    provider: str
    switches: int
    switches_clean: int
    follow_ups: int
    follow_ups_on_topic: int
    cases: list[ConversationCase]


def load_conversations(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """Topic switches (first, second) and follow-ups (first, second, the paper the second must stay on)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [tuple(pair) for pair in data["switches"]], [tuple(triple) for triple in data["follow_ups"]]


def evaluate_conversations(assistant: Assistant, path: Path) -> ConversationReport:
    """Ask each fixture conversation's two turns, the second with the first as history.

    A topic switch is clean when its second answer cites none of the papers the first question's answer cites
    (unless the second question, asked alone, cites them too) and at least one that the second question cites
    when asked alone (or, when that cites nothing, nothing either). A follow-up stays on topic when its second
    answer cites the fixture's paper."""
    switches, follow_ups = load_conversations(path)
    alone: dict[str, set[str]] = {}

    def cited_alone(question: str) -> set[str]:
        if question not in alone:
            alone[question] = {c.paper_id for c in assistant.ask(question).citations}
        return alone[question]

    cases = []
    for first, second, *paper in [*switches, *follow_ups]:
        answer = assistant.ask(first)
        reply = assistant.ask(second, history=answer.history_entries())
        cited = [c.paper_id for c in reply.citations]
        if paper:
            cases.append(ConversationCase(kind="follow_up", first=first, second=second, ok=paper[0] in cited,
                                          standalone=reply.standalone_question, cited=cited, expected=paper))
            continue
        own = cited_alone(second)
        first_cited = {c.paper_id for c in answer.citations}  # the first answer's, not asked again
        leaked = sorted(set(cited) & (first_cited - own))
        on_topic = bool(set(cited) & own) if own else not cited
        cases.append(ConversationCase(kind="switch", first=first, second=second, ok=on_topic and not leaked,
                                      standalone=reply.standalone_question, cited=cited, leaked=leaked,
                                      expected=sorted(own)))
    switch_cases = [c for c in cases if c.kind == "switch"]
    follow_cases = [c for c in cases if c.kind == "follow_up"]
    return ConversationReport(
        provider=assistant.agent.provider,
        switches=len(switch_cases), switches_clean=sum(c.ok for c in switch_cases),
        follow_ups=len(follow_cases), follow_ups_on_topic=sum(c.ok for c in follow_cases), cases=cases,
    )


class AspectCase(BaseModel):
    """One aspect question of the fixture and whether its answer quotes a sentence that answers it."""

    question: str
    aspect: str
    ok: bool
    standalone: str
    quoted: list[str]  # the answer's claims, as written


class AspectReport(BaseModel):
    provider: str
    cases: list[AspectCase]

    @property
    def answered(self) -> int:
        return sum(c.ok for c in self.cases)

    @property
    def share(self) -> float:
        return self.answered / len(self.cases) if self.cases else 0.0


def evaluate_aspects(assistant: Assistant, path: Path) -> AspectReport:
    """Ask each question of an aspect fixture (tests/fixtures/aspect_questions.json), after its `history` if any;
    a case is answered when the answer quotes one of its answering sentences (every one, when `all` is set)."""

    def flat(text: str) -> str:
        return " ".join(text.split())

    cases = []
    for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
        history: list[dict[str, object]] = []
        for earlier in case.get("history", []):
            history += assistant.ask(earlier, history=history).history_entries()
        answer = assistant.ask(case["question"], history=history)
        body = flat(answer.body)
        found = [flat(sentence) in body for sentence in case["answers"]]
        cases.append(AspectCase(question=case["question"], aspect=case["aspect"], standalone=answer.standalone_question,
                                ok=all(found) if case.get("all") else any(found),
                                quoted=[c.text for c in answer.claims]))
    return AspectReport(provider=assistant.agent.provider, cases=cases)
