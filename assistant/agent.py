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
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, Field

from .citations import CitedText, Evidence, Ledger, Usage, cite, reference_list, support_claims
from .config import Settings
from .extractive import SELECTION, Selection, candidate_sentences, choose_sentences, cut, quotes
from .index import Store, count_tokens, sentence_spans
from .llm import (
    ContextLengthError,
    context_overflow,
    context_window,
    cost_usd,
    message_usage,
    prompt,
    quote_attribute,
    quote_data,
    resolve_provider,
)
from .questions import standalone_question, topic_terms, user_questions
from .retrieve import Filters, Hit, Retriever, coverage

if TYPE_CHECKING:
    from .clusters import ClusterMap, ClusterSummary

log = logging.getLogger("litassist.agent")

# "What are the main themes in my library?": offline, such a question is answered from the clusters.
_THEME_WORDS = re.compile(r"\b(themes?|topics?|clusters?|research areas?|landscape|groups? of (?:papers|work))\b", re.IGNORECASE)
_LIBRARY_WORDS = re.compile(r"\b(library|collection|corpus|my papers|these papers|all papers|main|major|overall)\b", re.IGNORECASE)
HISTORY_TURNS = 6  # messages of the conversation the model sees
MAX_REWRITE_WORDS = 40  # a condensed follow-up longer than this, or of several sentences, gives way to the rule's
# "Ask about this topic" offline: after the topic's summary, one sentence from each of up to six papers, each
# within a wide margin of the best (a topic question asks for breadth; the summary quotes only the central papers).
TOPIC_RULE = Selection(max_sentences=6, max_per_paper=1, margin=0.8, papers=10)
TOKENIZER_MARGIN = 0.9  # tokens are counted with cl100k; other models' tokenizers run up to ~1.12x on abstracts


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


def conversation_numbers(history: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Paper id -> the number it was cited with earlier in the conversation (the first one given wins)."""
    numbers: dict[str, int] = {}
    for turn in history:
        for entry in turn.get("citations") or ():
            paper_id, number = str(entry.get("paper_id", "")), entry.get("number")
            if paper_id and isinstance(number, int) and paper_id not in numbers and number not in numbers.values():
                numbers[paper_id] = number
    return numbers


class Turn(BaseModel):
    """What bounds one question's retrieval: the filters every search obeys and papers per search."""

    filters: Filters = Field(default_factory=Filters)
    k: int

    def scope_note(self) -> str:
        return f"(searched within this question's scope: {self.filters.describe()})\n" if self.filters.active() else ""


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
    budget: int = 1000,
) -> list[Any]:
    """The agent's tools: small typed functions over the library, each adding what it finds to the ledger.

    The turn's filters (the user's years, author, source, or a cluster's papers) are a hard bound: a search
    narrows them and never widens them, and a paper outside them is neither read nor offered as similar.
    `budget` caps each tool result in tokens."""
    from langchain_core.tools import StructuredTool

    scope = turn.filters

    def search_papers(
        query: str, year_min: int | None = None, year_max: int | None = None, author: str | None = None
    ) -> str:
        """Search the user's paper library (hybrid keyword + semantic). Returns numbered evidence to cite."""
        asked = Filters(year_min=year_min, year_max=year_max, author=author)
        hits = retriever.search(query, k=turn.k, filters=scope.narrowed(asked))
        found = [ledger.add(h.paper, h.text, h.similarity, h.location) for h in hits if asked.admits(h.paper)]
        evidence = [e for e in found if e is not None]
        steps.append(Step(tool="search_papers", args={"query": query, **asked.model_dump(exclude_none=True)},
                          summary=f"{len(evidence)} papers"))
        return turn.scope_note() + ledger.render(evidence, budget)

    def paper_in_scope(tool: str, paper_id: str) -> tuple[Evidence | None, str]:
        """The paper a tool was asked about, added to the ledger; or why it cannot be used."""
        known = ledger.resolve(paper_id)
        paper = known.paper if known else store.get_papers([paper_id]).get(paper_id)
        if paper is None:
            steps.append(Step(tool=tool, args={"paper_id": paper_id}, summary="not found"))
            return None, f"No paper with id {quote_data(paper_id)!r} is in the library."
        evidence = ledger.add(paper, paper.abstract)
        if evidence is None:
            steps.append(Step(tool=tool, args={"paper_id": paper.paper_id}, summary="outside the scope"))
            return None, (f"Paper {quote_data(paper.paper_id)!r} is outside this question's scope "
                          f"({scope.describe()}): it cannot be used or cited in this answer.")
        return evidence, ""

    def read_paper(paper_id: str) -> str:
        """Read one paper's full record and abstract, by its paper_id (or evidence number) from earlier evidence."""
        evidence, refusal = paper_in_scope("read_paper", paper_id)
        if evidence is None:
            return refusal
        steps.append(Step(tool="read_paper", args={"paper_id": evidence.paper.paper_id}, summary=evidence.paper.title))
        return ledger.render([evidence], budget, full=True)

    def similar_papers(paper_id: str) -> str:
        """Papers in the library most similar to the given one (by their paper-level embeddings)."""
        source, refusal = paper_in_scope("similar_papers", paper_id)
        if source is None:
            return refusal
        wanted = settings.evidence_k
        pool = wanted if not scope.active() else max(wanted * 10, 100)  # room to find enough inside the scope
        found = [ledger.add(p, p.abstract[:600], score) for p, score in store.similar_papers(source.paper.paper_id, pool)]
        evidence = [e for e in found if e is not None][:wanted]
        steps.append(Step(tool="similar_papers", args={"paper_id": source.paper.paper_id},
                          summary=f"{len(evidence)} papers"))
        return turn.scope_note() + ledger.render(evidence, budget)

    def list_clusters() -> str:
        """The topic clusters of the whole library: id, label, size, keywords and representative papers to cite."""
        text, clusters = cluster_overview(topics, store, ledger)
        steps.append(Step(tool="list_clusters", args={}, summary=f"{clusters} clusters"))
        return turn.scope_note() + text

    def cluster_summary(cluster_id: str) -> str:
        """A cited summary of one topic cluster (ids from list_clusters, like "c3"), with its papers as evidence."""
        try:
            summary = topics.cluster_summary(cluster_id)
        except KeyError as error:
            steps.append(Step(tool="cluster_summary", args={"cluster_id": cluster_id}, summary="not found"))
            return quote_data(str(error.args[0]))
        text, cited = summary_in_ledger(summary, ledger)
        steps.append(Step(tool="cluster_summary", args={"cluster_id": cluster_id}, summary=summary.title))
        return (f"{turn.scope_note()}Cluster {quote_data(cluster_id)}: {quote_data(summary.title)}\n"
                f"{quote_data(text)}\n\n{ledger.render(cited, budget)}")

    functions = [search_papers, read_paper, similar_papers] + ([list_clusters, cluster_summary] if topics else [])
    return [StructuredTool.from_function(f) for f in functions]


