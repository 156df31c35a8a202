"""Marker checking without renumbering: what the grammar tests compare (test-only, so not in the package)."""

from __future__ import annotations

from assistant.citations import Ledger, find_markers, render_markers


def check_citations(text: str, ledger: Ledger) -> tuple[str, list[int], int]:
    """Keep markers that name this turn's evidence (by number or paper id); drop and count the rest.

    Returns the text with every citation written `[n]` in the ledger's numbers, the numbers cited (in order of
    first appearance) and how many markers were removed: `cite` without its numbering by first appearance."""
    markers = find_markers(text, ledger)
    cited = list(dict.fromkeys(n for m in markers for n in m.numbers))
    rendered, _, _ = render_markers(text, markers, {n: n for n in cited})
    return rendered.strip(), cited, sum(m.invalid for m in markers)
