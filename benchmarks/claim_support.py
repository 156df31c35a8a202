"""How well per-claim support finds the sentence a claim rests on, and where "weak" should start.

SciFact claims stand in for an answer's cited sentences: each claim with gold evidence is "cited" to its gold
paper and, as a control, to the best-ranked retrieved paper that is not gold. For each mix of cosine and term
overlap (citations.SUPPORT_DENSE_WEIGHT) this prints how often the chosen span is one of SciFact's rationale
sentences, how well the support score separates the gold paper from the other one (AUC), and, per threshold,
the share of gold and of non-gold citations that would be marked weak.

    python benchmarks/claim_support.py /work/shared/eval/scifact --eval-home DIR [--split dev]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from assistant import Assistant, citations
from assistant.citations import Ledger, cite, support_claims
from assistant.index import sentence_spans

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55)


class CachedEmbedder:
    """The library's embedder, remembering vectors: every weight is scored from one embedding pass."""

    def __init__(self, embedder: object):
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = {}

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, self.embedder.embed_documents(missing)))
        return np.stack([self.vectors[t] for t in texts])


def support(embedder: CachedEmbedder, claim: str, paper: object) -> tuple[float, list[tuple[int, int]]]:
    ledger = Ledger()
    ledger.add(paper, paper.abstract)
    cited = cite(f"{claim.rstrip('.')} [1].", ledger)
    found = support_claims(cited, embedder, 0.0)[0].citations[0]
    return found.support or 0.0, [(s.start, s.end) for s in found.spans]


def auc(positives: list[float], negatives: list[float]) -> float:
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    return sum(pairs) / len(pairs) if pairs else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--eval-home", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    args = parser.parse_args()
    lib = Assistant(home=args.eval_home)
    rows = [json.loads(line) for line in (args.folder / f"claims_{args.split}.jsonl").read_text().splitlines() if line]
    cases = []
    for row in rows:
        if not row.get("evidence"):
            continue
        doc, found = next(iter(row["evidence"].items()))
        gold = lib.paper(str(doc))
        other = next((h.paper for h in lib.search(row["claim"], k=5) if h.paper_id not in row["evidence"]), None)
        rationale = {i for e in found for i in e["sentences"]}
        if gold and other:
            cases.append((row["claim"], gold, other, rationale))
    print(f"{len(cases)} {args.split} claims with gold evidence and a non-gold retrieved paper")
    embedder = CachedEmbedder(lib.embedder)
    for weight in WEIGHTS:
        citations.SUPPORT_DENSE_WEIGHT = weight
        gold_scores, other_scores, on_rationale = [], [], 0
        for claim, gold, other, rationale in cases:
            score, spans = support(embedder, claim, gold)
            sentences = sentence_spans(gold.abstract)
            chosen = {i for i, (a, b) in enumerate(sentences) for s, e in spans[:1] if a <= s < b}
            on_rationale += bool(chosen & rationale)
            gold_scores.append(score)
            other_scores.append(support(embedder, claim, other)[0])
        weak = "  ".join(f"<{t}: gold {sum(s < t for s in gold_scores) / len(cases):.0%} / other "
                         f"{sum(s < t for s in other_scores) / len(cases):.0%}" for t in THRESHOLDS)
        print(f"dense weight {weight:.2f}: span on a rationale sentence {on_rationale / len(cases):.3f}, "
              f"AUC gold vs other {auc(gold_scores, other_scores):.3f}, mean support gold "
              f"{sum(gold_scores) / len(cases):.3f} / other {sum(other_scores) / len(cases):.3f}\n    weak {weak}")


if __name__ == "__main__":
    main()
