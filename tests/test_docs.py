"""The documentation names only what exists: every repository path and link in README.md and docs/*.md is a file
or folder, every `litassist ...` command names real subcommands and options, and the command table of docs/cli.md
is the CLI's own help. A renamed file, a dropped option or a reworded help line fails here, not in a reader's
terminal."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from assistant.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("assistant", "ui", "tests", "docs", "benchmarks", "scripts", "prompts", "examples", ".ci")
PATH = re.compile(rf"(?<![\w./~$-])((?:{'|'.join(re.escape(t) for t in TOP)})/[\w./-]*[\w/])")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)|src=\"([^\"]+)\"")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
PLACEHOLDER = re.compile(r"[A-Z_]+(\.\.\.)?|\.\.\.|…")  # COMMAND, PATH..., ...
CLI = typer.main.get_command(app)


def cited_paths(text: str) -> set[str]:
    """Repository paths named in the text; link targets are left to LINK (they are relative to the doc)."""
    return {match.rstrip("/.") for match in PATH.findall(re.sub(r"\]\([^)]*\)", "]", text))}


def commands(text: str) -> list[str]:
    """`litassist ...` as written in code blocks (one per line, after any VAR=value) and in inline code."""
    found = []
    for block in FENCE.findall(text):
        for line in block.splitlines():
            for part in line.split(" #")[0].split("&&"):
                part = re.sub(r"^\s*(\w+=\S+\s+)*", "", part).strip()  # LITASSIST_RERANK=llm litassist ...
                if part.startswith("litassist ") or part == "litassist":
                    found.append(part)
    for span in INLINE.findall(FENCE.sub("", text)):
        if span.startswith("litassist ") or span == "litassist":
            found.append(span)
    return found


def words(command: str) -> list[str]:
    try:
        tokens = shlex.split(command)
    except ValueError:  # an unclosed quote inside an example ("...")
        tokens = command.split()
    return [piece for token in tokens for piece in token.strip("[]").split("|") if piece]


def options(command: Any) -> dict[str, bool]:
    """Each option spelling of a click command, and whether it takes a value."""
    return {opt: not param.is_flag for param in command.params if param.param_type_name == "option"
            for opt in [*param.opts, *param.secondary_opts]}


def problems_of(command: str) -> list[str]:
    """What in one documented command the CLI does not have (an unknown subcommand or option)."""
    tokens, current, path, problems = words(command)[1:], CLI, ["litassist"], []
    expect_value = False
    for token in tokens:
        known = {**options(current), "--help": False}
        if expect_value:
            expect_value = False
        elif token.startswith("-") and token not in ("-", "--"):
            name = token.split("=")[0]
            if name not in known and not re.fullmatch(r"-\d.*", name):
                problems.append(f"{' '.join(path)} has no option {name}")
            expect_value = known.get(name, False) and "=" not in token
        elif hasattr(current, "commands") and not PLACEHOLDER.fullmatch(token):  # a group: the next word is a command
            if token not in current.commands:
                problems.append(f"{' '.join(path)} has no subcommand {token!r}")
                break
            current, path = current.commands[token], [*path, token]
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_and_link_in_the_docs_exists(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    missing = sorted(p for p in cited_paths(text) if not (ROOT / p).exists())
    for target in (a or b for a, b in LINK.findall(text)):
        if "://" in target or target.startswith("mailto:"):
            continue
        resolved = (doc.parent / target).resolve()
        if not resolved.exists():
            missing.append(f"link {target}")
    assert not missing, f"{doc.relative_to(ROOT)} names what is not in the repository: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_command_exists_in_the_cli(doc: Path) -> None:
    problems = [f"`{command}`: {problem}" for command in commands(doc.read_text(encoding="utf-8"))
                for problem in problems_of(command)]
    assert not problems, "\n".join(problems)


def test_the_checker_catches_what_the_cli_lacks() -> None:
    assert problems_of("litassist --home ~/lib search QUERY -k 5 --year-min 2020 --json") == []
    assert problems_of("litassist conversations export 3fa2 --format markdown") == []
    assert problems_of("litassist serch QUERY") == ["litassist has no subcommand 'serch'"]
    assert problems_of("litassist search QUERY --top 5") == ["litassist search has no option --top"]
    assert problems_of("litassist conversations exprt 3fa2") == ["litassist conversations has no subcommand 'exprt'"]
    assert cited_paths("see `tests/nowhere.py` and assistant/api.py.") == {"tests/nowhere.py", "assistant/api.py"}


def cli_table() -> list[tuple[str, str, str]]:
    """The rows of docs/cli.md between its cli-help markers: command, help line, options."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text.split("<!-- cli-help: checked by tests/test_docs.py -->")[1].split("<!-- /cli-help -->")[0]
    rows = [line.strip("|").split(" | ") for line in table.strip().splitlines()[2:]]
    return [(command.strip(" `"), help_line.strip(), opts.strip()) for command, help_line, opts in rows]


def cli_rows() -> list[tuple[str, str, str]]:
    rows = []

    def walk(command: Any, path: list[str]) -> None:
        if path:
            spelled = ", ".join("`" + " / ".join(p.opts) + "`" for p in command.params if p.param_type_name == "option")
            rows.append((" ".join(["litassist", *path]), command.get_short_help_str(limit=300), spelled or "—"))
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                walk(sub, [*path, name])

    walk(CLI, [])
    return rows


def test_the_command_table_is_the_clis_own_help() -> None:
    assert cli_table() == cli_rows()
