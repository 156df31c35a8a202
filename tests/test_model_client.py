"""The OpenAI-compatible client path against a real HTTP server on 127.0.0.1 (tests/model_server.py): what the
terminal keeps on screen, a model that never answers, context-length errors, the served context window."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import openai
import pytest
from model_server import scripted_server

from assistant import Assistant
from assistant.config import load_settings
from assistant.errors import ContextLengthError, ProviderError
from assistant.index import count_tokens
from assistant.llm import context_window, describe_error

QUESTION = "How does CMFQ make multi-agent RL scale?"
TOO_LONG = {"status": 400, "error": {
    "message": "This model's maximum context length is 1500 tokens. However, you requested 3000 tokens (2800 in "
               "the messages, 200 in the completion). Please reduce the length of the messages or completion.",
    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}


def client_settings(home: Path, base_url: str, **overrides: object) -> object:
    return load_settings(home, llm_provider="openai-compatible", openai_base_url=base_url, llm_model="m", **overrides)


def screen_after(command: list[str], env: dict[str, str], inputs: list[str], rows: int = 200) -> list[str]:
    """Run a command in a pseudo-terminal, type `inputs` at each "you> " prompt (or none), and return the lines
    a terminal shows at the end (pyte emulates it, so text that was replaced or erased is gone)."""
    import pexpect
    import pyte

    screen = pyte.Screen(110, rows)
    stream = pyte.ByteStream(screen)
    child = pexpect.spawn(command[0], command[1:], env=env, dimensions=(rows, 110), timeout=600)
    for line in inputs:
        child.expect("you> ")
        stream.feed(child.before + child.after)
        child.sendline(line)
    child.expect(pexpect.EOF)
    stream.feed(child.before)
    child.close()
    return [line.rstrip() for line in screen.display]


def test_the_terminal_keeps_the_checked_answer(seeded_copy: Path) -> None:
    """`chat` streams the model's tokens, then replaces them with the checked text: the invalid marker is gone,
    the uncited answer gets its note, and a paper keeps its number in the second turn."""
    script = [{"content": "CMFQ handles many agents [1]. Made up [99]."},
              {"content": "How is CMFQ evaluated?"},  # the condense call: "it" points back
              {"content": "It is evaluated on battle games, but I cite nothing [42]."}]
    with scripted_server(script) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "LITASSIST_LLM_TOOL_CALLING": "false", "PATH": "/usr/bin:/bin",
               "HOME": str(seeded_copy.parent), "TERM": "xterm-256color", "LITASSIST_LLM_MODEL": "m"}
        lines = screen_after([sys.executable, "-m", "assistant", "--home", str(seeded_copy), "chat"], env,
                             [QUESTION, "How is it evaluated?", ""])
    text = "\n".join(lines)
    assert "CMFQ handles many agents [1]. Made up." in text
    assert "[99]" not in text and "[42]" not in text
    assert "References" in text and "[1] Causal Mean Field Multi-Agent Reinforcement Learning" in text
    assert "It is evaluated on battle games, but I cite nothing." in text
    assert "_Note: this answer cites none of the" in text
    assert text.count("CMFQ handles many agents") == 1  # the streamed copy was replaced, not left above


def test_a_hung_model_fails_within_the_stated_timeout(seeded_home: Path) -> None:
    with scripted_server([{"hang": True}] * 5) as server:
        settings = client_settings(seeded_home, server.base_url, llm_timeout=3, llm_max_retries=2,
                                   llm_tool_calling=False)
        with pytest.raises(ProviderError) as caught:  # litassist's own error, not the OpenAI client's
            Assistant(settings=settings).ask(QUESTION)
        elapsed = time.monotonic() - server.arrivals[0]  # from the first try reaching the server to the error
        tries = len(server.requests)
    assert isinstance(caught.value.__cause__, openai.APITimeoutError)
    message = describe_error(caught.value, settings)
    assert message.startswith(f"the model at {server.base_url} did not answer within 3 s (3 tries of 1 s")
    assert tries == 3 and 2.9 <= elapsed <= 3 + 2.5  # the total the message states, plus the client's backoff


def test_context_length_400_refits_to_the_window_it_names(seeded_home: Path) -> None:
    with scripted_server([TOO_LONG, {"content": "CMFQ scales [1]."}]) as server:
        settings = client_settings(seeded_home, server.base_url, llm_tool_calling=False, llm_answer_tokens=200)
        answer = Assistant(settings=settings).ask(QUESTION)
        first, second = (count_tokens(json.dumps(r["messages"])) for r in server.requests)
    assert answer.text.startswith("CMFQ scales [1].")
    assert second < first and second <= 1500


def test_context_length_400_is_reported_as_such(seeded_home: Path) -> None:
    with scripted_server([TOO_LONG, TOO_LONG, {"content": "never reached"}]) as server:
        settings = client_settings(seeded_home, server.base_url, llm_answer_tokens=200)
        with pytest.raises(ContextLengthError) as caught:
            Assistant(settings=settings).ask(QUESTION)
        assert len(server.requests) == 2 and all("tools" in r for r in server.requests)  # not taken for a refusal
    assert describe_error(caught.value, settings).startswith(
        "the prompt is longer than the model's context window (1500 tokens) even after trimming")


def test_a_server_refusing_tools_gets_one_grounded_call(seeded_home: Path) -> None:
    refusal = {
        "status": 400,
        "error": {"message": "tools are not supported by this model", "type": "invalid_request_error"},
    }
    with scripted_server([refusal, {"content": "CMFQ scales [1]."}]) as server:
        answer = Assistant(settings=client_settings(seeded_home, server.base_url)).ask(QUESTION)
        assert "tools" in server.requests[0] and "tools" not in server.requests[1]
    assert answer.text.startswith("CMFQ scales [1].")


def test_the_context_window_comes_from_the_served_model(tmp_path: Path) -> None:
    with scripted_server([], models={"object": "list", "data": [{"id": "m", "max_model_len": 4096}]}) as vllm:
        assert context_window(client_settings(tmp_path, vllm.base_url)) == 4096
        assert context_window(client_settings(tmp_path, vllm.base_url, llm_context_window=2048)) == 2048  # a ceiling
        lib = Assistant(settings=client_settings(tmp_path, vllm.base_url))
        assert lib.summarizer.evidence_budget == 4096 - lib.settings.llm_answer_tokens - 400  # cluster summaries too
    with scripted_server(
        [], models={"data": [{"id": "m"}]}, props={"default_generation_settings": {"n_ctx": 3072}}
    ) as llama:
        assert context_window(client_settings(tmp_path, llama.base_url)) == 3072
    with scripted_server([], models={"data": [{"id": "m"}]}) as silent:
        assert context_window(client_settings(tmp_path, silent.base_url)) == 8192  # the setting's default
    assert context_window(load_settings(tmp_path, llm_provider="local", local_context_window=2048)) == 2048
    assert context_window(load_settings(tmp_path, llm_provider="openai", openai_api_key="sk-x",
                                        llm_model="gpt-4o-mini-2024-07-18")) == 128_000
