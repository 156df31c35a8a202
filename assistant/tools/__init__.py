"""The agent's tools as a registry: each a typed function over a `ToolContext` in its own module here."""

from .registry import (
    AgentTool,
    Step,
    ToolContext,
    Topics,
    Turn,
    agent_tool,
    make_tools,
    offered_tools,
    registered_tools,
    run_tool,
    tool_list,
)

__all__ = [
    "AgentTool",
    "Step",
    "ToolContext",
    "Topics",
    "Turn",
    "agent_tool",
    "make_tools",
    "offered_tools",
    "registered_tools",
    "run_tool",
    "tool_list",
]
