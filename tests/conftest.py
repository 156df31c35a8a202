"""Shared fixtures (the seed corpus, a library ingested from it once per session) and the two test tiers.

- unit: deterministic and quick — no embedding model, no Chroma, no network, no subprocess of the app. A module
  joins the tier in UNIT_MODULES, a single test with `@pytest.mark.unit`; `unit_guard` fails a unit test that
  reaches for the real model, Chroma or a socket, naming what it touched (mark such a test integration).
- integration: everything else (the real MiniLM, Chroma, the wheel, Streamlit and chromium, llama.cpp), marked so
  automatically. `python3 -m pytest -m unit` runs the first tier alone; tests/run.sh runs both, unit first.
"""

from __future__ import annotations

import shutil
import socket
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.api import DEMO_CORPUS

SEEDS = DEMO_CORPUS

UNIT_MODULES = {
    "test_citations", "test_exports_out", "test_fuzz_parsers", "test_parse_apis", "test_parse_exports",
    "test_parse_seeds", "test_parse_tagged", "test_parse_xml_feeds", "test_parse_xml_records",
    "test_parse_zotero_api", "test_docs", "test_tiers", "test_bm25",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test of a unit module is unit unless marked integration or slow (timing growing inputs is quick nowhere)."""
    for item in items:
        in_unit_module = item.module is not None and item.module.__name__ in UNIT_MODULES
        marked = {name: item.get_closest_marker(name) is not None for name in ("unit", "integration", "slow")}
        if in_unit_module and not (marked["unit"] or marked["integration"] or marked["slow"]):
            item.add_marker(pytest.mark.unit)
        elif not marked["unit"]:
            item.add_marker(pytest.mark.integration)


def _refuse(what: str):  # noqa: ANN202 - a stand-in for any signature
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a unit test reached {what}: mark it integration (see tests/conftest.py)")
    return refused


class _RefusedModule(types.ModuleType):
    """Put in sys.modules for the length of a unit test: `import chromadb` then gives this, and any use fails."""

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):  # introspection (hypothesis, warnings, inspect) looks for __file__ and the like
            raise AttributeError(name)
        return _refuse(f"{self.__name__}.{name}")()


@pytest.fixture(autouse=True)
def unit_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the unit tier honest: no model, no Chroma, no network."""
    if request.node.get_closest_marker("unit") is not None:
        from assistant.index import embedders

        monkeypatch.setattr(socket.socket, "connect", _refuse("the network (socket.connect)"))
        monkeypatch.setattr(embedders, "load_onnx_minilm", _refuse("the MiniLM model"))  # cached once loaded
        monkeypatch.setattr(embedders, "load_sentence_transformer", _refuse("sentence-transformers"))
        monkeypatch.setattr(embedders.OpenAIEmbedder, "__init__", _refuse("the OpenAI embeddings"))
        monkeypatch.setitem(sys.modules, "chromadb", _RefusedModule("chromadb"))
    yield


@pytest.fixture(autouse=True, scope="session")
def _pdf_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The PDF text cache of the test session (and of the app servers and CLIs it starts), not the user's."""
    from assistant.corpus.pdf import CACHE_ENV

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("pdf-cache")))
        yield


@pytest.fixture(scope="session")
def seeded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the seed corpus ingested (embedding runs once per session; copy it before mutating)."""
    home = tmp_path_factory.mktemp("seeded") / "home"
    Assistant(home=home).ingest([SEEDS])
    return home


@pytest.fixture()
def seeded_copy(seeded_home: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded home, for tests that change the library."""
    target = tmp_path / "home"
    shutil.copytree(seeded_home, target)
    return target
