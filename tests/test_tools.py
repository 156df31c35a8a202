"""Each agent tool alone: a typed function over a ToolContext (ledger, scope, store, budget) on the real seed
library, without an agent or a model; and the registry that offers them, words the system prompt's list of
tools and the app's step lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import Assistant
from assistant.citations import Ledger
from assistant.prompting import prompt
from assistant.retrieve import Filters
from assistant.tools import Step, ToolContext, Turn, make_tools, registered_tools, tool_list
from assistant.tools.clusters import cluster_summary, list_clusters
from assistant.tools.read import read_paper
from assistant.tools.search import search_papers
from assistant.tools.similar import similar_papers

CMFQ = "t:d98253977a772ee3"  # Causal Mean Field Multi-Agent Reinforcement Learning (no year)


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITASSIST_LLM_PROVIDER", "offline")


def context(home: Path, scope: Filters | None = None, topics: bool = False, k: int = 4) -> ToolContext:
    lib = Assistant(home=home)
    scope = scope or Filters()
    return ToolContext(Ledger(scope.admits if scope.active() else None), Turn(filters=scope, k=k), lib.store,
                       lib.retriever, lib.settings, lib if topics else None)


def test_search_papers_narrows_the_scope_and_records_its_step(seeded_home: Path) -> None:
    ctx = context(seeded_home, Filters(year_min=2023))
    result = search_papers(ctx, "graph neural networks", year_min=2024)
    assert result.startswith("(searched within this question's scope: years 2023-…)\n<evidence n=\"1\"")
    assert ctx.ledger.items and all(e.paper.year >= 2024 for e in ctx.ledger.items.values())
    step = ctx.steps[-1]
    assert step == Step(tool="search_papers", args={"query": "graph neural networks", "year_min": 2024},
                        summary=f"{len(ctx.ledger.items)} papers")
    assert step.line() == f"Searched for “graph neural networks” (year min 2024): {len(ctx.ledger.items)} papers"


def test_read_paper_reads_refuses_and_says_not_found(seeded_home: Path) -> None:
    ctx = context(seeded_home)
    result = read_paper(ctx, CMFQ)
    paper = ctx.ledger.resolve(CMFQ).paper
    assert paper.abstract.split(".")[0] in result and f'paper_id="{CMFQ}"' in result
    assert ctx.steps[-1].line() == f"Read paper {CMFQ}: {paper.title}"
    assert read_paper(ctx, "t:nope") == "No paper with id 't:nope' is in the library."
    assert ctx.steps[-1].summary == "not found"
    scoped = context(seeded_home, Filters(year_min=2024))
    assert read_paper(scoped, CMFQ).startswith(f"Paper '{CMFQ}' is outside this question's scope (years 2024-…)")
    assert not scoped.ledger.items and scoped.steps[-1].summary == "outside the scope"


def test_similar_papers_gives_at_most_evidence_k_inside_the_scope(seeded_home: Path) -> None:
    ctx = context(seeded_home)
    result = similar_papers(ctx, CMFQ)
    found = ctx.ledger.items.keys() - {CMFQ}
    assert 0 < len(found) <= ctx.settings.evidence_k and result.count("<evidence ") == len(found)
    assert ctx.steps[-1].line() == f"Looked for papers similar to {CMFQ}: {len(found)} papers"
    members = sorted(found)[:2]
    scoped = context(seeded_home, Filters(paper_ids=[CMFQ, *members]))
    similar_papers(scoped, CMFQ)
    assert set(scoped.ledger.items) <= {CMFQ, *members}


def test_cluster_tools_cite_representatives_and_report_unknown_ids(seeded_copy: Path, offline: None) -> None:
    ctx = context(seeded_copy, topics=True)
    overview = list_clusters(ctx)
    clusters = ctx.topics.clusters().topics
    assert all(c.label in overview for c in clusters) and ctx.ledger.items
    assert ctx.steps[-1].line() == f"list_clusters(): {len(clusters)} clusters"  # the generic step line
    first = clusters[0]
    assert cluster_summary(ctx, first.cluster_id).startswith(f"Cluster {first.cluster_id}: ")
    assert "c999" in cluster_summary(ctx, "c999") and ctx.steps[-1].summary == "not found"


def test_the_registry_offers_binds_and_describes_each_tool(seeded_home: Path) -> None:
    assert list(registered_tools()) == ["search_papers", "read_paper", "similar_papers", "list_clusters",
                                        "cluster_summary"]
    ctx = context(seeded_home)
    tools = {tool.name: tool for tool in make_tools(ctx)}
    assert list(tools) == ["search_papers", "read_paper", "similar_papers"]  # no topics: no cluster tools
    assert tools["read_paper"].description == read_paper.__doc__
    assert set(tools["search_papers"].args) == {"query", "year_min", "year_max", "author"}  # ctx is filled in
    assert tools["read_paper"].invoke({"paper_id": CMFQ}) and ctx.steps[-1].tool == "read_paper"
    system = prompt("system").format(tools=tool_list(False))
    assert "`search_papers`: search the library" in system and "list_clusters" not in system
    assert "`cluster_summary`: a cited summary of one cluster" in tool_list(True)


def test_a_step_of_no_tool_gets_the_generic_line() -> None:
    step = Step(tool="time_limit", args={"seconds": 5}, summary="answering from the evidence so far")
    assert step.line() == "time_limit(seconds=5): answering from the evidence so far"
