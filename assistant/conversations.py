"""Saved conversations: one SQLite file in the library home, written a turn at a time, read by the app, the CLI
(`chat --resume`, `conversations`) and the Python API alike.

A question is saved the moment it is asked, as a pending turn (neither answer nor error, with the id of the process
that answers it), and completed in place: with the Answer (as JSON, so a reload shows it exactly, the numbers its papers
were given included, and follow-ups get `Answer.history_entries()`), or the one-line reason it failed. The answer
is stored by reference: each cited or retrieved paper as its id (and title), read back from the library when the
conversation is loaded, so a saved turn is not a second copy of the papers (a paper removed from the library since
is shown by its title; a changed abstract gets its quoted spans found again).
A pending turn whose process is gone was interrupted (the app or terminal stopped mid-answer): it is shown as such,
never lost. Failed, pending and interrupted turns stay visible but are not numbered, not exported and not part of
the history a follow-up sees. Every write is one transaction on its own short-lived connection, so several app
sessions and a terminal can share the file. A damaged file is one ConversationsDamaged line naming it.

Schema: PRAGMA user_version counts the steps of MIGRATIONS the file has had (assistant/migrations.py); files from
before versions are version 0 and are migrated when first opened (tests/fixtures/v0_home).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from .agent import Answer
from .citations import page_note
from .claims import claim_text, claims
from .corpus import NO_ABSTRACT, Paper
from .errors import ConversationError, ConversationsDamaged, StoreError
from .migrations import NewerFile, SqliteStep, migrate_sqlite
from .retrieve import Filters

FILE_NAME = "conversations.sqlite3"
TITLE_LENGTH = 60
PaperLookup = Callable[[list[str]], Mapping[str, Paper]]  # the library's papers by id (Store.get_papers)


def m001_tables(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS conversations (conversation_id TEXT PRIMARY KEY, title TEXT NOT NULL, "
               "created TEXT NOT NULL, updated TEXT NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS turns (turn_id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT "
               "NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE, asked TEXT NOT NULL, question TEXT "
               "NOT NULL, scope TEXT, filters TEXT, answer TEXT, error TEXT)")
    db.execute("CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns (conversation_id, turn_id)")


def m002_turn_worker(db: sqlite3.Connection) -> None:
    """The process answering a pending turn (files of version 0 may have it already)."""
    if "worker" not in {row[1] for row in db.execute("PRAGMA table_info(turns)")}:
        db.execute("ALTER TABLE turns ADD COLUMN worker INTEGER")


def m003_answers_by_reference(db: sqlite3.Connection) -> None:
    """Saved answers keep their papers by id, not as copies (a v0 answer held every cited and retrieved paper)."""
    rows = db.execute("SELECT turn_id, answer FROM turns WHERE answer IS NOT NULL").fetchall()
    db.executemany("UPDATE turns SET answer = ? WHERE turn_id = ?",
                   [(json.dumps(_by_reference(json.loads(answer)), ensure_ascii=False), turn_id)
                    for turn_id, answer in rows])


MIGRATIONS: list[SqliteStep] = [m001_tables, m002_turn_worker, m003_answers_by_reference]
EMPTY_KEPT_SECONDS = 3600  # a conversation never asked anything (a chat killed at once) is deleted after this
INTERRUPTED = "Interrupted: the app or terminal answering it stopped before the answer was ready."
TurnState = Literal["answered", "failed", "pending", "interrupted"]


def _alive(pid: int | None) -> bool:
    """Whether process `pid` still runs (this one always does)."""
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


class SavedTurn(BaseModel):
    """One question and what came of it: an answer, or the one-line reason there is none."""

    turn_id: int
    asked: datetime
    question: str
    scope: str | None = None  # a label for the papers the turn was bounded to (a topic), shown with it
    filters: Filters | None = None
    answer: Answer | None = None
    error: str | None = None
    worker: int | None = None  # the process answering a pending turn

    @property
    def state(self) -> TurnState:
        if self.answer is not None:
            return "answered"
        if self.error is not None:
            return "failed"
        return "pending" if _alive(self.worker) else "interrupted"

    @property
    def failed(self) -> bool:
        return self.state in ("failed", "interrupted")

    @property
    def reason(self) -> str | None:
        """Why a turn has no answer (None while pending or answered)."""
        return INTERRUPTED if self.state == "interrupted" else self.error


class ConversationInfo(BaseModel):
    conversation_id: str
    title: str
    created: datetime
    updated: datetime
    answers: int = 0
    failed: int = 0
    pending: int = 0  # asked, not (yet) answered: pending or interrupted


class Conversation(ConversationInfo):
    turns: list[SavedTurn] = Field(default_factory=list)

    def answered(self) -> list[tuple[int, SavedTurn, Answer]]:
        """The answered turns with their numbers (1, 2, ...) and answers: failed turns take none."""
        answered = ((turn, turn.answer) for turn in self.turns if turn.answer is not None)
        return [(number, turn, answer) for number, (turn, answer) in enumerate(answered, start=1)]

    def numbered(self) -> list[tuple[int, SavedTurn]]:
        """The answered turns with their numbers (1, 2, ...)."""
        return [(number, turn) for number, turn, _ in self.answered()]

    def history(self, before: int | None = None) -> list[dict[str, Any]]:
        """What a follow-up question sees: every answered turn (before turn id `before`), citation numbers
        included."""
        return [entry for _, turn, answer in self.answered() if before is None or turn.turn_id < before
                for entry in answer.history_entries()]

    def cited_papers(self) -> list[Paper]:
        """Every paper cited in the conversation, first citation first."""
        return [c.paper for _, _, answer in self.answered() for c in answer.citations]

    def cited_pages(self) -> dict[str, list[int]]:
        """Paper id -> the PDF pages of the sentences the conversation's answers rest on (papers with a PDF)."""
        pages: dict[str, set[int]] = {}
        for _, _, answer in self.answered():
            for citation in answer.citations:
                pages.setdefault(citation.paper_id, set()).update(citation.pages())
        return {paper_id: sorted(found) for paper_id, found in pages.items() if found}