def summary_in_ledger(summary: ClusterSummary, ledger: Ledger) -> tuple[str, list[Evidence]]:
    """A topic's summary with its [n] renumbered to the ledger's numbers (its papers added to the ledger; a
    citation of a paper outside the ledger's scope is dropped), and the evidence it cites."""
    added = {c.number: ledger.add(c.paper, c.paper.abstract) for c in summary.citations}
    renumbered = {number: f"[{e.number}]" for number, e in added.items() if e is not None}
    text = re.sub(r"\[(\d+)\]", lambda m: renumbered.get(int(m.group(1)), ""), summary.body)
    return text, [e for e in added.values() if e is not None]


def cluster_overview(topics: Topics, store: Store, ledger: Ledger, per_cluster: int = 2) -> tuple[str, int]:
    """One line per cluster (label, size, keywords) citing its representative papers, added to the ledger
    (those outside the ledger's scope are not cited)."""
    cluster_map = topics.current_clusters()
    representatives = store.get_papers([p for c in cluster_map.topics for p in c.representative_ids[:per_cluster]])
    lines = []
    for cluster in cluster_map.topics:
        shown = [representatives[p] for p in cluster.representative_ids[:per_cluster] if p in representatives]
        cited = [(paper, ledger.add(paper, paper.abstract)) for paper in shown]
        cites = "".join(f"[{e.number}]" for _, e in cited if e is not None)
        examples = "; ".join(paper.title for paper, e in cited if e is not None)
        lines.append(f"- **{cluster.label}** ({cluster.cluster_id}, {len(cluster.paper_ids)} papers; keywords: "
                     f"{', '.join(cluster.keywords[:5])})" + (f" — e.g. {quote_data(examples)} {cites}" if cites else ""))
    unclustered = cluster_map.paper_count - sum(len(c.paper_ids) for c in cluster_map.topics)
    text = prompt("library_overview").format(
        papers=cluster_map.paper_count, clusters=len(cluster_map.topics), unclustered=unclustered,
        lines="\n".join(lines),
    )
    return text, len(cluster_map.topics)


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
        margin = 1.0 if resolve_provider(self.settings) == "openai" else TOKENIZER_MARGIN
        return max(256, int((self.context_window - self.settings.llm_answer_tokens) * margin))

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
            summary = self._topic_summary(turn.filters)
            if summary is not None:
                steps.append(Step(tool="cluster_summary", args={"cluster_id": summary.cluster_id}, summary=summary.title))
                yield Event(kind="step", step=steps[-1])
            answer.text, protected = self._extractive(standalone, hits, ledger, summary)
            answer.abstained = not protected and summary is None
        else:
            answer.text, tokens = yield from self._converse(question, history, ledger, first, steps, turn, started)
            usage = (usage[0] + tokens[0], usage[1] + tokens[1])
        if not answer.abstained:
            self._check(answer, ledger, protected)
        answer.evidence = sorted(ledger.items.values(), key=lambda e: e.number)
        answer.steps = steps  # tools append to this list during the loop
        answer.usage = Usage(prompt_tokens=usage[0], completion_tokens=usage[1],
                             cost_usd=cost_usd(self.model_name, *usage), seconds=round(time.perf_counter() - started, 2))
        if answer.removed_citations:
            log.info("removed %d citation markers that did not match this turn's evidence", answer.removed_citations)
        if self.model is None or answer.abstained:
            yield Event(kind="token", text=answer.text)
        yield Event(kind="final", answer=answer)

    def _check(self, answer: Answer, ledger: Ledger, protected: Sequence[tuple[int, int]]) -> None:
        """Check and number the citations, find what each cited sentence rests on, add the reference list."""
        cited = cite(answer.text.strip(), ledger, protected)
        body = cited.text
        if not cited.citations and not answer.extractive and ledger.items:  # say so rather than look grounded
            body += "\n\n" + prompt("uncited").format(papers=len(ledger.items))
        answer.claims = support_claims(cited, self.retriever.embedder, self.settings.weak_support_below)
        answer.citations = cited.citations
        answer.removed_citations = cited.removed
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
    ) -> Iterator[Event]:
        """The tool-calling loop; falls back to one grounded call for models that cannot call tools.

        Bounded by `agent_max_steps` rounds and `agent_time_limit` seconds (then the final-answer round). Before
        each call the messages are fitted to the served model's context window (older tool results trimmed
        first, then older turns of the conversation); a server that still says the prompt is too long gets one
        retry at the window it names, else a ContextLengthError. Returns (answer text, (prompt tokens,
        completion tokens)) as the generator's value.
        """
        import openai
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
        from langchain_core.utils.function_calling import convert_to_openai_tool

        cluster_tools = prompt("cluster_tools") if self.topics else ""
        system = prompt("system").format(cluster_tools=cluster_tools)
        past = [HumanMessage(quote_data(str(t["content"]))) if t["role"] == "user" else AIMessage(quote_data(str(t["content"])))
                for t in history[-HISTORY_TURNS:]]
        tools = make_tools(self.retriever, self.store, ledger, self.settings, steps, turn, self.topics,
                           budget=max(300, self.prompt_budget() // 4))
        by_name = {t.name: t for t in tools}
        model = self._with_tools(tools)
        schema_tokens = count_tokens(json.dumps([convert_to_openai_tool(t) for t in tools])) if model else 0

        def evidence_message() -> Any:
            fixed = count_tokens(system) + sum(count_tokens(str(m.content)) for m in past) + count_tokens(question)
            room = max(200, self.prompt_budget() - schema_tokens - fixed - 64)
            return HumanMessage(prompt("answer").format(question=quote_data(question), evidence=ledger.render(first, room)))

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
            except openai.BadRequestError as error:
                overflow, window = context_overflow(error)
                if overflow:
                    if retried or not window or window >= self.context_window:
                        raise ContextLengthError(
                            f"the prompt is longer than the model's context window ({window or self.context_window} "
                            "tokens) even after trimming: lower LITASSIST_LLM_CONTEXT_WINDOW or LITASSIST_EVIDENCE_K"
                        ) from error
                    log.info("the model server says its context window is %d tokens; fitting the prompt to it", window)
                    self._window, retried = window, True
                    messages[1 + len(past)] = evidence_message()
                    continue
                if model is None:
                    raise
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

    def _topic_summary(self, filters: Filters) -> ClusterSummary | None:
        """The cited summary of the topic a turn is scoped to ("Ask about this topic": its filters hold exactly
        one cluster's papers), else None."""
        if self.topics is None or filters.paper_ids is None:
            return None
        wanted = set(filters.paper_ids)
        cluster = next((c for c in self.topics.current_clusters().topics if set(c.paper_ids) == wanted), None)
        return self.topics.cluster_summary(cluster.cluster_id) if cluster else None

    def _extractive(self, question: str, hits: Sequence[Hit], ledger: Ledger,
                    summary: ClusterSummary | None = None) -> tuple[str, list[tuple[int, int]]]:
        """The offline answer: the sentences of the best papers that address the question, quoted and cited. A
        question about a topic builds on the topic's summary: the summary first, then one sentence from each of
        up to TOPIC_RULE.max_sentences papers that answers the question, none that the summary already quotes.

        Returns the text and where the quotes are (brackets inside them are the paper's text, not citations)."""
        rule = SELECTION if summary is None else TOPIC_RULE
        lead = f"{summary_in_ledger(summary, ledger)[0].strip()}\n\n" if summary is not None else ""
        chosen = choose_sentences(candidate_sentences(question, hits, self.retriever.embedder, rule.papers), rule)
        chosen = [c for c in chosen if " ".join(c.source[c.start:c.end].split()) not in " ".join(lead.split())]
        if not chosen:
            return (lead.strip(), []) if lead else (prompt("abstain").format(best=_nothing_to_quote(hits[:rule.papers])), [])
        header = lead + prompt("offline_answer").format(sentences="\x00")
        lines, protected = [], []
        offset = header.index("\x00")
        for candidate, start, end in quotes(chosen):
            evidence = ledger.items.get(candidate.hit.paper_id)
            if evidence is None:
                continue
            sentence = cut(candidate.source[start:end])
            protected.append((offset + 2, offset + 2 + len(sentence)))
            line = f"- {sentence} [{evidence.number}]"
            lines.append(line)
            offset += len(line) + 1
        return header.replace("\x00", "\n".join(lines)), protected


def _nothing_to_quote(hits: Sequence[Hit]) -> str:
    """Why the extractive answer quotes nothing. Papers found by their title alone (stored without an abstract)
    are named, never quoted: a title is not a finding, but the reader learns where to look."""
    bare = [h.paper.title for h in hits if not h.paper.has_abstract]
    if not bare:
        return "no sentence of the papers found addresses the question"
    named = "; ".join(f"“{title if len(title) <= 80 else title[:79] + '…'}”" for title in bare[:3])
    return (f"the closest papers have no abstract stored, so nothing of them can be quoted ({named}); "
            "`litassist enrich` fetches missing abstracts")


def too_weak(question: str, hits: Sequence[Hit], settings: Settings) -> bool:
    """Whether the search found too little to answer from: no passage reaches `abstain_below` cosine and no paper
    holds `abstain_term_coverage` of the question's topic words (then the answer abstains, calling no model).
    Topic words, so "how is CMFQ evaluated?" is covered by a paper on CMFQ whether or not it says "evaluated"."""
    best = max((h.similarity or 0.0 for h in hits), default=0.0)
    topic = topic_terms(question)
    covered = max((coverage(topic, f"{h.paper.title} {h.paper.abstract} {h.text if h.location else ''}") for h in hits),
                  default=0.0)
    return best < settings.abstain_below and covered < settings.abstain_term_coverage


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
        return f"The tool {call['name']} failed: {type(error).__name__}: {detail}. Fix the arguments, or answer from the evidence you have."


def fit_messages(messages: list[Any], budget: int, history: int) -> int:
    """Fit the messages into `budget` tokens: older tool results are trimmed first (the evidence numbers they
    gave stay citable), then the oldest of the `history` conversation messages after the system prompt are
    dropped. The system prompt, the question with its evidence and the latest round's tool results stay.
    Returns how many conversation messages were dropped."""
    from langchain_core.messages import ToolMessage

    def size() -> int:
        return sum(count_tokens(str(m.content)) + 4 + count_tokens(json.dumps(getattr(m, "tool_calls", None) or []))
                   for m in messages)

    tool_results = [m for m in messages if isinstance(m, ToolMessage)]
    latest = 0
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        latest += 1
    for message in tool_results[: len(tool_results) - latest]:
        if size() <= budget:
            break
        if str(message.content).startswith("(trimmed"):
            continue
        numbers = re.findall(r'<evidence n="(\d+)"', str(message.content))
        cited = f"; evidence {', '.join(f'[{n}]' for n in numbers)} from it can still be cited" if numbers else ""
        message.content = f"(trimmed to fit the context window{cited})"
    dropped = 0
    while size() > budget and dropped < history:
        del messages[1]
        dropped += 1
    return dropped


def collect(events: Iterator[Event], on_event: Callable[[Event], None] | None = None) -> Answer:
    """Drain a stream of events into its final Answer."""
    for event in events:
        if on_event:
            on_event(event)
        if event.kind == "final":
            return event.answer
    raise RuntimeError("the agent stopped without an answer")


