"""Hybrid retrieval: fusion, filters inside the search, one result per paper, index consistency, batch, eval."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from seeds import seed_paper_count
from typer.testing import CliRunner

from assistant import Assistant
from assistant.api import DEMO_CORPUS as SEEDS
from assistant.cli import app
from assistant.evaluate import mrr_at_k, ndcg_at_k, recall_at_k
from assistant.index import StoreError
from assistant.retrieve import Filters, fuse

runner = CliRunner()


def test_fuse_normalizes_each_list_and_weights_them() -> None:
    dense = {"a": 0.9, "b": 0.5, "c": 0.1}
    lexical = {"b": 30.0, "d": 10.0}
    fused = fuse(dense, lexical, dense_weight=0.5)
    assert fused == pytest.approx({"a": 0.5, "b": 0.25 + 0.5, "c": 0.0, "d": 0.0})
    assert fuse(dense, lexical, 1.0)["a"] == pytest.approx(1.0)
    assert fuse(dense, lexical, 0.0)["b"] == pytest.approx(1.0)
    assert fuse({}, {"x": 2.0}, 0.5) == {"x": 0.5}


def test_metrics_match_hand_computed_values() -> None:
    relevant = {"d1": 1, "d3": 1}
    ranked = ["d3", "d2", "d1"]
    assert ndcg_at_k(ranked, relevant) == pytest.approx((1 + 1 / 2) / (1 + 1 / 1.5849625007211562))
    assert recall_at_k(ranked, relevant, 2) == 0.5 and recall_at_k(ranked, relevant, 10) == 1.0
    assert mrr_at_k(["x", "d1"], relevant) == 0.5 and mrr_at_k(["x"], relevant) == 0.0


def test_rare_term_found_by_lexical_and_hybrid(seeded_home: Path) -> None:
    lib = Assistant(home=seeded_home)
    lexical = lib.search("CMFQ", k=3, mode="lexical")
    assert lexical[0].title == "Causal Mean Field Multi-Agent Reinforcement Learning"
    hybrid = lib.search("CMFQ causal mean-field Q-learning", k=3)
    assert hybrid[0].paper_id == lexical[0].paper_id


def test_results_are_papers_not_chunks(seeded_home: Path) -> None:
    lib = Assistant(home=seeded_home)
    for mode in ("hybrid", "dense", "lexical"):
        hits = lib.search("reinforcement learning agents", k=20, mode=mode)
        assert len(hits) == 20 and len({h.paper_id for h in hits}) == 20
        assert all(h.text and h.text in h.paper.abstract for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_year_filter_applies_before_the_cut(seeded_home: Path) -> None:
    lib = Assistant(home=seeded_home)
    old = {p.paper_id for p in lib.papers() if p.year is not None and p.year <= 2019}
    assert 0 < len(old) < len(lib.papers()) // 10  # a small slice: an unfiltered top-k would hold few of them
    for mode in ("hybrid", "dense"):
        hits = lib.search("deep learning", k=len(old) + 5, filters=Filters(year_max=2019), mode=mode)
        assert {h.paper_id for h in hits} == old  # every match, and nothing else
    lexical = lib.search("deep learning", k=50, filters=Filters(year_max=2019), mode="lexical")
    assert lexical and {h.paper_id for h in lexical} <= old  # BM25 leaves out papers that score 0
    ranged = lib.search("graph neural networks", k=50, filters=Filters(year_min=2023, year_max=2024))
    assert ranged and all(2023 <= h.paper.year <= 2024 for h in ranged)


def test_author_venue_and_source_filters(seeded_home: Path) -> None:
    lib = Assistant(home=seeded_home)
    by_author = lib.search("training", k=50, filters=Filters(author="zhenyu guo"))
    assert len(by_author) == 10 and all("Zhenyu Guo" in h.paper.authors for h in by_author)
    by_venue = lib.search("training", k=50, filters=Filters(venue="machine learning"))
    assert len(by_venue) == 2 and all(h.paper.venue == "arXiv Machine Learning" for h in by_venue)
    by_format = lib.search("training", k=50, filters=Filters(source="abstract-lines"))
    assert len(by_format) == 10 and all(h.paper.title_derived for h in by_format)
    assert lib.search("training", filters=Filters(author="nobody at all")) == []


def test_lexical_and_dense_stay_in_step_after_update_and_delete(seeded_copy: Path, tmp_path: Path) -> None:
    lib = Assistant(home=seeded_copy)
    target = next(p for p in lib.papers() if p.title.startswith("APAN: Asynchronous Propagation"))
    assert lib.search("APAN asynchronous propagation attention", k=1, mode="lexical")[0].paper_id == target.paper_id

    lib.remove([target.paper_id])
    fresh = Assistant(home=seeded_copy)  # a new process sees the same state on disk
    for reader in (lib, fresh):
        for mode in ("lexical", "dense", "hybrid"):
            assert target.paper_id not in {h.paper_id for h in reader.search("APAN asynchronous", k=20, mode=mode)}
        assert reader.search("APAN asynchronous", k=1, mode="lexical")[0].paper_id != target.paper_id
        assert reader.stats().papers == 178 and reader.store.vectors.count("papers") == 178

    update = tmp_path / "update.jsonl"
    record = {"id": "zz-1", "title": "Quokka gradients", "abstract": "We study quokka gradient descent. " * 4}
    update.write_text(json.dumps(record) + "\n", encoding="utf-8")
    lib.ingest([update])
    assert lib.search("quokka", k=1, mode="lexical")[0].paper_id == "zz-1"
    update.write_text(json.dumps({**record, "title": "Wombat gradients"}) + "\n", encoding="utf-8")
    lib.ingest([update])
    assert lib.search("wombat", k=1, mode="lexical")[0].paper_id == "zz-1"
    assert lib.search("wombat", k=1, mode="dense")[0].paper_id == "zz-1"
    assert lib.search("quokka gradients title", k=1, mode="lexical")[0].title == "Wombat gradients"


def test_removing_a_source_keeps_papers_other_sources_hold(seeded_copy: Path, tmp_path: Path) -> None:
    lib = Assistant(home=seeded_copy)
    page = SEEDS / "guo-zhenyu-author-page.txt"
    report = lib.remove(sources=[page])
    assert len(report.removed) == 10 and not report.unknown
    assert lib.stats().papers == 169 and lib.stats().sources == 4
    assert lib.search("CMFQ", k=5, mode="lexical") == []
    assert lib.remove(["no-such-id"]).unknown == ["no-such-id"]


def test_batch_queries_cli(seeded_home: Path, tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": 1, "text": "time series forecasting"}\n\n{"id": "b", "text": "graph partition"}\n')
    result = runner.invoke(app, ["--home", str(seeded_home), "search", "--queries", str(queries), "-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == [1, "b"]
    assert all(
        len(line["hits"]) == 3 and set(line["hits"][0]) == {"paper_id", "title", "score", "text", "has_abstract"}
        for line in lines
    )
    assert lines[1]["hits"][0]["title"].startswith("Enhancing Balanced Graph Edge Partition")

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    failed = runner.invoke(app, ["--home", str(seeded_home), "search", "--queries", str(bad)])
    assert failed.exit_code == 2 and "line 1" in failed.output


def make_beir(folder: Path, lib: Assistant) -> None:
    """A tiny BEIR folder from the seed papers: each titled paper's title is a query for that paper."""
    papers = [p for p in lib.papers() if not p.title_derived][:40]
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        for i, p in enumerate(papers):
            corpus.write(json.dumps({"_id": f"d{i}", "title": p.title, "text": p.abstract}) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as queries:
        for i, p in enumerate(papers):
            queries.write(json.dumps({"_id": f"q{i}", "text": p.title.lower()}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(0, 40, 2)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_eval_retrieval_on_a_beir_folder(seeded_home: Path, tmp_path: Path) -> None:
    beir = tmp_path / "tiny"
    make_beir(beir, Assistant(home=seeded_home))
    eval_home = tmp_path / "eval-home"
    result = runner.invoke(app, ["eval", "retrieval", str(beir), "--eval-home", str(eval_home), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == 20 and report["corpus_papers"] == 40
    for mode in ("hybrid", "dense", "lexical"):
        metrics = report["results"][mode]
        assert metrics["ndcg_at_10"] > 0.8 and metrics["recall_at_100"] == 1.0
        assert 0 <= metrics["mrr_at_10"] <= 1
    assert Assistant(home=seeded_home).stats().papers == seed_paper_count()  # the user's library is untouched
    again = runner.invoke(app, ["eval", "retrieval", str(beir), "--eval-home", str(eval_home), "--json"])
    assert json.loads(again.stdout)["results"] == report["results"]  # reuses the index, same numbers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_chroma_server_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    server = subprocess.Popen(
        [chroma, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "chroma server did not start"
                time.sleep(0.5)
        monkeypatch.setenv("LITASSIST_CHROMA_URL", f"http://127.0.0.1:{port}")
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        shutil.copy(SEEDS / "paper-page-sparse-training-theory.txt", corpus / "page.txt")
        lib = Assistant(home=tmp_path / "home")
        assert lib.ingest([corpus]).new == 6
        assert not (tmp_path / "home" / "chroma").exists()  # nothing embedded locally: it is all on the server
        assert lib.search("sparse training theory", k=1)[0].title.startswith("Sparse Training Theory")
        page = corpus / "page.txt"
        page.write_text(page.read_text(encoding="utf-8").replace("Sparse Training Theory", "Dense Training Theory"))
        report = lib.ingest([corpus])
        assert (report.new, report.updated) == (0, 1)
        assert lib.search("dense training theory agents", k=1)[0].title.startswith("Dense Training Theory")
        other = Assistant(home=tmp_path / "other-home")
        assert other.stats().papers == 6  # any client sees the server's data (its replica replays the log once)
        assert other.search("dense training theory agents", k=1)[0].title.startswith("Dense Training Theory")
        assert other.remove(sources=[page]).removed  # a change by one client...
        assert lib.stats().papers == 0 and lib.search("training", k=3) == []  # ...is the next view of every other
        assert lib.ingest([corpus]).new == 6
        assert other.stats().papers == 6

        stale = Assistant(home=tmp_path / "stale-home")
        assert stale.stats().papers == 6
        lib.remove(sources=[page])  # the server's library moves on; the stale client will not look before writing
        monkeypatch.setattr(type(stale.store.log), "catch_up", lambda self: None)
        late = tmp_path / "late.jsonl"
        late.write_text(json.dumps({"id": "late", "title": "Late paper", "abstract": "A late quokka study."}) + "\n")
        with pytest.raises(StoreError, match="another client changed the library .* run it again"):
            stale.ingest([late])
        assert "late" not in {p.paper_id for p in Assistant(home=tmp_path / "fresh-home").papers()}
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- optional LLM re-ranking ---------------------------------------------------------------------------

RERANK_QUERY = "scalable multi-agent reinforcement learning"


def test_llm_reranker_orders_the_top_candidates_and_keeps_fused_order_on_bad_replies(seeded_home: Path) -> None:
    from langchain_core.messages import AIMessage
    from test_agent import ScriptedChatModel

    from assistant.config import load_settings
    from assistant.rerank import rerank

    lib = Assistant(home=seeded_home)
    fused = [h.paper_id for h in lib.search(RERANK_QUERY, k=4)]
    replies = [AIMessage("3, 1, 1, 99, 2"), AIMessage("I cannot rank these.")]
    model = ScriptedChatModel(messages=iter(replies), calls=[])
    lib.retriever.reranker = lambda query, hits: rerank(model, query, hits)
    lib.retriever.rerank_candidates = 4
    # 3 then 1 then 2 (the repeat and the invented 99 are ignored), 4 keeps its place after them; cut to k=3
    assert [h.paper_id for h in lib.search(RERANK_QUERY, k=3)] == [fused[2], fused[0], fused[1]]
    request = str(model.calls[0][-1].content)
    assert request.count('<passage n="') == 4 and f"Query: {RERANK_QUERY}" in request
    assert [h.paper_id for h in lib.search(RERANK_QUERY, k=3)] == fused[:3]  # no usable numbers: fused order

    # a real client whose server is down: a warning, and the fused order
    down = load_settings(seeded_home, llm_provider="openai-compatible", openai_base_url="http://127.0.0.1:9/v1",
                         llm_max_retries=0, llm_timeout=5)
    from assistant.llm import chat_model

    client = chat_model(down)
    lib.retriever.reranker = lambda query, hits: rerank(client, query, hits)
    assert [h.paper_id for h in lib.search(RERANK_QUERY, k=3)] == fused[:3]


def test_rerank_setting_wires_the_chat_model_into_every_search(
    seeded_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from langchain_core.messages import AIMessage
    from test_agent import ScriptedChatModel

    import assistant.llm
    from assistant.config import load_settings

    fused = [h.paper_id for h in Assistant(home=seeded_home).search(RERANK_QUERY, k=5)]
    model = ScriptedChatModel(messages=iter([AIMessage("5, 4, 3, 2, 1")]), calls=[])
    monkeypatch.setattr(assistant.llm, "chat_model", lambda settings: model)
    settings = load_settings(seeded_home, rerank="llm", rerank_candidates=5, llm_provider="openai-compatible",
                             openai_base_url="http://127.0.0.1:9/v1")
    assert [h.paper_id for h in Assistant(settings=settings).search(RERANK_QUERY, k=5)] == fused[::-1]

    monkeypatch.undo()  # the real provider code again: offline means no chat model
    offline = Assistant(settings=load_settings(seeded_home, rerank="llm", llm_provider="offline"))
    with caplog.at_level("WARNING", logger="litassist"):
        assert [h.paper_id for h in offline.search(RERANK_QUERY, k=5)] == fused
    assert "needs a chat model" in caplog.text
