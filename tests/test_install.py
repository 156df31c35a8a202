"""Installation as a user gets it: the built wheel in a fresh venv (no torch), run from a folder outside the repo;
and the process hygiene of the CLI (paths with ~ and $VARS, a bad --home, signals to `litassist ui`)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from seeds import seed_paper_count

from assistant.config import load_settings

ROOT = Path(__file__).resolve().parents[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user with no model configured and nothing of this checkout on the path."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "LITASSIST_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, "LITASSIST_LLM_PROVIDER": "offline", **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_page(port: int, process: subprocess.Popen, timeout: float = 180) -> str:
    """The app's HTML once the server answers (fails early if the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"litassist ui exited with {process.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                if reply.read() == b"ok":
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                        return page.read().decode()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"nothing served on port {port} within {timeout} s")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_and_check(process: subprocess.Popen, port: int, signum: int) -> None:
    """Send `signum` to `litassist ui` only (not its group): it and its Streamlit child must both go."""
    process.send_signal(signum)
    process.wait(timeout=60)
    deadline = time.monotonic() + 30
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not listening(port), "the Streamlit child is still serving after litassist ui exited"


# --- the wheel, installed into a fresh venv -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the venv's bin folder, the wheel): `pip wheel` of this checkout installed into a venv without system
    packages."""
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(ROOT)],
                   check=True, env=clean_env(), timeout=900)
    wheel = next((base / "dist").glob("litassist-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    bin_dir = base / "venv" / "bin"
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True, env=clean_env(),
                   timeout=1800)
    yield bin_dir, wheel


@pytest.mark.slow
def test_wheel_holds_prompts_app_seeds_and_model(installed: tuple[Path, Path]) -> None:
    names = set(zipfile.ZipFile(installed[1]).namelist())
    for needed in ("assistant/prompts/offline_answer.md", "assistant/prompts/cluster_extractive.md",
                   "assistant/ui/app.py", "assistant/ui/.streamlit/config.toml",
                   "assistant/demo/seeds/guo-zhenyu-author-page.txt", "assistant/index/minilm/MODEL.json",
                   "assistant/index/minilm/onnx/model.onnx", "assistant/index/minilm/onnx/tokenizer.json"):
        assert needed in names, needed
    assert not any(name.startswith(("prompts/", "ui/", "tests/")) for name in names)  # nothing at the top level


@pytest.mark.slow
def test_installed_wheel_works_from_another_folder_without_torch(installed: tuple[Path, Path], tmp_path: Path) -> None:
    bin_dir, _ = installed
    work = tmp_path / "elsewhere"  # outside the repository: nothing can be found relative to the source tree
    work.mkdir()
    python = str(bin_dir / "python")
    probe = ("import importlib.util as u; "
             "print([m for m in ('torch', 'sentence_transformers', 'transformers') if u.find_spec(m)])")
    missing = subprocess.run([python, "-c", probe],
                             capture_output=True, text=True, cwd=work, check=True).stdout.strip()
    assert missing == "[]", f"the default install pulled in {missing}"

    def litassist(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(bin_dir / "litassist"), "--home", str(work / "lib"), *args], cwd=work,
                                capture_output=True, text=True, env=clean_env(), timeout=600, check=False)
        assert result.returncode == 0, f"litassist {' '.join(args)}: {result.stderr[-3000:]}"
        return result

    ingested = litassist("ingest", "--demo").stdout
    assert re.search(rf"new papers\W+{seed_paper_count()}\b", ingested), ingested  # the report's row
    answer = json.loads(litassist("ask", "How do these papers make multi-agent RL scale?", "--json").stdout)
    assert answer["provider"] == "offline" and answer["citations"], answer
    litassist("summarize", "--out", "report", "--format", "md,html")
    assert (work / "report" / "report.md").read_text(encoding="utf-8").count("[1]") >= 1

    port = free_port()
    ui = subprocess.Popen([str(bin_dir / "litassist"), "--home", str(work / "lib"), "ui", "--port", str(port)],
                          cwd=work, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        page = wait_for_page(port, ui)
        assert "<title>" in page and "streamlit" in page.lower()
        stop_and_check(ui, port, signal.SIGTERM)
    finally:
        if ui.poll() is None:
            ui.kill()


# --- paths and signals, in this checkout ---------------------------------------------------------------------------

def test_path_settings_expand_home_and_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PAPERS", str(tmp_path / "papers"))
    monkeypatch.setenv("LITASSIST_HOME", "~/library")
    monkeypatch.setenv("LITASSIST_LOCAL_MODEL_PATH", "$PAPERS/model.gguf")
    monkeypatch.setenv("LITASSIST_EMBEDDING_MODEL", "~/models/minilm")
    settings = load_settings()
    assert settings.home == tmp_path / "library"
    assert settings.local_model_path == str(tmp_path / "papers" / "model.gguf")
    assert settings.embedding_model == str(tmp_path / "models" / "minilm")
    assert load_settings("$PAPERS/lib").home == tmp_path / "papers" / "lib"
    monkeypatch.setenv("LITASSIST_EMBEDDING_MODEL", "all-MiniLM-L6-v2")
    assert load_settings().embedding_model == "all-MiniLM-L6-v2"  # a model name is left as it is


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        env={**clean_env(**env), "PYTHONPATH": str(ROOT)},
        timeout=300,
    )


def test_tilde_home_from_the_environment_is_not_a_literal_folder(tmp_path: Path) -> None:
    result = run_cli("stats", "--json", cwd=tmp_path, HOME=str(tmp_path / "user"), LITASSIST_HOME="~/papers")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["home"] == str(tmp_path / "user" / "papers")
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_home_that_is_a_file_is_one_line_and_exit_2(tmp_path: Path, how: str) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a folder")
    for home in (blocker, blocker / "library"):
        args, env = (["--home", str(home)], {}) if how == "flag" else ([], {"LITASSIST_HOME": str(home)})
        result = run_cli(*args, "stats", cwd=tmp_path, **env)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "is a file, not a directory" in lines[0] and "Traceback" not in result.stderr


def test_home_that_is_not_writable_is_one_line_and_exit_2(tmp_path: Path) -> None:
    if os.access("/proc/self", os.W_OK):  # root passes permission checks; a read-only file system stops everyone
        pytest.skip("no read-only place to point --home at")
    result = run_cli("--home", "/proc/self/litassist", "stats", cwd=tmp_path)
    assert result.returncode == 2 and "not writable" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_ui_passes_signals_to_streamlit_and_exits_with_it(tmp_path: Path, signum: int) -> None:
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "assistant", "--home", str(tmp_path / "home"), "ui", "--port",
                           str(port)], cwd=tmp_path, env={**clean_env(), "PYTHONPATH": str(ROOT)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_page(port, ui)
        stop_and_check(ui, port, signum)
        assert ui.returncode in (0, 128 + signum)
    finally:
        if ui.poll() is None:
            ui.kill()
