"""The agent: a question -> retrieval and tool calls -> an answer that cites only papers retrieved this turn.

Every turn retrieves before the model speaks (so models without tool calling are still grounded), then a
tool-calling loop may search more, read papers or look for similar ones, bounded by `agent_max_steps` rounds
and `agent_time_limit` seconds. Nothing outside the turn's scope (its filters) can enter the evidence, and
citation markers are checked against this turn's evidence; unknown ones are removed and counted. Citations are
numbered by first appearance (papers cited earlier in the conversation keep their number) and every cited
sentence carries the span of the source it rests on. Without a model (the offline provider) the answer is
extractive: the sentences of the best papers that address the question, quoted and cited.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from .citations import CitedText, Evidence, Ledger, Usage, cite, reference_list, support_claims
from .config import Settings
from .fitting import fit_messages, prompt_budget
from .index import Store, count_tokens, sentence_spans
from .llm import (
    ContextLengthError,
    ProviderError,
    RequestRefusedError,
    classify_error,
    context_window,
    cost_usd,
    message_usage,
    tokenizer_margin,
)
from .offline_answer import extractive_answer, is_overview_question, topic_summary
from .prompting import prompt, quote_data
from .questions import standalone_question, topic_terms, user_questions
from .retrieve import Filters, Hit, Retriever
from .text import coverage
from .tools import Step, ToolContext, Topics, Turn, make_tools, run_tool, tool_list
from .tools.clusters import cluster_overview

log = logging.getLogger("litassist.agent")

HISTORY_TURNS = 6  # messages of the conversation the model sees
MAX_REWRITE_WORDS = 40  # a condensed follow-up longer than this, or of several sentences, gives way to the rule's
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


def conversation_numbers(history: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Paper id -> the number it was cited with earlier in the conversation (the first one given wins)."""
    numbers: dict[str, int] = {}
    for turn in history:
        for entry in turn.get("citations") or ():
            paper_id, number = str(entry.get("paper_id", "")), entry.get("number")
            if paper_id and isinstance(number, int) and paper_id not in numbers and number not in numbers.values():
                numbers[paper_id] = number
    return numbers


class Event(BaseModel):
    """What `stream` yields: a tool step, a token of the answer, or the final Answer."""

    kind: Literal["step", "token", "final"]
    text: str = ""
    step: Step | None = None
    answer: Answer | None = None


# --- the turn -------------------------------------------------------------------------------------------


