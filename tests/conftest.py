"""Shared fixtures: the seed corpus and a library ingested from it once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.api import DEMO_CORPUS

SEEDS = DEMO_CORPUS


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
