"""A library shared through a Chroma server: vectors and a change log on the server, a catalog replica per client.

Every commit appends one entry to the server's `changes` collection: its parts (the staged papers with their
passages and paper vectors, record updates, removals, source hashes; at most PART_PAPERS papers each) and then a
commit marker `commit:{seq}` naming them. The marker is the commit point: a client applies an entry only once its
marker exists, in sequence order, each in one transaction of its replica (HOME/replicas/*.sqlite3). A client
therefore catches up on another client's change in time proportional to that change, and a new client replays
the log once. Two clients that commit at once both write marker `seq`: the second finds the first's there, its
change is not published, and it is told to run again. Chroma entries need a vector, so log entries carry a 1-d
zero vector (the collection is never queried by similarity).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from ..corpus import Paper, duplicate_keys
from ..errors import StoreError
from .catalog import SourceRecord, StagedChunk, StagedPaper
from .lexical import lexical_tokens

if TYPE_CHECKING:
    from .store import Store, _Change

log = logging.getLogger("litassist.index")
CHANGES = "changes"
PART_PAPERS = 200


class ServerLog:
    def __init__(self, store: Store):
        self.store = store
        with store.vectors._use() as handles:
            self.changes = handles.client.get_or_create_collection(CHANGES, embedding_function=None)

    def _seq(self) -> int:
        return int(self.store.catalog.meta("seq") or 0)

    def _get(self, **query: Any) -> dict[str, Any]:
        try:
            return self.changes.get(**query)
        except Exception as error:  # noqa: BLE001 - any failure of the server is one line
            raise self.store.vectors._failure(error) from None

    def catch_up(self) -> None:
        """Apply, in order, every committed entry this replica has not seen."""
        seq = self._seq()
        found = self._get(where={"$and": [{"kind": "commit"}, {"seq": {"$gt": seq}}]}, include=["metadatas"])
        markers = sorted(found["metadatas"], key=lambda meta: int(meta["seq"]))
        for marker in markers:
            if int(marker["seq"]) != seq + 1:
                break  # an entry still being written (or a gap): wait for it
            self._apply(marker)
            seq += 1

    def _apply(self, marker: dict[str, Any]) -> None:
        txn = str(marker["txn"])
        parts = self._get(where={"$and": [{"txn": txn}, {"kind": "part"}]}, include=["documents", "metadatas"])
        docs = [json.loads(doc) for doc, meta in sorted(zip(parts["documents"], parts["metadatas"]),
                                                        key=lambda item: int(item[1]["part"]))]
        from .store import _Change

        change = _Change()
        staged = []
        for doc in docs:
            staged += [_staged(row) for row in doc.get("papers", [])]
            change.records += [Paper.model_validate(record) for record in doc.get("records", [])]
            change.deleted += doc.get("deleted", [])
            change.sources += [SourceRecord(**row) for row in doc.get("sources", [])]
            change.forgotten += doc.get("forgotten", [])
        catalog = self.store.catalog
        with catalog.transaction() as db:
            catalog.stage(db, txn, staged)
            self.store._apply(db, txn, change, str(marker["version"]))
            catalog.set_meta(db, seq=str(marker["seq"]))
            db.execute("DELETE FROM trash")  # the writer deleted those vectors on the server; a replica never does
        log.info("caught up with the server's change %s: %d papers written, %d removed", marker["seq"], len(staged),
                 len(change.deleted))

    def append(self, txn: str, change: _Change, version: str) -> int:
        """Publish this writer's change on the server; returns its sequence number. Raises StoreError when another
        client committed first (after catching up with it: nothing of this change is published)."""
        seq = self._seq() + 1
        docs = self._documents(txn, change)
        ids = [f"{txn}:{i}" for i in range(len(docs))]
        try:
            for start in range(0, len(docs), 8):
                self.changes.add(ids=ids[start : start + 8], embeddings=[[0.0]] * len(docs[start : start + 8]),
                                 documents=docs[start : start + 8],
                                 metadatas=[{"txn": txn, "kind": "part", "part": i}
                                            for i in range(start, min(start + 8, len(docs)))])
            marker = f"commit:{seq:012d}"
            self.changes.add(ids=[marker], embeddings=[[0.0]], documents=[""],
                             metadatas=[{"kind": "commit", "seq": seq, "txn": txn, "version": version}])
            written = self.changes.get(ids=[marker], include=["metadatas"])["metadatas"]
        except Exception as error:  # noqa: BLE001
            raise self.store.vectors._failure(error) from None
        if not written or written[0].get("txn") != txn:
            self.catch_up()
            raise StoreError(f"another client changed the library on {self.store.url} at the same moment; nothing of "
                             "this change was published: run it again")
        return seq

    def _documents(self, txn: str, change: _Change) -> list[str]:
        """The change as JSON parts: the staged papers (read back from this replica), then the in-place changes."""
        db = self.store.catalog.connection()
        rows = db.execute("SELECT id, record, vector_id, vector FROM papers WHERE txn=? ORDER BY id", (txn,)).fetchall()
        docs = []
        for start in range(0, len(rows), PART_PAPERS):
            papers = []
            for row, record, vector_id, vector in rows[start : start + PART_PAPERS]:
                chunks = db.execute("SELECT vector_id, position, text, location FROM chunks WHERE paper=? "
                                    "ORDER BY position", (row,)).fetchall()
                papers.append({"record": json.loads(record), "vector_id": vector_id,
                               "vector": base64.b64encode(vector).decode("ascii"),
                               "chunks": [{"vector_id": c[0], "position": c[1], "text": c[2],
                                           "location": json.loads(c[3]) if c[3] else None} for c in chunks]})
            docs.append(json.dumps({"papers": papers}))
        docs.append(json.dumps({
            "records": [paper.model_dump(mode="json") for paper in change.records], "deleted": change.deleted,
            "sources": [record.__dict__ for record in change.sources], "forgotten": change.forgotten,
            "id": uuid.uuid4().hex,
        }))
        return docs


def _staged(row: dict[str, Any]) -> StagedPaper:
    paper = Paper.model_validate(row["record"])
    return StagedPaper(
        paper, row["vector_id"], np.frombuffer(base64.b64decode(row["vector"]), dtype=np.float32),
        [StagedChunk(c["vector_id"], int(c["position"]), c["text"], c.get("location")) for c in row["chunks"]],
        list(duplicate_keys(paper)), lexical_tokens([paper])[0],
    )
