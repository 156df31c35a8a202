"""Providers as plugins: the example package tests/plugins/litassist_echo, pip-installed from its own
pyproject.toml, adds a provider that litassist lists, selects and answers with, found through its
`litassist.providers` entry point by importlib.metadata (nothing in litassist names it)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.llm import context_window, cost_usd, describe_error, model_errors, model_name, resolve_provider
from assistant.providers import provider_names, providers

PLUGIN = Path(__file__).parent / "plugins" / "litassist_echo"
BUILTIN = ["auto", "offline", "openai", "openai-compatible", "local"]
QUESTION = "How does CMFQ make multi-agent RL scale?"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin installed by pip (a wheel built from its pyproject.toml) into a folder of its own."""
    base = tmp_path_factory.mktemp("plugin")
    source = base / "src"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    site = base / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(site), str(source)], check=True, timeout=300, capture_output=True)
    return site


@pytest.fixture()
def on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Put a folder on sys.path and look the providers up again; afterwards the registry forgets it."""

    def add(folder: Path) -> None:
        monkeypatch.syspath_prepend(str(folder))  # also invalidates importlib's caches
        providers.cache_clear()

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LITASSIST_LOCAL_MODEL_PATH", "LITASSIST_LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    yield add
    providers.cache_clear()


def test_the_installed_plugin_is_listed_and_selectable(plugin_site: Path, on_path: object, tmp_path: Path) -> None:
    assert provider_names() == BUILTIN
    on_path(plugin_site)
    assert provider_names() == [*BUILTIN, "echo"]
    settings = load_settings(tmp_path, llm_provider="echo")
    assert resolve_provider(settings) == "echo" and model_name(settings, "echo") == "echo-1"
    assert context_window(settings) == 4096
    assert cost_usd("echo", "echo-1", 1_000_000, 500_000) == 2.0
    assert resolve_provider(load_settings(tmp_path)) == "offline"  # a plugin without auto_order is chosen by name


def test_the_plugins_own_errors_become_one_line(plugin_site: Path, on_path: object, tmp_path: Path) -> None:
    on_path(plugin_site)
    from litassist_echo import EchoUnavailable

    assert EchoUnavailable in model_errors()
    settings = load_settings(tmp_path, llm_provider="echo")
    assert describe_error(EchoUnavailable("down"), settings) == "the echo model failed: down; try again later"


def run_cli(home: Path, site: Path, question: str) -> subprocess.CompletedProcess[str]:
    """`litassist ask --json` in a new process whose path holds the plugin: discovery as a user gets it."""
    env = {**os.environ, "LITASSIST_LLM_PROVIDER": "echo",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "assistant", "--home", str(home), "ask", question, "--json"],
                          env=env, capture_output=True, text=True, timeout=600, check=False,
                          cwd=Path(__file__).parent.parent)


def test_the_plugin_answers_with_checked_citations(plugin_site: Path, seeded_copy: Path) -> None:
    done = run_cli(seeded_copy, plugin_site, QUESTION)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["provider"], answer["model"], answer["extractive"]) == ("echo", "echo-1", False)
    first = answer["citations"][0]
    assert answer["answer"].startswith(f"The closest paper is “{first['title']}” [1].")
    assert first["number"] == 1 and answer["usage"]["cost_usd"] > 0  # priced by the plugin


def test_a_failing_plugin_model_is_one_line_not_a_traceback(plugin_site: Path, seeded_copy: Path) -> None:
    done = run_cli(seeded_copy, plugin_site, f"please fail: {QUESTION}")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "EchoUnavailable" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: the echo model failed: the echo server is down; try again later")


def test_a_broken_plugin_is_skipped_with_a_warning(on_path: object, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Entry points that do not import, or name something that is not a Provider, or take a built-in's name."""
    info = tmp_path / "broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[litassist.providers]\nmissing = no_such_module_for_litassist:Thing\nnot_a_provider = json:loads\n"
        "taken = assistant.providers.offline:OfflineProvider\n", encoding="utf-8")
    on_path(tmp_path)
    with caplog.at_level(logging.WARNING, logger="litassist.providers"):
        assert provider_names() == BUILTIN
    warned = caplog.text
    assert "missing" in warned and "ModuleNotFoundError" in warned
    assert "not a litassist Provider" in warned and "already used" in warned
