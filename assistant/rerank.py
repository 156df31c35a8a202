"""Re-ranking search results with the chat model (LITASSIST_RERANK=llm)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from .llm import model_errors
from .prompting import prompt, quote_data

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from .retrieve import Hit

log = logging.getLogger("litassist.llm")


def rerank(model: BaseChatModel, query: str, hits: list[Hit]) -> list[Hit]:
    """The hits in the order the chat model judges most relevant to the query (one listwise call).

    Passages are quoted as data. Numbers the reply repeats or invents are ignored and any it leaves out keep
    their fused order after the ones it named; a failed call keeps the fused order (search must not break
    because the model is down), with a warning.
    """
    if len(hits) < 2:
        return hits
    passages = "\n".join(f'<passage n="{n}">\n{quote_data(hit.title)}\n{quote_data(hit.text)}\n</passage>'
                         for n, hit in enumerate(hits, 1))
    try:
        reply = model.invoke(prompt("rerank").format(query=quote_data(query), passages=passages, count=len(hits)))
    except model_errors() as error:
        log.warning("re-ranking skipped, the model failed: %s", type(error).__name__)
        return hits
    order: list[int] = []
    for number in map(int, re.findall(r"\d+", str(reply.content))):
        if 1 <= number <= len(hits) and number - 1 not in order:
            order.append(number - 1)
    if not order:
        log.warning("re-ranking skipped: the model's reply named no passage")
        return hits
    return [hits[i] for i in order] + [hit for i, hit in enumerate(hits) if i not in order]
