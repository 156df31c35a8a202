"""Choose the offline (extractive) answer's sentence rule on SciFact **train** claims; report it on dev.

For each claim, asked as `eval answers` asks it, the candidate sentences of the retrieved papers are scored once
(agent.candidate_sentences); then every rule of a grid (agent.Selection) picks its sentences, and its citations
are scored against the gold evidence papers like `eval answers` does: citation recall (claims citing at least one
gold paper) and precision (cited papers that are gold). The rule kept is the most precise one whose train recall
is at least --min-recall. Claims the agent would abstain on count as misses.

    python benchmarks/tune_extractive.py /work/shared/eval/scifact --eval-home DIR [--limit N]
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import replace
from pathlib import Path

from assistant import Assistant
from assistant.agent import SELECTION, Candidate, Selection, candidate_sentences, choose_sentences, topic_coverage
from assistant.evaluate import load_claims

EVAL_QUESTION = "Is this claim supported by the evidence? {claim}"


def features(lib: Assistant, claims: list[tuple[str, set[str]]], papers: int) -> list[tuple[list[Candidate] | None, set[str]]]:
    """Candidates per claim with gold evidence (None where the agent abstains before choosing)."""
    settings = lib.settings
    rows = []
    started = time.perf_counter()
    for i, (claim, gold) in enumerate(claims, 1):
        if not gold:
            continue
        question = EVAL_QUESTION.format(claim=claim)
        hits = lib.search(question, k=settings.evidence_k)
        best = max((h.similarity or 0.0 for h in hits), default=0.0)
        coverage = max((topic_coverage(question, h) for h in hits), default=0.0)
        abstains = best < settings.abstain_below and coverage < settings.abstain_term_coverage
        rows.append((None if abstains else candidate_sentences(question, hits, lib.embedder, papers), gold))
        if i % 50 == 0:
            print(f"  {i}/{len(claims)} claims, {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def score(rows: list[tuple[list[Candidate] | None, set[str]]], rule: Selection) -> tuple[float, float, float]:
    """(citation recall, citation precision, citations per answer) of a rule."""
    hits = cited_total = cited_gold = 0
    for candidates, gold in rows:
        cited = {c.hit.paper_id for c in choose_sentences(candidates, rule)} if candidates else set()
        hits += bool(cited & gold)
        cited_total += len(cited)
        cited_gold += len(cited & gold)
    n = len(rows)
    return hits / n, cited_gold / cited_total if cited_total else 0.0, cited_total / n


def grid() -> list[Selection]:
    values = itertools.product((0.0, 0.15, 0.3, 0.5), (0.0, 0.15, 0.3, 0.5, 0.8), (0.0, 0.03, 0.05, 0.08, 0.12, 0.2),
                               (0.35, 0.45, 0.55), (2, 3, 4, 5, 6))
    return [replace(SELECTION, term_weight=t, rank_weight=r, margin=m, min_cosine_without_terms=c, papers=p)
            for t, r, m, c, p in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--eval-home", type=Path, required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--min-recall", type=float, default=0.90)
    args = parser.parse_args()
    lib = Assistant(home=args.eval_home)
    lib.ingest([args.folder / "corpus.jsonl"])
    print("scoring the candidate sentences of train claims")
    train = features(lib, load_claims(args.folder, "train")[: args.limit], 6)
    print("and of dev claims")
    dev = features(lib, load_claims(args.folder, "dev"), 6)
    results = [(rule, score(train, rule)) for rule in grid()]
    eligible = [(rule, s) for rule, s in results if s[0] >= args.min_recall] or results
    best_rule, best = max(eligible, key=lambda item: (item[1][1], item[1][0]))
    print(f"train: {len(train)} claims with gold evidence; {len(results)} rules")
    for name, rule in (("current (agent.SELECTION)", SELECTION), ("best on train", best_rule)):
        r, p, c = score(train, rule)
        dr, dp, dc = score(dev, rule)
        print(f"{name}: {rule}")
        print(f"  train recall {r:.3f} precision {p:.3f} {c:.2f} citations/answer | "
              f"dev recall {dr:.3f} precision {dp:.3f} {dc:.2f} citations/answer")
    print("the precision/recall frontier on train (best precision at each recall floor):")
    for floor in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94):
        pool = [(rule, s) for rule, s in results if s[0] >= floor]
        if pool:
            rule, (r, p, c) = max(pool, key=lambda item: item[1][1])
            dr, dp, dc = score(dev, rule)
            print(f"  recall >= {floor:.2f}: train {r:.3f}/{p:.3f}/{c:.2f}, dev {dr:.3f}/{dp:.3f}/{dc:.2f}  {rule}")


if __name__ == "__main__":
    main()
