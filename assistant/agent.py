"""The agent: a question -> retrieval and tool calls -> an answer that cites only papers retrieved this turn.

Every turn retrieves before the model speaks (so models without tool calling are still grounded), then a
tool-calling loop may search more, read papers or look for similar ones, bounded by `agent_max_steps`.
Citation markers are checked against this turn's evidence; unknown ones are removed and counted.
Without a model (the offline provider) the answer is extractive: the best-matching sentences, cited.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field

from .citations import CitedText, Evidence, Ledger, Usage, check_citations, references
from .config import Settings
from .index import SENTENCE_BREAK, Store, count_tokens
from .llm import cost_usd, message_usage, prompt, quote_data
from .retrieve import Filters, Hit, Retriever, term_coverage

if TYPE_CHECKING:
    from .clusters import ClusterMap, ClusterSummary

log = logging.getLogger("litassist.agent")

OFFLINE_SENTENCES = 4
OFFLINE_PER_PAPER = 2
# "What are the main themes in my library?": offline, such a question is answered from the clusters.
_THEME_WORDS = re.compile(r"\b(themes?|topics?|clusters?|research areas?|landscape|groups? of (?:papers|work))\b", re.I)
_LIBRARY_WORDS = re.compile(r"\b(library|collection|corpus|my papers|these papers|all papers|main|major|overall)\b", re.I)


class Topics(Protocol):
    """Where the cluster tools get clusters and summaries from (the Assistant)."""

    def current_clusters(self) -> ClusterMap: ...

    def cluster_summary(self, cluster_id: str) -> ClusterSummary: ...


def is_overview_question(question: str) -> bool:
    return bool(_THEME_WORDS.search(question) and _LIBRARY_WORDS.search(question))


class Step(BaseModel):
    tool: str
    args: dict[str, Any]
    summary: str


class Answer(CitedText):
    """What `ask` returns: the cited text and everything needed to check it."""

    question: str
    standalone_question: str
    evidence: list[Evidence] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    abstained: bool = False

    def history_entries(self) -> list[dict[str, Any]]:
        """This turn as `history` entries for the next question: the question, then the answer with the numbers
        it gave its papers (so a paper keeps its number for the rest of the conversation)."""
        cited = [{"number": c.number, "paper_id": c.paper_id} for c in self.citations]
        return [{"role": "user", "content": self.question},
                {"role": "assistant", "content": self.text, "citations": cited}]


class Turn(BaseModel):
    """What bounds one question's retrieval: the filters every search obeys and papers per search."""

    filters: Filters = Field(default_factory=Filters)
    k: int


class Event(BaseModel):
    """What `stream` yields: a tool step, a token of the answer, or the final Answer."""

    kind: Literal["step", "token", "final"]
    text: str = ""
    step: Step | None = None
    answer: Answer | None = None


# --- tools ---------------------------------------------------------------------------------------------


