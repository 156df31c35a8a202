"""Tune hybrid fusion on SciFact **train** only: print nDCG@10 per dense weight, and RRF for comparison.

    python benchmarks/tune_fusion.py [../shared/eval/scifact] [--home EVAL_HOME]

The chosen weight becomes `fusion_dense_weight`'s default in assistant/config.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from assistant import Assistant
from assistant.evaluate import eval_home, load_queries, ndcg_at_k
from assistant.retrieve import fuse

RRF_K = 60


def rrf(dense: dict[str, float], lexical: dict[str, float]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for ranking in (dense, lexical):
        for rank, pid in enumerate(sorted(ranking, key=lambda p: -ranking[p])):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
    return scores


def mean_ndcg(runs: list[dict[str, float]], judgements: list[dict[str, int]]) -> float:
    total = 0.0
    for scores, relevant in zip(runs, judgements):
        total += ndcg_at_k(sorted(scores, key=lambda p: (-scores[p], p)), relevant)
    return total / len(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).parents[2] / "shared/eval/scifact"))
    parser.add_argument("--home", default=None, help="evaluation home (default: the one `litassist eval` uses)")
    args = parser.parse_args()
    folder = Path(args.folder)
    lib = Assistant(home=args.home or eval_home(folder))
    lib.ingest([folder / "corpus.jsonl"])
    queries, qrels = load_queries(folder, "train")
    candidates = lib.retriever.candidates(list(queries.values()), pool=100)
    judgements = [qrels[q] for q in queries]
    dense = [{p: s for p, (s, _) in c.dense.items()} for c in candidates]
    lexical = [c.lexical for c in candidates]
    print(f"SciFact train: {len(queries)} queries")
    print(f"dense only     nDCG@10 {mean_ndcg(dense, judgements):.4f}")
    print(f"lexical only   nDCG@10 {mean_ndcg(lexical, judgements):.4f}")
    print(f"RRF (k={RRF_K})    nDCG@10 {mean_ndcg([rrf(d, lex) for d, lex in zip(dense, lexical)], judgements):.4f}")
    best = (0.0, 0.0)
    for step in range(21):
        weight = step / 20
        score = mean_ndcg([fuse(d, lex, weight) for d, lex in zip(dense, lexical)], judgements)
        best = max(best, (score, weight))
        print(f"min-max linear, dense weight {weight:.2f}: nDCG@10 {score:.4f}")
    print(f"best dense weight on train: {best[1]:.2f} (nDCG@10 {best[0]:.4f})")


if __name__ == "__main__":
    main()