def title_from(question: str, scope: str | None = None) -> str:
    """A conversation's title from its first question (or the label of the papers it was bounded to, e.g. a
    topic): one line, at most TITLE_LENGTH characters."""
    text = " ".join((f"About {scope}" if scope else question).split())
    return text if len(text) <= TITLE_LENGTH else text[: TITLE_LENGTH - 1].rstrip() + "…"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class ConversationStore:
    """HOME/conversations.sqlite3 (SQLite through the standard library); `papers` reads the library's papers by id
    for the answers it loads (without it, or while the library cannot be read, a paper is shown by its title)."""

    def __init__(self, path: Path, papers: PaperLookup | None = None):
        self.path = Path(path)
        self.papers = papers
        self._schema_ready = False

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One connection per operation, committed as a whole or not at all (rolled back on any error); a
        damaged file is ConversationsDamaged (a busy one stays sqlite3's OperationalError)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            if not self._schema_ready:
                self._prepare(connection)
            with connection:
                yield connection
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
                raise
            raise ConversationsDamaged.of(self.path, error) from None
        except NewerFile as error:
            raise ConversationsDamaged(str(error)) from None
        finally:
            connection.close()

    def _prepare(self, connection: sqlite3.Connection) -> None:
        migrate_sqlite(connection, MIGRATIONS, self.path)
        self._schema_ready = True

    def create(self, title: str = "") -> ConversationInfo:
        """A new conversation; conversations never asked anything and older than EMPTY_KEPT_SECONDS go (a chat
        started and killed at once leaves nothing in the list)."""
        now = _now()
        stale = datetime.fromtimestamp(datetime.now(UTC).timestamp() - EMPTY_KEPT_SECONDS, UTC).isoformat()
        with self._transaction() as db:
            db.execute("DELETE FROM conversations WHERE created < ? AND NOT EXISTS (SELECT 1 FROM turns t WHERE "
                       "t.conversation_id = conversations.conversation_id)", (stale,))
            while True:
                conversation_id = secrets.token_hex(4)
                if not db.execute(
                    "SELECT 1 FROM conversations WHERE conversation_id = ?", (conversation_id,)
                ).fetchone():
                    break
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?)", (conversation_id, title.strip(), now, now))
        return self.info(conversation_id)

    def list(self, search: str = "") -> list[ConversationInfo]:
        """Every conversation that was asked something, most recently active first; `search`: only those whose
        title or a question holds it (case-insensitive)."""
        where = ""
        args: tuple[str, ...] = ()
        if search.strip():
            where = (" WHERE c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM turns s WHERE s.conversation_id "
                     "= c.conversation_id AND s.question LIKE ? ESCAPE '\\')")
            args = ("%" + _like_prefix(search.strip()),) * 2
        with self._transaction() as db:
            rows = db.execute(_INFO_QUERY + where + " GROUP BY c.conversation_id HAVING count(t.turn_id) > 0 "
                              "ORDER BY c.updated DESC", args).fetchall()
        return [_info(row) for row in rows]

    def resolve(self, conversation_id: str) -> str:
        """The full id for an id or a unique prefix of one."""
        wanted = conversation_id.strip().lower()
        with self._transaction() as db:
            ids = [row[0] for row in db.execute("SELECT conversation_id FROM conversations WHERE conversation_id "
                                                "LIKE ? ESCAPE '\\'", (_like_prefix(wanted),))]
        if wanted in ids:
            return wanted
        if len(ids) == 1 and wanted:
            return ids[0]
        if not ids or not wanted:
            raise ConversationError(f"no conversation {conversation_id!r} (`litassist conversations` lists them)")
        raise ConversationError(f"{conversation_id!r} matches {len(ids)} conversations ({', '.join(sorted(ids))}): "
                                "give more of the id")

    def latest(self) -> ConversationInfo | None:
        listed = self.list()
        return listed[0] if listed else None

    def info(self, conversation_id: str) -> ConversationInfo:
        resolved = self.resolve(conversation_id)
        with self._transaction() as db:
            row = db.execute(_INFO_QUERY + " WHERE c.conversation_id = ? GROUP BY c.conversation_id",
                             (resolved,)).fetchone()
        return _info(row)

    def get(self, conversation_id: str) -> Conversation:
        resolved = self.resolve(conversation_id)
        with self._transaction() as db:
            row = db.execute(_INFO_QUERY + " WHERE c.conversation_id = ? GROUP BY c.conversation_id",
                             (resolved,)).fetchone()
            turns = db.execute("SELECT turn_id, asked, question, scope, filters, answer, error, worker FROM turns "
                               "WHERE conversation_id = ? ORDER BY turn_id", (resolved,)).fetchall()
        answers = [json.loads(t[5]) if t[5] else None for t in turns]
        papers = self._papers({ref["paper_id"] for a in answers if a for ref in (*a["citations"], *a["evidence"])})
        return Conversation(**_info(row).model_dump(),
                            turns=[_turn(t, _with_papers(a, papers)) for t, a in zip(turns, answers, strict=True)])

    def _papers(self, paper_ids: set[str]) -> Mapping[str, Paper]:
        """The library's papers of these ids; none when it cannot be read (the answers then show titles)."""
        if not paper_ids or self.papers is None:
            return {}
        try:
            return self.papers(sorted(paper_ids))
        except StoreError:
            return {}

    def add_turn(self, conversation_id: str, question: str, answer: Answer | None = None, error: str | None = None,
                 filters: Filters | None = None, scope: str | None = None) -> SavedTurn:
        """Append a finished turn (an answer, or the error that stopped it)."""
        if (answer is None) == (error is None):
            raise ValueError("a turn has an answer or an error, not both or neither")
        turn = self.add_pending(conversation_id, question, filters, scope)
        return self.finish(turn, answer=answer, error=error)

    def add_pending(self, conversation_id: str, question: str, filters: Filters | None = None,
                    scope: str | None = None, worker: int | None = None) -> SavedTurn:
        """Save a question the moment it is asked, to be answered by process `worker` (this one by default); the
        first question titles an untitled conversation (with the scope's label when it has one: "Ask about this
        topic" conversations differ by their topic, not by the standard question)."""
        resolved = self.resolve(conversation_id)
        now, worker = _now(), worker or os.getpid()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO turns (conversation_id, asked, question, scope, filters, worker) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    resolved,
                    now,
                    question,
                    scope,
                    filters.model_dump_json(exclude_none=True) if filters else None,
                    worker,
                ),
            )
            db.execute("UPDATE conversations SET updated = ?, title = CASE WHEN title = '' THEN ? ELSE title END "
                       "WHERE conversation_id = ?", (now, title_from(question, scope), resolved))
            turn_id = cursor.lastrowid
            assert turn_id is not None  # sqlite3 sets it after every successful INSERT
        return SavedTurn(turn_id=turn_id, asked=datetime.fromisoformat(now), question=question, scope=scope,
                         filters=filters, worker=worker)

    def finish(self, turn: SavedTurn, answer: Answer | None = None, error: str | None = None) -> SavedTurn:
        """Complete a pending turn in place with its answer or the one line why there is none."""
        if (answer is None) == (error is None):
            raise ValueError("a turn has an answer or an error, not both or neither")
        with self._transaction() as db:
            db.execute("UPDATE turns SET answer = ?, error = ? WHERE turn_id = ?",
                       (_stored(answer) if answer else None, error, turn.turn_id))
            db.execute("UPDATE conversations SET updated = ? WHERE conversation_id = (SELECT conversation_id FROM "
                       "turns WHERE turn_id = ?)", (_now(), turn.turn_id))
        return turn.model_copy(update={"answer": answer, "error": error})

    def rename(self, conversation_id: str, title: str) -> ConversationInfo:
        title = " ".join(title.split())
        if not title:
            raise ValueError("a conversation's title cannot be empty")
        resolved = self.resolve(conversation_id)
        with self._transaction() as db:
            db.execute("UPDATE conversations SET title = ? WHERE conversation_id = ?", (title[:200], resolved))
        return self.info(resolved)

    def delete(self, conversation_id: str) -> ConversationInfo:
        """Delete a conversation and its turns; returns what was deleted."""
        gone = self.info(conversation_id)
        with self._transaction() as db:
            db.execute("DELETE FROM conversations WHERE conversation_id = ?", (gone.conversation_id,))
        return gone


