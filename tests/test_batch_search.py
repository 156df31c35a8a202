"""`search --queries FILE` streams: each query's JSON line is written once its batch is searched, the file is read
as the search goes (a pipe works), a terminal gets a progress bar on stderr, and a bad line is one line naming the
file and line number. Real processes, a real store, embeddings from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import pty
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from assistant import Assistant
from assistant.config import load_settings
from assistant.retrieve import SEARCH_BATCH

_SPEC = importlib.util.spec_from_file_location(
    "embedding_server", Path(__file__).parents[1] / "benchmarks" / "embedding_server.py")
embedding_server = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(embedding_server)

TOPICS = ["graph neural networks pass messages", "reinforcement learning agents", "protein folding in cells",
          "sparse training of transformers", "causal inference from observational data"]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A home of a few papers embedded by the loopback server, and the env that reaches it."""
    root = tmp_path_factory.mktemp("batch")
    corpus = root / "papers.jsonl"
    corpus.write_text("".join(json.dumps({"_id": f"p{i}", "title": topic.title(), "text": f"We study {topic}."}) + "\n"
                              for i, topic in enumerate(TOPICS)), encoding="utf-8")
    with embedding_server.serving() as server:
        settings = {"embedding_provider": "openai", "embedding_model": "hashed", "openai_base_url": server.base_url}
        Assistant(settings=load_settings(root / "home", **settings)).ingest([corpus])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITASSIST_"))}
        env |= {"LITASSIST_EMBEDDING_PROVIDER": "openai", "LITASSIST_EMBEDDING_MODEL": "hashed",
                "OPENAI_BASE_URL": server.base_url, "LITASSIST_HOME": str(root / "home"),
                "LITASSIST_LLM_PROVIDER": "offline", "PYTHONPATH": str(Path(__file__).parents[1])}
        yield root / "home", env


def _query_line(i: int) -> str:
    return json.dumps({"id": i, "text": TOPICS[i % len(TOPICS)]}) + "\n"


def _search_queries(env: dict[str, str], queries: Path, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "assistant", "search", "--queries", str(queries), "-k", "2"],
                            env=env, text=True, **popen)


def test_search_stream_answers_a_batch_before_reading_the_next(library: tuple[Path, dict[str, str]]) -> None:
    home, env = library
    lib = Assistant(settings=load_settings(home, embedding_provider="openai", embedding_model="hashed",
                                           openai_base_url=env["OPENAI_BASE_URL"]))
    read = []

    def queries() -> Iterator[str]:
        for i in range(2 * SEARCH_BATCH + 3):
            read.append(i)
            yield TOPICS[i % len(TOPICS)]

    results = lib.search_stream(queries(), k=2)
    first = next(results)
    assert len(read) == SEARCH_BATCH  # one batch read, not the whole input
    rest = list(results)
    assert len(rest) == 2 * SEARCH_BATCH + 2
    expected = lib.search_many(TOPICS, k=2)
    assert [h.paper_id for h in first] == [h.paper_id for h in expected[0]] and first[0].paper_id == "p0"
    assert [[h.paper_id for h in hits] for hits in rest[-len(TOPICS):]] == [
        [h.paper_id for h in hits] for hits in expected[(2 * SEARCH_BATCH + 3) % len(TOPICS):] +
        expected[:(2 * SEARCH_BATCH + 3) % len(TOPICS)]]


def test_results_come_through_a_pipe_before_the_last_query_is_written(
        library: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, env = library
    fifo = tmp_path / "queries.fifo"
    os.mkfifo(fifo)
    search = _search_queries(env, fifo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with _writer_once_read(fifo, search) as writer:
        writer.write("".join(_query_line(i) for i in range(SEARCH_BATCH)))
        writer.flush()
        first = {}
        reader = threading.Thread(target=lambda: first.update(json.loads(search.stdout.readline())))
        reader.start()
        reader.join(120)  # the pipe is still open: the search cannot have read its last query yet
        assert first and first["id"] == 0 and first["hits"][0]["paper_id"] == "p0", search.stderr.read()[-2000:]
        writer.write("".join(_query_line(i) for i in range(SEARCH_BATCH, SEARCH_BATCH + 10)))
    rest = [json.loads(line) for line in search.stdout]
    assert search.wait(60) == 0, search.stderr.read()[-2000:]
    assert [r["id"] for r in rest] == list(range(1, SEARCH_BATCH + 10))


def _writer_once_read(fifo: Path, reader: subprocess.Popen[str]) -> TextIO:
    """The FIFO opened for writing once `reader` has opened it (a reader that dies first fails the test, no hang)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as error:  # ENXIO: nobody reads it yet
            if error.errno != errno.ENXIO or reader.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the search never read its queries: {reader.stderr.read()[-2000:]}") from None
            time.sleep(0.05)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "w", encoding="utf-8")


def test_a_terminal_gets_progress_on_stderr_and_stdout_stays_pure_json(
        library: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, env = library
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(_query_line(i) for i in range(100)), encoding="utf-8")
    controller, terminal = pty.openpty()
    shown = bytearray()

    def read_terminal() -> None:
        while chunk := _read_or_empty(controller):
            shown.extend(chunk)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    search = _search_queries({**env, "TERM": "xterm", "COLUMNS": "100"}, queries, stdout=subprocess.PIPE,
                             stderr=terminal)
    os.close(terminal)
    lines = search.stdout.read().splitlines()
    assert search.wait(60) == 0
    reader.join(10)
    os.close(controller)
    assert [json.loads(line)["id"] for line in lines] == list(range(100))  # no bar, no escape code among them
    assert "searching" in shown.decode(errors="replace") and "100/100" in shown.decode(errors="replace")


def _read_or_empty(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # the terminal's other end closed
        return b""


@pytest.mark.parametrize(("content", "line"), [
    (_query_line(0) + "\n" + '{"id": 1}\n' + _query_line(2), 3),
    (_query_line(0) + "not json\n", 2),
    (_query_line(0) + _query_line(1) + '["id", "text"]\n', 3),
    (_query_line(0).encode() + b'{"id": 1, "text": "caf\xe9"}\n', 2),
])
def test_a_bad_line_is_one_line_naming_the_file_and_line(
        library: tuple[Path, dict[str, str]], tmp_path: Path, content: str | bytes, line: int) -> None:
    _, env = library
    queries = tmp_path / "queries.jsonl"
    queries.write_bytes(content if isinstance(content, bytes) else content.encode())
    search = _search_queries(env, queries, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, stderr = search.communicate(timeout=120)
    assert search.returncode == 2
    assert stderr.strip().startswith(f"error: {queries}: line {line} is not ")
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_a_queries_folder_is_one_line(library: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, env = library
    search = _search_queries(env, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, stderr = search.communicate(timeout=120)
    assert search.returncode == 2 and stderr.strip() == f"error: {tmp_path}: Is a directory"
