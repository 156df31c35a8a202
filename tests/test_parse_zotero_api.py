"""The Zotero Web API's item JSON (a real saved response): fields as the database maps them, attachments on the
parent."""

from __future__ import annotations

from pathlib import Path

from assistant.corpus import parse_file
from assistant.corpus.zotero_db import parse_zotero_api

FIXTURE = Path(__file__).parent / "fixtures" / "real" / "zotero_webapi.json"


def test_items_map_every_field_and_attachments_join_their_parent() -> None:
    result = parse_zotero_api(FIXTURE.read_text(encoding="utf-8"), "zotero.json")
    preprint, bare = result.papers
    assert preprint.paper_id == "zotero:1/VF5B5TLC"  # the database's id for the personal library: one paper
    assert preprint.title == "The Derived Auslander--Iyama Correspondence II: Bimodule Calabi--Yau Structures"
    assert preprint.authors == ["Gustavo Jasso", "Fernando Muro"]
    assert (preprint.year, preprint.date) == (2026, "2026-07-14")
    assert (preprint.doi, preprint.arxiv_id, preprint.url) == (
        "10.48550/arxiv.2509.22625", "2509.22625", "http://arxiv.org/abs/2509.22625")
    assert preprint.keywords == ["Mathematics - Representation Theory"]
    assert preprint.abstract.startswith("Let $d$ be a positive integer.")
    assert preprint.attachments == ["storage/UC87BKQR/Jasso and Muro - 2026 - The Derived Auslander--Iyama "
                                    "Correspondence II Bimodule Calabi--Yau Structures.pdf"]
    assert not bare.has_abstract and bare.title
    assert result.skipped == []  # the attachment is not an entry


def test_recognised_by_content_whatever_the_name(tmp_path: Path) -> None:
    for name in ("items.json", "items.txt"):
        (tmp_path / name).write_bytes(FIXTURE.read_bytes())
        assert parse_file(tmp_path / name).result.format == "zotero-api"
