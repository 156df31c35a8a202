"""The unit tier's guard (tests/conftest.py) refuses what would make a unit test slow or flaky, by name."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.index import make_embedder


def test_a_unit_test_cannot_reach_the_model_chroma_or_the_network(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="the MiniLM model: mark it integration"):
        make_embedder(load_settings(tmp_path / "home")).embed_query("graph partitioning")
    with pytest.raises(AssertionError, match="chromadb.PersistentClient"):
        import chromadb  # what assistant/index/vectors.py does when it opens a library

        chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    with pytest.raises(AssertionError, match="the network"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
