"""One safe Markdown renderer for the app's answers and the report's summaries (issue 22: there were two; the
report's hand-rolled one turned `**` pairs into <strong> with a lazy regex, quadratic on unclosed `**`)."""

from __future__ import annotations

import pytest
from linear import assert_linear

from assistant import markdown_html


@pytest.mark.unit
def test_text_structure_is_rendered_and_nothing_that_fetches_survives() -> None:
    rendered = markdown_html("**Keywords:** graphs [1]\n\n- one [2]\n- two ![t](http://h.example/x.png) "
                             "<img src=http://h.example/y.png> [x](javascript:alert(1)) <http://h.example/z>")
    assert "<strong>Keywords:</strong> graphs [1]" in rendered and rendered.count("<li>") == 2
    assert "<img" not in rendered and "<a " not in rendered and "&lt;img src=http://h.example/y.png&gt;" in rendered


@pytest.mark.unit
def test_the_report_renders_summaries_with_it() -> None:
    from assistant import report

    assert report.markdown_html is markdown_html  # the report's HTML sections use the app's renderer


@pytest.mark.slow
def test_unclosed_emphasis_renders_in_linear_time() -> None:
    assert_linear(lambda n: "**a " * n, markdown_html)
