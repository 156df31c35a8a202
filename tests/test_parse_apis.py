"""OpenAlex, Semantic Scholar and the Kaggle arXiv snapshot, on excerpts of real files (tests/fixtures/real)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from linear import assert_linear
from test_fuzz_parsers import FUZZ, mutated, only_parse_errors

from assistant.corpus import STREAMS, parse_text
from assistant.corpus.apis import (
    MAX_ABSTRACT_WORDS,
    abstract_from_inverted_index,
    parse_kaggle_arxiv,
    parse_openalex,
    parse_semantic_scholar,
)
from assistant.corpus.records import Paper, Skipped
from assistant.errors import ParseError

REAL = Path(__file__).parent / "fixtures" / "real"
SNAPSHOT = (REAL / "arxiv-metadata-oai-snapshot.sample.json").read_text(encoding="utf-8")
OPENALEX_WORK = (REAL / "openalex_work_W2741809807.json").read_text(encoding="utf-8")
OPENALEX_LIST = (REAL / "openalex_works_list.json").read_text(encoding="utf-8")
OPENALEX_JSONL = (REAL / "openalex_works_snapshot.jsonl").read_text(encoding="utf-8")
S2_SEARCH = (REAL / "semantic_scholar_search.json").read_text(encoding="utf-8")


def fields(paper: Paper) -> dict[str, object]:
    return paper.model_dump(exclude={"sources"})


# ---------------------------------------------------------------- OpenAlex


def test_openalex_work_maps_every_field() -> None:
    (paper,) = parse_openalex(OPENALEX_WORK, "W2741809807.json").papers
    assert paper.paper_id == "W2741809807"
    assert paper.title == "The state of OA: a large-scale analysis of the prevalence and impact of Open Access articles"
    assert paper.authors == ["Heather A. Piwowar", "Jason Priem", "Vincent Larivière", "Juan Pablo Alperín",
                             "Lisa Matthias", "Bree Norlander", "Ashley Farley", "Jevin D. West", "Stefanie Haustein"]
    assert (paper.year, paper.date, paper.venue) == (2018, "2018-02-13", "PeerJ")
    assert (paper.doi, paper.url, paper.arxiv_id) == ("10.7717/peerj.4375", "https://doi.org/10.7717/peerj.4375", None)
    assert paper.keywords == ["access", "oa", "articles", "prevalence", "open", "large-scale"]
    # rebuilt from abstract_inverted_index, in order, with repeated words in each of their places
    assert paper.abstract.startswith("Despite growing interest in Open Access (OA) to scholarly literature, there is")
    assert paper.abstract.endswith("We encourage further research using the free oaDOI service, as a way to inform "
                                   "OA policy and practice.")
    assert len(paper.abstract.split()) == 258


def test_openalex_list_response_and_snapshot_lines_give_the_same_papers() -> None:
    listed = parse_openalex(OPENALEX_LIST, "works.json")
    lines = parse_openalex(OPENALEX_JSONL, "part_000.jsonl")
    assert [fields(p) for p in listed.papers] == [fields(p) for p in lines.papers]
    preprint = lines.papers[1]
    assert not preprint.has_abstract  # OpenAlex has no abstract for it: still a paper, from its metadata
    assert preprint.paper_id == "W4387634019"
    assert preprint.arxiv_id == "2310.06770"  # from the arXiv landing page among its locations
    assert preprint.venue == "arXiv (Cornell University)"
    assert preprint.keywords == ["Benchmark"]
    assert preprint.authors == ["Carlos E. Jimenez", "John Yang", "Karthik Narasimhan"]  # last: raw_author_name
    assert [s.position for p in lines.papers for s in p.sources] == [1, 2]


def test_inverted_index_bounds_hostile_positions() -> None:
    hostile = {"first": [0], "second": [1], "far": [10**15], "negative": [-3], "text": ["7"], "flag": [True]}
    assert abstract_from_inverted_index(hostile) == "first second"
    assert abstract_from_inverted_index(["not", "a", "mapping"]) == ""
    assert abstract_from_inverted_index({"gap": [0], "after": [2]}) == "gap after"
    many = {f"w{i}": [i] for i in range(MAX_ABSTRACT_WORDS + 50)}
    assert len(abstract_from_inverted_index(many).split()) == MAX_ABSTRACT_WORDS


def test_openalex_line_with_a_huge_position_is_read_quickly() -> None:
    line = json.dumps({"id": "https://openalex.org/W1", "display_name": "T",
                       "abstract_inverted_index": {"x": [0, 10**18], "y": [10**9]}})
    started = time.perf_counter()
    (paper,) = parse_openalex(line, "w.jsonl").papers
    assert paper.abstract == "x" and time.perf_counter() - started < 1


# ---------------------------------------------------------------- Semantic Scholar


def test_semantic_scholar_search_response_maps_every_field() -> None:
    first, second = parse_semantic_scholar(S2_SEARCH, "search.json").papers
    assert first.paper_id == "649def34f8be52c8b66281af98ae884c09aef38b"
    assert first.title == "Construction of the Literature Graph in Semantic Scholar"
    assert first.authors == ["Waleed Ammar", "Dirk Groeneveld", "Chandra Bhagavatula", "Iz Beltagy", "Miles Crawford"]
    assert (first.year, first.date) == (2018, "2018-05-06")
    assert first.venue == "North American Chapter of the Association for Computational Linguistics"
    assert (first.doi, first.arxiv_id) == ("10.18653/v1/n18-3011", "1805.02262")
    assert first.url == "https://www.semanticscholar.org/paper/649def34f8be52c8b66281af98ae884c09aef38b"
    assert first.keywords == ["Computer Science"]  # fieldsOfStudy and s2FieldsOfStudy, once
    assert first.abstract.startswith("We describe a deployed scalable system for organizing published scientific")
    # no abstract, empty venue: the journal name is the venue, and the paper is kept
    assert not second.has_abstract and second.venue == "medRxiv" and second.keywords == ["Medicine"]
    assert (second.year, second.date, second.authors) == (2021, None, [])


def test_semantic_scholar_batch_list_and_single_paper() -> None:
    batch = json.dumps([{"paperId": "abc", "title": "Found", "externalIds": {"ArXiv": "2106.15928"}}, None])
    result = parse_semantic_scholar(batch, "batch.json")
    assert [p.arxiv_id for p in result.papers] == ["2106.15928"]
    assert result.skipped == [Skipped(position=2, reason="not found (null in a batch response)")]
    citations = json.dumps({"offset": 0, "data": [{"citingPaper": {"paperId": "c1", "title": "Citing"}}]})
    assert [p.title for p in parse_text(citations, "citations.json").papers] == ["Citing"]
    single = json.dumps({"paperId": "abc", "title": "Alone", "year": 2020}, indent=2)
    (paper,) = parse_semantic_scholar(single, "paper.json").papers
    assert (paper.paper_id, paper.title, paper.year) == ("abc", "Alone", 2020)


# ---------------------------------------------------------------- Kaggle arXiv snapshot


def test_kaggle_snapshot_maps_every_field_and_decodes_latex() -> None:
    first, second, old_style = parse_kaggle_arxiv(SNAPSHOT, "arxiv-metadata-oai-snapshot.json").papers
    assert first.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert first.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert (first.year, first.date) == (2007, "2007-04-02")  # the first version's date, not update_date
    assert first.venue == "Phys.Rev.D76:013009,2007"
    assert (first.doi, first.arxiv_id, first.url) == ("10.1103/physrevd.76.013009", "0704.0001",
                                                      "https://arxiv.org/abs/0704.0001")
    assert first.keywords == ["hep-ph"]
    assert first.abstract.startswith("A fully differential calculation in perturbative quantum chromodynamics is "
                                     "presented")
    assert second.paper_id == "arxiv:0704.0002" and second.venue is None and second.doi is None
    assert "the (k,ℓ)-pebble game with colors" in second.abstract
    assert second.keywords == ["math.CO", "cs.CG"] and (second.year, second.date) == (2007, "2007-03-31")
    assert old_style.arxiv_id == "hep-th/9608091" and old_style.url == "https://arxiv.org/abs/hep-th/9608091"
    assert old_style.authors == ["D. Fioravanti", "A. Mariottini", "E. Quattrini", "F. Ravanini"]


def test_kaggle_without_parsed_authors_splits_the_author_line() -> None:
    record = json.loads(SNAPSHOT.split("\n")[0])
    del record["authors_parsed"]
    record["authors"] = "C. Bal\\'azs, E. L. Berger and P. M. Nadolsky (ANL (HEP division))"
    record["abstract"] = ""
    (paper,) = parse_kaggle_arxiv(json.dumps(record), "snapshot.json").papers
    assert paper.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky"]
    assert not paper.has_abstract and paper.arxiv_id == "0704.0001"


# ---------------------------------------------------------------- detection, errors, streaming


@pytest.mark.parametrize(("text", "expected"), [
    (SNAPSHOT, "arxiv-snapshot"), (OPENALEX_WORK, "openalex"), (OPENALEX_LIST, "openalex"),
    (OPENALEX_JSONL, "openalex"), (S2_SEARCH, "semantic-scholar"),
], ids=["snapshot", "openalex work", "openalex list", "openalex jsonl", "s2 search"])
@pytest.mark.parametrize("name", ["download.txt", "download.json", "download.jsonl"])
def test_recognised_by_content_whatever_the_name(text: str, expected: str, name: str) -> None:
    assert parse_text(text, name).format == expected


def test_a_bad_line_is_one_clear_error() -> None:
    broken = SNAPSHOT.split("\n")[0] + "\n" + '{"id": "0704.0002", "title": "cut sh'
    with pytest.raises(ParseError, match=r"^invalid JSON on line 2, column \d+: Unterminated string") as error:
        parse_text(broken, "snapshot.json")
    assert "\n" not in str(error.value)
    with pytest.raises(ParseError, match="^invalid JSON at line"):
        parse_openalex(OPENALEX_WORK[: len(OPENALEX_WORK) // 2], "cut.json")


def test_streams_hold_one_record_and_accept_crlf() -> None:
    consumed: list[int] = []

    def lines() -> Iterator[str]:
        for number, line in enumerate(SNAPSHOT.split("\n"), 1):
            consumed.append(number)
            yield line + "\r"

    records = STREAMS["arxiv-snapshot"](lines(), "snapshot.json")
    first = next(records)
    assert isinstance(first, Paper) and first.arxiv_id == "0704.0001" and consumed == [1]
    assert [r.arxiv_id for r in records if isinstance(r, Paper)] == ["0704.0002", "hep-th/9608091"]


def snapshot_lines(count: int) -> str:
    return "\n".join(SNAPSHOT.split("\n")[1] for _ in range(count))


def one_long_line(words: int) -> str:
    record = json.loads(SNAPSHOT.split("\n")[1])
    record["abstract"] = "plain words without markup " * (words // 4)
    return json.dumps(record)


def huge_index(words: int) -> str:
    return json.dumps({"id": "https://openalex.org/W1", "display_name": "T",
                       "abstract_inverted_index": {f"w{i}": [i, words + i] for i in range(words)}})


@pytest.mark.parametrize(("parse", "make"), [
    (parse_kaggle_arxiv, snapshot_lines),
    (parse_kaggle_arxiv, one_long_line),
    (parse_openalex, huge_index),
    (parse_openalex, lambda n: "\n".join([OPENALEX_JSONL.split("\n")[0]] * n)),
    (parse_semantic_scholar, lambda n: json.dumps({"data": json.loads(S2_SEARCH)["data"] * n})),
], ids=["snapshot records", "snapshot long line", "openalex huge index", "openalex records", "s2 records"])
@pytest.mark.slow
def test_parsing_time_grows_linearly(parse: Callable[[str, str], object], make: Callable[[int], str]) -> None:
    assert_linear(make, lambda text: parse(text, "timed.json"))


@pytest.mark.parametrize("sample", [SNAPSHOT, OPENALEX_LIST, S2_SEARCH], ids=["snapshot", "openalex", "s2"])
def test_mutated_files_raise_nothing_but_parse_errors(sample: str) -> None:
    @FUZZ
    @given(text=mutated(sample))
    def check(text: str) -> None:
        only_parse_errors(lambda: parse_text(text, "fuzz.json"))

    check()