_INFO_QUERY = ("SELECT c.conversation_id, c.title, c.created, c.updated, count(t.answer), count(t.error), "
               "count(t.turn_id) - count(t.answer) - count(t.error) FROM conversations c "
               "LEFT JOIN turns t ON t.conversation_id = c.conversation_id")


def _like_prefix(text: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", text) + "%"


def _info(row: tuple[Any, ...]) -> ConversationInfo:
    conversation_id, title, created, updated, answers, failed, pending = row
    return ConversationInfo(conversation_id=conversation_id, title=title or "Untitled conversation",
                            created=created, updated=updated, answers=answers, failed=failed, pending=pending)


def _turn(row: tuple[Any, ...], answer: Answer | None) -> SavedTurn:
    turn_id, asked, question, scope, filters, _, error, worker = row
    return SavedTurn(turn_id=turn_id, asked=asked, question=question, scope=scope,
                     filters=Filters.model_validate_json(filters) if filters else None,
                     answer=answer, error=error, worker=worker)


def _stored(answer: Answer) -> str:
    """An answer as it is saved: its papers by reference."""
    return json.dumps(_by_reference(answer.model_dump(mode="json")), ensure_ascii=False)


def _by_reference(answer: dict[str, Any]) -> dict[str, Any]:
    """Answer JSON with each citation's and evidence's paper replaced by its id (citations keep their title;
    evidence gets one), so a paper removed from the library since is still named."""
    for citation in answer.get("citations", []):
        citation.pop("paper", None)
    for evidence in answer.get("evidence", []):
        paper = evidence.pop("paper", None)
        if paper is not None:
            evidence["paper_id"], evidence["title"] = paper["paper_id"], paper["title"]
    return answer


def _with_papers(answer: dict[str, Any] | None, papers: Mapping[str, Paper]) -> Answer | None:
    """A saved answer with its papers read from the library, the quoted abstract spans found again where the
    abstract changed; a paper not in it (removed, or no library given) is a stub with its id and title."""
    if answer is None:
        return None

    def paper(ref: dict[str, Any]) -> Paper:
        return papers.get(ref["paper_id"]) or Paper(paper_id=ref["paper_id"], title=ref.get("title") or ref["paper_id"])

    for citation in answer["citations"]:
        citation["paper"] = paper(citation)
        if citation["paper_id"] in papers:
            citation["spans"] = _realigned(citation["spans"], papers[citation["paper_id"]].abstract)
    for claim in answer.get("claims", []):
        for support in claim["citations"]:
            if support["paper_id"] in papers:
                support["spans"] = _realigned(support["spans"], papers[support["paper_id"]].abstract)
    for evidence in answer["evidence"]:
        evidence["paper"] = paper(evidence)
    return Answer.model_validate(answer)


def _realigned(spans: list[dict[str, Any]], abstract: str) -> list[dict[str, Any]]:
    """Abstract spans whose text is at their offsets, or found elsewhere in the abstract (re-ingested with other
    text); spans whose text is gone are dropped. PDF page spans are kept as they are."""
    kept = []
    for span in spans:
        if span.get("page") is None and abstract[span["start"]:span["end"]] != span["text"]:
            start = abstract.find(span["text"]) if span["text"] else -1
            if start < 0:
                continue
            span = {**span, "start": start, "end": start + len(span["text"])}
        kept.append(span)
    return kept


# --- export ---------------------------------------------------------------------------------------------------


def author_names(paper: Paper, limit: int = 3) -> str:
    """Authors as names ("A, B, C et al."); "authors not listed" when the source gave only a count or none."""
    return paper.names(limit) or "authors not listed"


def reference_line(paper: Paper, number: int, pages: Sequence[int] = ()) -> str:
    """"[1] Title — authors (year)", with the PDF pages its cited sentences are on (", p. 4")."""
    return (f"[{number}] {paper.title} — {author_names(paper)} ({paper.when or 'undated'}){page_note(pages)}"
            + ("" if paper.has_abstract else f" — {NO_ABSTRACT}"))


def _evidence_lines(answer: Answer) -> list[str]:
    """Per claim, the sentence(s) of each cited abstract it rests on, quoted."""
    titles = {c.number: c.title for c in answer.citations}
    lines = []
    for claim in claims(answer):
        lines.append(f"- {claim_text(claim)}")
        for support in claim.citations:
            weak = " (weak support)" if support.weak else ""
            quotes = " … ".join(
                f"“{span.text.strip()}” "
                + (f"(p. {span.page})" if span.page else f"(abstract characters {span.start}–{span.end})")
                for span in support.spans
            )
            lines.append(f"  - [{support.number}] {titles.get(support.number, support.paper_id)}{weak}: "
                         + (quotes or "no sentence of the abstract located for this claim"))
    return lines


def conversation_markdown(conversation: Conversation, now: datetime | None = None) -> str:
    """The conversation as Markdown: each answered turn's question, answer, references and the quoted spans
    each claim rests on. Failed turns are left out."""
    stamp = (now or datetime.now()).strftime("%Y-%m-%d %H:%M")
    answered = conversation.answered()
    answers = f"{len(answered)} answer{'s' if len(answered) != 1 else ''}"
    out = [f"# {conversation.title}\n",
           f"_litassist conversation `{conversation.conversation_id}` · {answers} · exported {stamp}._\n"]
    for number, turn, answer in answered:
        out.append(f"## {number}. {turn.question}\n")
        if turn.scope:
            out.append(f"_Asked about {turn.scope}._\n")
        out.append(f"{answer.body}\n")
        if answer.citations:
            out.append("**References**\n\n" + "\n".join(f"- {reference_line(c.paper, c.number, c.pages())}"
                                                        for c in answer.citations) + "\n")
            evidence = _evidence_lines(answer)
            if evidence:
                out.append("**What each claim rests on**\n\n" + "\n".join(evidence) + "\n")
        model = answer.provider + (f" / {answer.model}" if answer.model else "")
        out.append(f"_Answered by {model}{' (extractive: quoted from the abstracts)' if answer.extractive else ''}._\n")
    return "\n".join(out)


def conversation_json(conversation: Conversation) -> str:
    """The conversation as JSON: answered turns with their number, answer, references, per-claim spans and where
    the answer quotes papers (`quoted` offsets: brackets inside are the paper's text)."""
    turns = []
    for number, turn, answer in conversation.answered():
        turns.append({
            "number": number, "question": turn.question, "asked": turn.asked.isoformat(), "scope": turn.scope,
            "answer": answer.body, "provider": answer.provider, "model": answer.model,
            "extractive": answer.extractive, "abstained": answer.abstained,
            "references": [{"number": c.number, "paper_id": c.paper_id, "title": c.title,
                            "authors": c.paper.authors, "year": c.paper.year, "doi": c.paper.doi,
                            "url": c.paper.url} for c in answer.citations],
            "claims": [claim.model_dump() for claim in claims(answer)], "quoted": answer.quoted,
        })
    return json.dumps({"conversation_id": conversation.conversation_id, "title": conversation.title,
                       "created": conversation.created.isoformat(), "updated": conversation.updated.isoformat(),
                       "turns": turns}, ensure_ascii=False, indent=2)


EXPORTS: dict[str, Callable[[Conversation], str]] = {"markdown": conversation_markdown, "json": conversation_json}