def make_tools(
    retriever: Retriever,
    store: Store,
    ledger: Ledger,
    settings: Settings,
    steps: list[Step],
    turn: Turn,
    topics: Topics | None = None,
) -> list[Any]:
    """The agent's tools: small typed functions over the library, each adding what it finds to the ledger.
    Searches stay inside the turn's filters (the user's year range, source, or a cluster's papers)."""
    from langchain_core.tools import StructuredTool

    budget = max(300, (settings.llm_context_window - settings.llm_answer_tokens) // 3)

    def search_papers(
        query: str, year_min: int | None = None, year_max: int | None = None, author: str | None = None
    ) -> str:
        """Search the user's paper library (hybrid keyword + semantic). Returns numbered evidence to cite."""
        asked = Filters(year_min=year_min, year_max=year_max, author=author).model_dump(exclude_none=True)
        filters = turn.filters.model_copy(update=asked)
        hits = retriever.search(query, k=turn.k, filters=filters)
        evidence = [ledger.add(h.paper, h.text, h.similarity) for h in hits]
        steps.append(Step(tool="search_papers", args={"query": query, **asked},
                          summary=f"{len(hits)} papers"))
        return ledger.render(evidence, budget)

    def read_paper(paper_id: str) -> str:
        """Read one paper's full record and abstract, by its paper_id from earlier evidence."""
        paper = store.get_papers([paper_id]).get(paper_id)
        steps.append(Step(tool="read_paper", args={"paper_id": paper_id}, summary=paper.title if paper else "not found"))
        if paper is None:
            return f"No paper with id {paper_id!r} is in the library."
        return ledger.render([ledger.add(paper, paper.abstract)], budget, full=True)

    def similar_papers(paper_id: str) -> str:
        """Papers in the library most similar to the given one (by their paper-level embeddings)."""
        found = store.similar_papers(paper_id, settings.evidence_k)
        steps.append(Step(tool="similar_papers", args={"paper_id": paper_id}, summary=f"{len(found)} papers"))
        if not found:
            return f"No paper with id {paper_id!r} is in the library."
        return ledger.render([ledger.add(p, p.abstract[:600], score) for p, score in found], budget)

    def list_clusters() -> str:
        """The topic clusters of the whole library: id, label, size, keywords and representative papers to cite."""
        text, clusters = cluster_overview(topics, store, ledger)
        steps.append(Step(tool="list_clusters", args={}, summary=f"{clusters} clusters"))
        return text

    def cluster_summary(cluster_id: str) -> str:
        """A cited summary of one topic cluster (ids from list_clusters, like "c3"), with its papers as evidence."""
        try:
            summary = topics.cluster_summary(cluster_id)
        except KeyError as error:
            steps.append(Step(tool="cluster_summary", args={"cluster_id": cluster_id}, summary="not found"))
            return str(error.args[0])
        renumbered = {c.number: ledger.add(c.paper, c.paper.abstract).number for c in summary.citations}
        text = re.sub(r"\[(\d+)\]", lambda m: f"[{renumbered.get(int(m.group(1)), m.group(1))}]", summary.text)
        steps.append(Step(tool="cluster_summary", args={"cluster_id": cluster_id}, summary=summary.title))
        cited = [ledger.items[c.paper_id] for c in summary.citations]
        return f"Cluster {cluster_id}: {summary.title}\n{text}\n\n{ledger.render(cited, budget)}"

    functions = [search_papers, read_paper, similar_papers] + ([list_clusters, cluster_summary] if topics else [])
    return [StructuredTool.from_function(f) for f in functions]


def cluster_overview(topics: Topics, store: Store, ledger: Ledger, per_cluster: int = 2) -> tuple[str, int]:
    """One line per cluster (label, size, keywords) citing its representative papers, added to the ledger."""
    cluster_map = topics.current_clusters()
    representatives = store.get_papers([p for c in cluster_map.topics for p in c.representative_ids[:per_cluster]])
    lines = []
    for cluster in cluster_map.topics:
        cites = "".join(
            f"[{ledger.add(representatives[p], representatives[p].abstract).number}]"
            for p in cluster.representative_ids[:per_cluster] if p in representatives
        )
        examples = "; ".join(representatives[p].title for p in cluster.representative_ids[:per_cluster] if p in representatives)
        lines.append(f"- **{cluster.label}** ({cluster.cluster_id}, {len(cluster.paper_ids)} papers; keywords: "
                     f"{', '.join(cluster.keywords[:5])}) — e.g. {quote_data(examples)} {cites}")
    unclustered = len(cluster_map.points) - sum(len(c.paper_ids) for c in cluster_map.topics)
    text = prompt("library_overview").format(
        papers=len(cluster_map.points), clusters=len(cluster_map.topics), unclustered=unclustered,
        lines="\n".join(lines),
    )
    return text, len(cluster_map.topics)


# --- the turn -------------------------------------------------------------------------------------------


def history_text(history: Sequence[dict[str, Any]]) -> str:
    return "\n".join(f"{turn['role']}: {turn['content']}" for turn in history[-6:])


class Agent:
    """One configured agent over one library; `run` yields events for one question."""

    def __init__(
        self,
        retriever: Retriever,
        store: Store,
        settings: Settings,
        model: Any,
        provider: str,
        model_name: str | None,
        topics: Topics | None = None,
    ):
        self.topics = topics
        self.retriever = retriever
        self.store = store
        self.settings = settings
        self.model = model
        self.provider = provider
        self.model_name = model_name

    def standalone(self, question: str, history: Sequence[dict[str, Any]]) -> tuple[str, tuple[int, int]]:
        """Rewrite a follow-up into a standalone query (the model does it; offline: prepend the last question)."""
        if not history:
            return question, (0, 0)
        if self.model is None:
            last_user = next((t["content"] for t in reversed(history) if t["role"] == "user"), "")
            return f"{last_user} {question}".strip(), (0, 0)
        reply = self.model.invoke(prompt("condense_question").format(history=history_text(history), question=question))
        rewritten = str(reply.content).strip().strip('"') or question
        return rewritten, message_usage(reply)

    def run(
        self,
        question: str,
        history: Sequence[dict[str, Any]] = (),
        filters: Filters | None = None,
        k: int | None = None,
    ) -> Iterator[Event]:
        """One question: `filters` bound every search of the turn, `k` papers per search (default evidence_k)."""
        started = time.perf_counter()
        turn = Turn(filters=filters or Filters(), k=k or self.settings.evidence_k)
        standalone, usage = self.standalone(question, history)
        ledger, steps = Ledger(), []
        hits = self.retriever.search(standalone, k=turn.k, filters=turn.filters)
        first = [ledger.add(h.paper, h.text, h.similarity) for h in hits]
        shown = turn.filters.model_dump(exclude_none=True, exclude={"paper_ids"})
        if turn.filters.paper_ids is not None:
            shown["papers"] = len(turn.filters.paper_ids)
        steps.append(Step(tool="search_papers", args={"query": standalone, **shown}, summary=f"{len(hits)} papers"))
        yield Event(kind="step", step=steps[-1])
        answer = Answer(question=question, standalone_question=standalone, text="", provider=self.provider,
                        model=self.model_name)
        best = max((h.similarity or 0.0 for h in hits), default=0.0)
        coverage = max((term_coverage(standalone, f"{h.paper.title} {h.paper.abstract}") for h in hits), default=0.0)
        if self.model is None and self.topics and is_overview_question(standalone):
            answer.extractive = True
            ledger = Ledger()  # the overview draws on the clusters' papers, not the search: cite those from [1]
            answer.text, clusters = cluster_overview(self.topics, self.store, ledger)
            steps.append(Step(tool="list_clusters", args={}, summary=f"{clusters} clusters"))
            yield Event(kind="step", step=steps[-1])
        elif best < self.settings.abstain_below and coverage < self.settings.abstain_term_coverage:
            answer.text = prompt("abstain").format(best=f"{best:.2f} cosine similarity" if hits else "none")
            answer.abstained = True
        elif self.model is None:
            answer.extractive = True
            answer.text = self._extractive(standalone, hits, ledger)
        else:
            answer.text, tokens = yield from self._converse(question, history, ledger, first, steps, turn)
            usage = (usage[0] + tokens[0], usage[1] + tokens[1])
        if not answer.abstained:
            text, cited, answer.removed_citations = check_citations(answer.text, ledger)
            answer.references, answer.citations = references(cited, ledger)
            if not cited and not answer.extractive and ledger.items:  # say so rather than look grounded
                text += "\n\n" + prompt("uncited").format(papers=len(ledger.items))
            answer.text = text + answer.references
        answer.evidence = list(ledger.items.values())
        answer.steps = steps  # tools append to this list during the loop
        answer.usage = Usage(prompt_tokens=usage[0], completion_tokens=usage[1],
                             cost_usd=cost_usd(self.model_name, *usage), seconds=round(time.perf_counter() - started, 2))
        if answer.removed_citations:
            log.info("removed %d citation markers that did not match this turn's evidence", answer.removed_citations)
        if self.model is None or answer.abstained:
            yield Event(kind="token", text=answer.text)
        yield Event(kind="final", answer=answer)

    def _converse(
        self,
        question: str,
        history: Sequence[dict[str, Any]],
        ledger: Ledger,
        first: list[Evidence],
        steps: list[Step],
        turn: Turn,
    ) -> Iterator[Event]:
        """The tool-calling loop; falls back to one grounded call for models that cannot call tools.

        Returns (answer text, (prompt tokens, completion tokens)) as the generator's value.
        """
        import openai
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

        budget = self.settings.llm_context_window - self.settings.llm_answer_tokens
        cluster_tools = prompt("cluster_tools") if self.topics else ""
        system = prompt("system").format(cluster_tools=cluster_tools)
        past = [HumanMessage(t["content"]) if t["role"] == "user" else AIMessage(t["content"]) for t in history[-6:]]
        fixed = count_tokens(system) + sum(count_tokens(str(m.content)) for m in past) + count_tokens(question) + 64
        evidence = ledger.render(first, max(200, budget - fixed))
        messages = [SystemMessage(system), *past, HumanMessage(prompt("answer").format(question=question, evidence=evidence))]
        tools = make_tools(self.retriever, self.store, ledger, self.settings, steps, turn, self.topics)
        by_name = {t.name: t for t in tools}
        usage = [0, 0]
        model = self._with_tools(tools)
        for round_number in range(self.settings.agent_max_steps):
            last_round = round_number == self.settings.agent_max_steps - 1
            if last_round:
                messages.append(HumanMessage(prompt("final_answer")))
            try:
                reply = yield from self._stream(self.model if last_round or model is None else model, messages, usage)
            except openai.BadRequestError:
                if model is None:
                    raise
                log.info("the model server refused tool definitions; answering from the retrieved evidence")
                model = None
                reply = yield from self._stream(self.model, messages, usage)
            if not reply.tool_calls or last_round or model is None:
                break
            messages.append(reply)
            for call in reply.tool_calls:
                tool = by_name.get(call["name"])
                before = len(steps)
                result = tool.invoke(call["args"]) if tool else f"Unknown tool {call['name']!r}."
                messages.append(ToolMessage(content=result, tool_call_id=call["id"]))
                for step in steps[before:]:
                    yield Event(kind="step", step=step)
        return str(reply.content), (usage[0], usage[1])

    def _with_tools(self, tools: list[Any]) -> Any:
        if not self.settings.llm_tool_calling:
            return None
        try:
            return self.model.bind_tools(tools)
        except NotImplementedError:
            return None

    def _stream(self, model: Any, messages: list[Any], usage: list[int]) -> Iterator[Event]:
        """Stream one model call, yielding answer tokens; returns the whole message."""
        reply = None
        for chunk in model.stream(messages):
            reply = chunk if reply is None else reply + chunk
            if isinstance(chunk.content, str) and chunk.content:
                yield Event(kind="token", text=chunk.content)
        prompt_tokens, completion_tokens = message_usage(reply)
        if not prompt_tokens:  # servers that do not report usage: count it ourselves
            prompt_tokens = sum(count_tokens(str(m.content)) for m in messages)
            completion_tokens = count_tokens(str(reply.content))
        usage[0] += prompt_tokens
        usage[1] += completion_tokens
        return reply

    def _extractive(self, question: str, hits: Sequence[Hit], ledger: Ledger) -> str:
        """The offline answer: the sentences of the retrieved abstracts closest to the question, cited."""
        candidates = [(h.paper.paper_id, s) for h in hits for s in SENTENCE_BREAK.split(h.paper.abstract) if len(s.split()) >= 6]
        if not candidates:
            return prompt("abstain").format(best="no sentences")
        vectors = self.retriever.embedder.embed_documents([question] + [s for _, s in candidates])
        scores = vectors[1:] @ vectors[0]
        chosen: list[tuple[str, str]] = []
        per_paper: dict[str, int] = {}
        for i in np.argsort(-scores):
            pid, sentence = candidates[int(i)]
            if per_paper.get(pid, 0) >= OFFLINE_PER_PAPER:
                continue
            chosen.append((pid, sentence))
            per_paper[pid] = per_paper.get(pid, 0) + 1
            if len(chosen) == OFFLINE_SENTENCES:
                break
        lines = [f"- {sentence.strip()} [{ledger.items[pid].number}]" for pid, sentence in chosen]
        return prompt("offline_answer").format(sentences="\n".join(lines))


def collect(events: Iterator[Event], on_event: Callable[[Event], None] | None = None) -> Answer:
    """Drain a stream of events into its final Answer."""
    for event in events:
        if on_event:
            on_event(event)
        if event.kind == "final":
            return event.answer
    raise RuntimeError("the agent stopped without an answer")
