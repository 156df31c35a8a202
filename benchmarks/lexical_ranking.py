"""Lexical ranking: the catalog's segmented BM25 (assistant/index/bm25.py) against bm25s (the lexical index
before the catalog) and SQLite FTS5 (the obvious alternative, measured and not taken).

All three see the same tokens (bm25s's tokenizer, English Snowball stems, its English stopwords) of the same text
(`assistant.index.lexical.lexical_text`). The catalog's index is built the way a library grows: one segment per
commit of COMMIT papers, merged in tiers. Prints nDCG@10, Recall@100 and CPU time per query for each BEIR folder
given (SciFact by default; the test split).

    python benchmarks/lexical_ranking.py [../shared/eval/scifact ...] [--split test]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import time
from pathlib import Path

import bm25s

from assistant.corpus import Paper
from assistant.evaluate import load_queries, ndcg_at_k, recall_at_k
from assistant.index import bm25
from assistant.index.lexical import lexical_text, query_terms, stemmer, tokenize

ROOT = Path(__file__).resolve().parent.parent
COMMIT = 250


def match_query(query: str) -> str | None:
    return " OR ".join(f'"{term}"' for term in query_terms(query)) or None


def load_corpus(folder: Path) -> list[Paper]:
    papers = []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            papers.append(Paper(paper_id=str(row["_id"]), title=row.get("title") or "", abstract=row.get("text") or ""))
    return papers


def fts5_run(papers: list[Paper], queries: dict[str, str]) -> tuple[dict[str, list[str]], list[float]]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE lexical USING fts5(tokens, tokenize=\"unicode61 remove_diacritics 0 "
               "tokenchars '_'\")")
    db.executemany("INSERT INTO lexical(rowid, tokens) VALUES(?, ?)",
                   [(i, " ".join(tokenize(lexical_text(p)))) for i, p in enumerate(papers)])
    run, times = {}, []
    for qid, text in queries.items():
        started = time.process_time()
        match = match_query(text)
        rows = db.execute("SELECT rowid FROM lexical WHERE lexical MATCH ? ORDER BY rank LIMIT 100",
                          (match,)).fetchall() if match else []
        times.append(time.process_time() - started)
        run[qid] = [papers[row].paper_id for (row,) in rows]
    return run, times


def segments_run(papers: list[Paper], queries: dict[str, str]) -> tuple[dict[str, list[str]], list[float]]:
    db = sqlite3.connect(":memory:")
    for statement in bm25.SCHEMA.split(";"):
        db.execute(statement)
    for start in range(0, len(papers), COMMIT):
        bm25.add(
            db,
            [(i, " ".join(tokenize(lexical_text(papers[i])))) for i in range(start, min(start + COMMIT, len(papers)))],
        )
    cache = bm25.PostingsCache()
    run, times = {}, []
    for qid, text in queries.items():
        started = time.process_time()
        hits = bm25.search(db, cache, query_terms(text), 100)
        times.append(time.process_time() - started)
        run[qid] = [papers[row].paper_id for row, _ in hits]
    return run, times


def bm25s_run(papers: list[Paper], queries: dict[str, str]) -> tuple[dict[str, list[str]], list[float]]:
    index = bm25s.BM25()
    index.index(bm25s.tokenize([lexical_text(p) for p in papers], stemmer=stemmer(), show_progress=False),
                show_progress=False)
    run, times = {}, []
    for qid, text in queries.items():
        started = time.process_time()
        tokens = bm25s.tokenize([text], stemmer=stemmer(), show_progress=False)
        docs, scores = index.retrieve(tokens, k=min(100, len(papers)), show_progress=False, n_threads=1)
        times.append(time.process_time() - started)
        run[qid] = [papers[int(d)].paper_id for d, s in zip(docs[0], scores[0]) if s > 0]
    return run, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[ROOT.parent / "shared" / "eval" / "scifact"])
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    print("| dataset | index | nDCG@10 | Recall@100 | query CPU ms (median) |\n| --- | --- | --- | --- | --- |")
    for folder in args.folders:
        papers = load_corpus(folder)
        queries, qrels = load_queries(folder, args.split)
        for name, build in (("bm25s", bm25s_run), ("FTS5", fts5_run), ("catalog (segments)", segments_run)):
            run, times = build(papers, queries)
            ndcg = statistics.fmean(ndcg_at_k(run[q], qrels[q]) for q in qrels)
            recall = statistics.fmean(recall_at_k(run[q], qrels[q], 100) for q in qrels)
            print(f"| {folder.name} ({len(papers):,} papers) | {name} | {ndcg:.3f} | {recall:.3f} | "
                  f"{statistics.median(times) * 1000:.1f} |")


if __name__ == "__main__":
    main()
