"""What an agent tool is: a typed function over a `ToolContext`, registered with `@agent_tool`, that carries its
own line for the system prompt and its own step line for the app. Every module of this package is a tool module:
a new tool is one new file here, nothing else changes."""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field

from ..citations import Evidence, Ledger
from ..prompting import quote_attribute, quote_data
from ..retrieve import Filters

if TYPE_CHECKING:
    from langchain_core.tools import StructuredTool

    from ..clusters import ClusterMap, ClusterSummary
    from ..config import Settings
    from ..index import Store
    from ..retrieve import Retriever

log = logging.getLogger("litassist.agent")


class Step(BaseModel):
    """One thing the agent did in a turn: a tool, its arguments, what came back."""

    tool: str
    args: dict[str, Any]
    summary: str

    def line(self) -> str:
        """The step as the user reads it: the tool's own step line, else `tool(arg=value): summary`."""
        tool = registered_tools().get(self.tool)
        if tool is not None and tool.step_line is not None:
            return tool.step_line(self)
        return f"{self.tool}({', '.join(f'{k}={v}' for k, v in self.args.items())}): {self.summary}"


class Turn(BaseModel):
    """What bounds one question's retrieval: the filters every search obeys and papers per search."""

    filters: Filters = Field(default_factory=Filters)
    k: int

    def scope_note(self) -> str:
        return f"(searched within this question's scope: {self.filters.describe()})\n" if self.filters.active() else ""


class Topics(Protocol):
    """Where the cluster tools get clusters and summaries from (the Assistant)."""

    def clusters(self) -> ClusterMap: ...

    def cluster_summary(self, cluster_id: str) -> ClusterSummary: ...


@dataclass
class ToolContext:
    """What every tool of one turn works over. The turn's filters (the user's years, author, source, or a
    cluster's papers) are a hard bound: a search narrows them and never widens them, and a paper outside them is
    neither read nor offered as similar. `budget` caps each tool result in tokens; `steps` records each call."""

    ledger: Ledger
    turn: Turn
    store: Store
    retriever: Retriever
    settings: Settings
    topics: Topics | None = None
    budget: int = 1000
    steps: list[Step] = field(default_factory=list)

    @property
    def scope(self) -> Filters:
        return self.turn.filters

    @property
    def library_topics(self) -> Topics:
        """The library's topics, for the tools registered with needs_topics (offered only when there are some)."""
        if self.topics is None:
            raise LookupError("this library has no topic clusters")
        return self.topics

    def record(self, tool: str, args: dict[str, Any], summary: str) -> None:
        self.steps.append(Step(tool=tool, args=args, summary=summary))

    def paper_in_scope(self, tool: str, paper_id: str) -> tuple[Evidence | None, str]:
        """The paper a tool was asked about, added to the ledger; or why it cannot be used."""
        known = self.ledger.resolve(paper_id)
        paper = known.paper if known else self.store.get_papers([paper_id]).get(paper_id)
        if paper is None:
            self.record(tool, {"paper_id": paper_id}, "not found")
            return None, f"No paper with id {quote_data(paper_id)!r} is in the library."
        evidence = self.ledger.add(paper, paper.abstract)
        if evidence is None:
            self.record(tool, {"paper_id": paper.paper_id}, "outside the scope")
            return None, (f"Paper {quote_data(paper.paper_id)!r} is outside this question's scope "
                          f"({self.scope.describe()}): it cannot be used or cited in this answer.")
        return evidence, ""


@dataclass(frozen=True)
class AgentTool:
    """A registered tool. The model reads the function's docstring and its typed parameters after `ctx`."""

    name: str
    function: Callable[..., str]
    hint: str  # a few words for the system prompt's list of tools
    order: int  # place in that list and in the tool definitions
    step_line: Callable[[Step], str] | None = None
    needs_topics: bool = False  # offered only when the library has topic clusters

    @property
    def description(self) -> str:
        return " ".join((self.function.__doc__ or "").split("\n\n")[0].split())

    def bind(self, ctx: ToolContext) -> StructuredTool:
        """The LangChain tool for one turn: the function with its context filled in."""
        from langchain_core.tools import StructuredTool
        from langchain_core.tools.base import create_schema_from_function

        schema = create_schema_from_function(self.name, self.function, filter_args=["ctx"])
        return StructuredTool.from_function(functools.partial(self.function, ctx), name=self.name,
                                            description=self.description, args_schema=schema)


_REGISTERED: dict[str, AgentTool] = {}


def agent_tool(*, hint: str, order: int, step_line: Callable[[Step], str] | None = None,
               needs_topics: bool = False) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register a function `(ctx: ToolContext, ...typed arguments) -> str` as an agent tool under its name."""

    def register(function: Callable[..., str]) -> Callable[..., str]:
        _REGISTERED[function.__name__] = AgentTool(function.__name__, function, hint, order, step_line, needs_topics)
        return function

    return register


@functools.cache
def registered_tools() -> dict[str, AgentTool]:
    """Name -> tool, in their order: every module of this package is imported once, registering its tools."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{__package__}.{module.name}")
    return dict(sorted(_REGISTERED.items(), key=lambda item: item[1].order))


def offered_tools(topics: bool) -> list[AgentTool]:
    """The tools of a turn: the cluster tools only when the library has topics."""
    return [tool for tool in registered_tools().values() if topics or not tool.needs_topics]


def make_tools(ctx: ToolContext) -> list[StructuredTool]:
    """The turn's LangChain tools, each bound to its context."""
    return [tool.bind(ctx) for tool in offered_tools(ctx.topics is not None)]


def tool_list(topics: bool) -> str:
    """The system prompt's list of tools, from each tool's hint."""
    return "\n".join(f"  - `{tool.name}`: {tool.hint}" for tool in offered_tools(topics))


def run_tool(tools: dict[str, Any], call: dict[str, Any]) -> str:
    """A tool call's result; a failing call (a bad argument, an unknown tool) is reported to the model as the
    result, so it can correct itself, instead of ending the turn."""
    tool = tools.get(call["name"])
    if tool is None:
        return f"Unknown tool {quote_attribute(str(call['name']))!r}; the tools are {', '.join(tools)}."
    try:
        return tool.invoke(call["args"])
    except Exception as error:  # noqa: BLE001 - every tool failure goes back to the model
        log.info("tool %s failed: %s: %s", call["name"], type(error).__name__, error)
        detail = quote_data(" ".join(str(error).split())[:300])
        return (f"The tool {call['name']} failed: {type(error).__name__}: {detail}. Fix the arguments, or answer "
                "from the evidence you have.")