def history_text(history: Sequence[dict[str, Any]]) -> str:
    return "\n".join(f"{turn['role']}: {quote_data(str(turn['content']))}" for turn in history[-HISTORY_TURNS:])


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
        self._window: int | None = None

    @property
    def context_window(self) -> int:
        """Tokens the served model accepts (asked once; lowered when the server says it is smaller)."""
        if self._window is None:
            self._window = context_window(self.settings)
        return self._window

    def prompt_budget(self) -> int:
        """Tokens (counted with cl100k) the messages may take: the window less the answer's reserve."""
        return prompt_budget(self.context_window, self.settings.llm_answer_tokens, tokenizer_margin(self.settings))

    def standalone(self, question: str, history: Sequence[dict[str, Any]]) -> tuple[str, tuple[int, int]]:
        """The question as a standalone search query. It is searched as asked unless it depends on the
        conversation (see assistant.questions); then the offline rule rewrites it with the referent, or the
        model does with the condense prompt."""
        rewritten, reading = standalone_question(question, history)
        if not reading.dependent or not user_questions(history) or self.model is None:
            return rewritten, (0, 0)
        reply = self.model.invoke(prompt("condense_question").format(
            history=history_text(history), question=quote_data(question)))
        lines = str(reply.content).strip().splitlines()
        condensed = lines[0].strip().strip('"') if lines else ""
        too_long = len(condensed.split()) > max(MAX_REWRITE_WORDS, 3 * len(rewritten.split()))
        if not condensed or too_long or len(sentence_spans(condensed)) > 1:
            log.info("the model's rewrite of the follow-up is not one short question; searching the rule's rewrite")
            condensed = rewritten
        return condensed, message_usage(reply)

    def run(
        self,
        question: str,
        history: Sequence[dict[str, Any]] = (),
        filters: Filters | None = None,
        k: int | None = None,
    ) -> Iterator[Event]:
        """One question: `filters` bound every search and tool of the turn, `k` papers per search (default
        evidence_k); `history` as built by `Answer.history_entries` keeps papers' numbers across turns."""
        started = time.perf_counter()
        turn = Turn(filters=filters or Filters(), k=k or self.settings.evidence_k)
        standalone, usage = self.standalone(question, history)
        steps: list[Step] = []

        def new_ledger() -> Ledger:
            return Ledger(turn.filters.admits if turn.filters.active() else None, conversation_numbers(history))

        ledger = new_ledger()
        hits = self.retriever.search(standalone, k=turn.k, filters=turn.filters)
        first = [e for e in (ledger.add(h.paper, h.text, h.similarity, h.location) for h in hits) if e is not None]
        shown = turn.filters.model_dump(exclude_none=True, exclude={"paper_ids"})
        if turn.filters.paper_ids is not None:
            shown["papers"] = len(turn.filters.paper_ids)
        steps.append(Step(tool="search_papers", args={"query": standalone, **shown}, summary=f"{len(hits)} papers"))
        yield Event(kind="step", step=steps[-1])
        answer = Answer(question=question, standalone_question=standalone, text="", provider=self.provider,
                        model=self.model_name)
        protected: list[tuple[int, int]] = []
        if self.model is None and self.topics and is_overview_question(standalone):
            answer.extractive = True
            ledger = new_ledger()  # the overview draws on the clusters' papers, not the search
            answer.text, clusters = cluster_overview(self.topics, self.store, ledger)
            steps.append(Step(tool="list_clusters", args={}, summary=f"{clusters} clusters"))
            yield Event(kind="step", step=steps[-1])
        elif too_weak(standalone, hits, self.settings):
            best = max((h.similarity or 0.0 for h in hits), default=0.0)
            answer.text = prompt("abstain").format(best=f"{best:.2f} cosine similarity" if hits else "none")
            answer.abstained = True
        elif self.model is None:
            answer.extractive = True
            summary = topic_summary(self.topics, turn.filters)
            if summary is not None:
                steps.append(
                    Step(tool="cluster_summary", args={"cluster_id": summary.cluster_id}, summary=summary.title)
                )
                yield Event(kind="step", step=steps[-1])
            answer.text, protected = extractive_answer(standalone, hits, ledger, self.retriever.embedder, summary)
            answer.abstained = not protected and summary is None
        else:
            answer.text, tokens = yield from self._converse(question, history, ledger, first, steps, turn, started)
            usage = (usage[0] + tokens[0], usage[1] + tokens[1])
        if not answer.abstained:
            self._check(answer, ledger, protected)
        answer.evidence = sorted(ledger.items.values(), key=lambda e: e.number)
        answer.steps = steps  # tools append to this list during the loop
        answer.usage = Usage(
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
            cost_usd=cost_usd(self.provider, self.model_name, *usage),
            seconds=round(time.perf_counter() - started, 2),
        )
        if answer.removed_citations:
            log.info("removed %d citation markers that did not match this turn's evidence", answer.removed_citations)
        if self.model is None or answer.abstained:
            yield Event(kind="token", text=answer.text)
        yield Event(kind="final", answer=answer)

    def _check(self, answer: Answer, ledger: Ledger, protected: Sequence[tuple[int, int]]) -> None:
        """Check and number the citations, find what each cited sentence rests on, add the reference list."""
        cited = cite(answer.text, ledger, protected)  # `protected` is of the text as written; cite strips it
        body = cited.text
        if not cited.citations and not answer.extractive and ledger.items:  # say so rather than look grounded
            body += "\n\n" + prompt("uncited").format(papers=len(ledger.items))
        answer.claims = support_claims(cited, self.retriever.embedder, self.settings.weak_support_below)
        answer.citations = cited.citations
        answer.removed_citations = cited.removed
        answer.quoted = cited.quoted
        answer.references = reference_list(cited.citations)
        answer.text = body + answer.references

    def _converse(
        self,
        question: str,
        history: Sequence[dict[str, Any]],
        ledger: Ledger,
        first: list[Evidence],
        steps: list[Step],
        turn: Turn,
        started: float,
    ) -> Generator[Event, None, tuple[str, tuple[int, int]]]:
        """The tool-calling loop; falls back to one grounded call for models that cannot call tools.

        Bounded by `agent_max_steps` rounds and `agent_time_limit` seconds (then the final-answer round). Before
        each call the messages are fitted to the served model's context window (older tool results trimmed
        first, then older turns of the conversation); a server that still says the prompt is too long gets one
        retry at the window it names, else a ContextLengthError. Returns (answer text, (prompt tokens,
        completion tokens)) as the generator's value.
        """
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
        from langchain_core.utils.function_calling import convert_to_openai_tool

        system = prompt("system").format(tools=tool_list(self.topics is not None))
        past = [
            HumanMessage(quote_data(str(t["content"])))
            if t["role"] == "user"
            else AIMessage(quote_data(str(t["content"])))
            for t in history[-HISTORY_TURNS:]
        ]
        tools = make_tools(ToolContext(ledger, turn, self.store, self.retriever, self.settings, self.topics,
                                       budget=max(300, self.prompt_budget() // 4), steps=steps))
        by_name = {t.name: t for t in tools}
        model = self._with_tools(tools)
        schema_tokens = count_tokens(json.dumps([convert_to_openai_tool(t) for t in tools])) if model else 0

        def evidence_message() -> Any:
            fixed = count_tokens(system) + sum(count_tokens(str(m.content)) for m in past) + count_tokens(question)
            room = max(200, self.prompt_budget() - schema_tokens - fixed - 64)
            return HumanMessage(
                prompt("answer").format(question=quote_data(question), evidence=ledger.render(first, room))
            )

        messages = [SystemMessage(system), *past, evidence_message()]
        usage = [0, 0]
        retried = final_asked = False
        round_number = 0
        while True:
            out_of_time = time.perf_counter() - started > self.settings.agent_time_limit
            last_round = round_number >= self.settings.agent_max_steps - 1 or out_of_time
            if last_round and not final_asked:
                if out_of_time:
                    steps.append(Step(tool="time_limit", args={"seconds": self.settings.agent_time_limit},
                                      summary="answering from the evidence so far"))
                    yield Event(kind="step", step=steps[-1])
                messages.append(HumanMessage(prompt("final_answer")))
                final_asked = True
            dropped = fit_messages(messages, self.prompt_budget() - (schema_tokens if model and not last_round else 0),
                                   len(past))
            past = past[dropped:]
            try:
                reply = yield from self._stream(self.model if last_round or model is None else model, messages, usage)
            except Exception as error:
                failure = classify_error(error, self.settings)
                if failure is None:
                    raise
                if isinstance(failure, ContextLengthError):
                    window = failure.window
                    if retried or not window or window >= self.context_window:
                        raise ContextLengthError(
                            f"the prompt is longer than the model's context window ({window or self.context_window} "
                            "tokens) even after trimming: lower LITASSIST_LLM_CONTEXT_WINDOW or LITASSIST_EVIDENCE_K",
                            window,
                        ) from error
                    log.info("the model server says its context window is %d tokens; fitting the prompt to it", window)
                    self._window, retried = window, True
                    messages[1 + len(past)] = evidence_message()
                    continue
                if not isinstance(failure, RequestRefusedError) or model is None:
                    raise failure from error
                log.info("the model server refused tool definitions; answering from the retrieved evidence")
                model = None
                continue
            round_number += 1
            if not reply.tool_calls or last_round or model is None:
                break
            messages.append(reply)
            for call in reply.tool_calls:
                before = len(steps)
                messages.append(ToolMessage(content=run_tool(by_name, call), tool_call_id=call["id"]))
                for step in steps[before:]:
                    yield Event(kind="step", step=step)
        return str(reply.content), (usage[0], usage[1])

    def _with_tools(self, tools: list[Any]) -> Any:
        if not self.settings.llm_tool_calling:
            return None
        try:
            return self.model.bind_tools(tools)
        except NotImplementedError:  # a LangChain chat model without tool calling: the grounded single call
            return None

    def _stream(self, model: Any, messages: list[Any], usage: list[int]) -> Generator[Event, None, Any]:
        """Stream one model call, yielding answer tokens; returns the whole message."""
        reply = None
        try:
            for chunk in model.stream(messages):
                reply = chunk if reply is None else reply + chunk
                if isinstance(chunk.content, str) and chunk.content:
                    yield Event(kind="token", text=chunk.content)
        except ValueError as error:  # LangChain's for a stream that ended before its first chunk
            if reply is not None:
                raise
            raise ProviderError(EMPTY_REPLY) from error
        if reply is None:
            raise ProviderError(EMPTY_REPLY)
        prompt_tokens, completion_tokens = message_usage(reply)
        if not prompt_tokens:  # servers that do not report usage: count it ourselves
            prompt_tokens = sum(count_tokens(str(m.content)) for m in messages)
            completion_tokens = count_tokens(str(reply.content))
        usage[0] += prompt_tokens
        usage[1] += completion_tokens
        return reply

EMPTY_REPLY = "the model's reply was empty (its stream ended without a message): try again"


def too_weak(question: str, hits: Sequence[Hit], settings: Settings) -> bool:
    """Whether the search found too little to answer from: no passage reaches `abstain_below` cosine and no paper
    holds `abstain_term_coverage` of the question's topic words (then the answer abstains, calling no model).
    Topic words, so "how is CMFQ evaluated?" is covered by a paper on CMFQ whether or not it says "evaluated"."""
    best = max((h.similarity or 0.0 for h in hits), default=0.0)
    topic = topic_terms(question)
    covered = max((coverage(topic, f"{h.paper.title} {h.paper.abstract} {h.text if h.location else ''}") for h in hits),
                  default=0.0)
    return best < settings.abstain_below and covered < settings.abstain_term_coverage


def collect(events: Iterator[Event], on_event: Callable[[Event], None] | None = None) -> Answer:
    """Drain a stream of events into its final Answer."""
    for event in events:
        if on_event:
            on_event(event)
        if event.kind == "final" and event.answer is not None:
            return event.answer
    raise RuntimeError("the agent stopped without an answer")


