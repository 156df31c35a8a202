"""Choose the offline (extractive) answer's sentence rule on SciFact **train** claims; report it on dev.

For each claim, asked as `eval answers` asks it, the candidate sentences of the retrieved papers are scored once
(agent.candidate_sentences); then every rule of a grid (agent.Selection) picks its sentences, and its citations
are scored against the gold evidence papers like `eval answers` does: citation recall (claims citing at least one
gold paper) and precision (cited papers that are gold). The rule kept is the most precise one whose train recall
is at least --min-recall. Claims the agent would abstain on count as misses.

    python benchmarks/tune_extractive.py /work/shared/eval/scifact --eval-home DIR [--limit N]

(the eval home must hold the corpus already: `litassist eval answers` ingests it)
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
                               (0.35, 0.45, 0.55), (2, 3, 4, 6), (True, False))
    return [replace(SELECTION, term_weight=t, rank_weight=r, margin=m, min_cosine_without_terms=c, papers=p,
                    drop_generic=g) for t, r, m, c, p, g in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--eval-home", type=Path, required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--min-recall", type=float, default=0.90)
    parser.add_argument("--dev", action="store_true", help="also score the rules on dev (eval answers does too)")
    args = parser.parse_args()
    lib = Assistant(home=args.eval_home)
    if not lib.stats().papers:
        raise SystemExit(f"{args.eval_home}: no papers; run `litassist eval answers {args.folder} --eval-home ...` first")
    print("scoring the candidate sentences of train claims")
    train = features(lib, load_claims(args.folder, "train")[: args.limit], 6)
    dev = features(lib, load_claims(args.folder, "dev"), 6) if args.dev else []
    results = [(rule, score(train, rule)) for rule in grid()]
    eligible = [(rule, s) for rule, s in results if s[0] >= args.min_recall] or results
    best_rule, _ = max(eligible, key=lambda item: (item[1][1], item[1][0]))
    print(f"train: {len(train)} claims with gold evidence; {len(results)} rules")
    def line(rule: Selection) -> str:
        r, p, c = score(train, rule)
        text = f"train recall {r:.3f} precision {p:.3f} {c:.2f} citations/answer"
        if dev:
            dr, dp, dc = score(dev, rule)
            text += f" | dev recall {dr:.3f} precision {dp:.3f} {dc:.2f} citations/answer"
        return text

    old = Selection(term_weight=0.0, rank_weight=0.0, margin=10.0, min_cosine_without_terms=-1.0, papers=6,
                    drop_generic=False)
    for name, rule in (("the old rule (best 4 by cosine, 2 per paper)", replace(old, max_sentences=4)),
                       ("current (agent.SELECTION)", SELECTION), ("best on train", best_rule)):
        print(f"{name}: {rule}\n  {line(rule)}")
    print("the precision/recall frontier on train (best precision at each recall floor):")
    for floor in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94):
        pool = [(rule, s) for rule, s in results if s[0] >= floor]
        if pool:
            rule, _ = max(pool, key=lambda item: item[1][1])
            print(f"  recall >= {floor:.2f}: {line(rule)}  {rule}")


if __name__ == "__main__":
    main()
