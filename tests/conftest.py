"""Shared fixtures: the seed corpus and a library ingested from it once per test session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.api import DEMO_CORPUS

SEEDS = DEMO_CORPUS


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
