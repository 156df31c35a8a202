"""Property-based fuzzing of every parser: random and mutated inputs raise nothing but ParseError, and never hang.

Each example runs under a SIGALRM watchdog (a hang fails the test instead of stalling CI), and the example
counts keep the whole module to a few seconds; FUZZ_EXAMPLES=2000 FUZZ_RANDOM=1 runs a longer, fresh campaign.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from linear import assert_linear, watchdog
from test_parse_exports import ATOM, BIBTEX, CSL_JSON, CSV_SEMICOLON, JSON_PLAIN, JSONL, RIS

from assistant.api import DEMO_CORPUS
from assistant.corpus import SNIFFERS, decode, detect_format, parse_text
from assistant.corpus.exports import parse_csl_json
from assistant.corpus.records import clean_text, find_arxiv_id, find_doi
from assistant.corpus.scraped import SCRAPED_SNIFFERS
from assistant.errors import ParseError
from assistant.index.chunking import sentence_spans

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=list(HealthCheck), derandomize=not os.environ.get("FUZZ_RANDOM"))

PARSERS = {name: parse for name, _, parse in SNIFFERS} | {"csl-json": parse_csl_json}
REAL = Path(__file__).parent / "fixtures" / "real"
TEXTS = {"bibtex": BIBTEX, "ris": RIS, "csl-json": CSL_JSON, "json": JSON_PLAIN, "jsonl": JSONL, "csv": CSV_SEMICOLON,
         "arxiv-atom": ATOM} | {  # real exports (tests/fixtures/real/SOURCES.md) for the readers added with issue 17
    name: (REAL / file).read_text(encoding="utf-8-sig") for name, file in [
        ("medline", "pubmed_p1m.nbib"), ("wos", "wos_savedrecs.txt"), ("pubmed-xml", "pubmed_efetch.xml"),
        ("endnote-xml", "endnote_thesis.xml"), ("oai-pmh", "oai_pmh_arxiv_listrecords.xml"),
        ("zotero-rdf", "zotero_export.rdf"), ("zotero-api", "zotero_webapi.json"),
        ("arxiv-snapshot", "arxiv-metadata-oai-snapshot.sample.json"), ("openalex", "openalex_works_list.json"),
        ("semantic-scholar", "semantic_scholar_search.json")]}
SAMPLES = {name: (PARSERS[name], text) for name, text in TEXTS.items()}
SEED_PAGE = sorted(DEMO_CORPUS.iterdir())[2].read_text(encoding="utf-8")[:6000]
MARKUP = ["{", "}", "[", "]", "\\", '"', ",", "\n", "@", "<", ">", "&", "\ud800", "\x00", "\x1b", "[/]", "TY  - ",
          "ER  - ", "999999999999999999999999", "NaN", "Infinity", "null", "[[[[", "{{{{", "$", "%"]


def only_parse_errors(parse: Callable[[], object]) -> None:
    with watchdog():
        try:
            parse()
        except ParseError as error:
            assert "\n" not in str(error), "a parse error must be one line"


@st.composite
def mutated(draw: st.DrawFn, sample: str) -> str:
    """A valid sample cut, spliced, duplicated and salted with characters parsers treat specially."""
    text = sample
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["cut", "insert", "delete", "repeat", "nest"]))
        if action == "cut":
            text = text[:at]
        elif action == "insert":
            text = text[:at] + draw(st.sampled_from(MARKUP) | st.text(max_size=20)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 200)):]
        elif action == "repeat":
            text = text[:at] + text[at : at + 50] * draw(st.integers(2, 50)) + text[at:]
        else:
            depth = draw(st.integers(50, 3000))
            opener, closer = draw(st.sampled_from([("[", "]"), ("{", "}"), ("<a>", "</a>")]))
            text = text[:at] + opener * depth + "x" + closer * draw(st.integers(0, depth)) + text[at:]
    return text


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_parsers_survive_mutated_exports(name: str) -> None:
    parse, sample = SAMPLES[name]

    @FUZZ
    @given(text=mutated(sample))
    def check(text: str) -> None:
        only_parse_errors(lambda: parse(text, f"fuzz.{name}"))

    check()


CRASHERS = {  # inputs that broke a parser before issue 11, found by the attack run and by longer campaigns
    "deep arrays": "[" * 100_000 + "]" * 100_000,
    "deep objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "deep objects, one a line": ('{"a":' * 5_000 + "1" + "}" * 5_000 + "\n") * 2,
    "huge integer": '[{"id": ' + "9" * 1_000_000 + ', "abstract": "Words."}]',
    "lone surrogate": '[{"title": "\\ud800", "abstract": "Words \\udfff."}]',
    "CSL flat date parts": '[{"issued": {"date-parts": [2021, 3]}, "author": [42, null], "abstract": "Words."}]',
    "CSL null date parts": '[{"issued": {"date-parts": [null]}, "container-title": {"x": 1}, "abstract": "W."}]',
    "300 nested braces": "@article{k, title = {" + "{" * 300 + "x" + "}" * 300 + "}, abstract = {Words.}}",
    "RIS continuation after a broken tag": "TY  - JOUR\nAB  - x\nER  - \n\nTY\n  - CHAP\nN2  - y\nER  - \n",
    "CSV header of long lines": '"a\nb\nc",x\n1,2\n',
    "NaN and Infinity": '[{"id": NaN, "year": Infinity, "abstract": "Words."}]',
}


@pytest.mark.parametrize("crasher", sorted(CRASHERS))
def test_every_parser_survives_known_crashers(crasher: str) -> None:
    text = CRASHERS[crasher]
    for name, (parse, _) in SAMPLES.items():
        only_parse_errors(lambda parse=parse, name=name: parse(text, f"crasher.{name}"))
    only_parse_errors(lambda: parse_text(text, "crasher.txt"))


@FUZZ
@given(text=st.text(max_size=2000) | st.lists(st.sampled_from(MARKUP) | st.text(max_size=8), max_size=200).map("".join))
def test_every_parser_and_sniffer_survives_random_text(text: str) -> None:
    for _, sniff, parse in [*SNIFFERS, ("csl-json", lambda _: False, parse_csl_json)]:
        with watchdog():
            assert sniff(text) in (True, False)
        only_parse_errors(lambda parse=parse: parse(text, "random.txt"))
    only_parse_errors(lambda: parse_text(text, "random.txt"))


def test_every_registered_format_is_fuzzed_and_timed() -> None:
    """A new reader joins the fuzzing (a real sample) and the linear-time cases (many entries) by one line each."""
    registered = {name for name, _, _ in SNIFFERS}
    assert registered <= set(MANY_ENTRIES)
    assert registered - {name for name, _, _ in SCRAPED_SNIFFERS} <= set(SAMPLES)


@FUZZ
@given(text=mutated(SEED_PAGE))
def test_scraped_page_detection_and_parsing_survive_mutations(text: str) -> None:
    only_parse_errors(lambda: parse_text(text, "page.txt"))


@FUZZ
@given(data=st.binary(max_size=3000))
def test_decoding_then_parsing_random_bytes(data: bytes) -> None:
    only_parse_errors(lambda: parse_text(decode(data), "bytes.bin"))


# ---------------------------------------------------------------- linear time
# Every parser and sniffer must run in time linear in its input: a quadratic regex or loop lets one crafted file
# hold the ingest lock for minutes (a 61 KB scraped line took 57 s; an RIS file with 100,000 blank lines, 37 s in
# the BibTeX sniffer). A new parser is covered by adding its many-entries input to MANY_ENTRIES (one line); its
# sniffer is covered through detect_format.


PROSE_LINE = "We study how attention scales with the length of the sequence and " * 4  # 48 words: prose
PAGE = f"Main Title\n12 (3)\nPublication date 2021\n{PROSE_LINE}\n"
_ATOM_ENTRY = "<entry><id>http://arxiv.org/abs/2101.{i:05d}</id><title>T{i}</title><summary>Words.</summary></entry>"
MANY_ENTRIES: dict[str, Callable[[int], str]] = {  # format -> n valid entries, each with the abstract "Words."
    "bibtex": lambda n: "".join(
        f"@article{{k{i}, title = {{T{i}}}, author = {{Doe, J. and Roe, R.}}, year = {{2020}}, "
        f"abstract = {{Words.}}}}\n"
        for i in range(n)
    ),
    "ris": lambda n: "TY  - JOUR\nTI  - T\nAU  - Doe, J.\nPY  - 2020\nAB  - Words.\nER  - \n\n" * n,
    "csl-json": lambda n: (
        "["
        + ",".join(
            f'{{"id": "k{i}", "title": "T{i}", "issued": {{"date-parts": [[2020, 1, 2]]}},'
            f' "author": [{{"family": "Doe"}}], "abstract": "Words."}}'
            for i in range(n)
        )
        + "]"
    ),
    "json": lambda n: "[" + ",".join(f'{{"id": "{i}", "title": "T{i}", "abstract": "Words."}}' for i in range(n)) + "]",
    "jsonl": lambda n: "".join(f'{{"id": "{i}", "title": "T{i}", "abstract": "Words."}}\n' for i in range(n)),
    "csv": lambda n: "title,abstract,year\n" + "".join(f"T{i},Words.,2020\n" for i in range(n)),
    "arxiv-atom": lambda n: (
        '<feed xmlns="http://www.w3.org/2005/Atom">' + "".join(_ATOM_ENTRY.format(i=i) for i in range(n)) + "</feed>"
    ),
    "abstract-lines": lambda n: f"Abstract: Words. {PROSE_LINE}\n" * n,
    "paper-page": lambda n: PAGE + f"{n} - Ann Lee, Bo Chen 2020\nWords. {PROSE_LINE}\n" * n,
    "daily-papers": lambda n: f"Daily Papers\nT\nWords. {PROSE_LINE}\n• 3 authors\n·\nApr 25, 2023\n" * n,
    "author-page": lambda n: f"Collaborating Authors\nAnn Lee\nT\narXiv.org cs.LG\nWords. {PROSE_LINE}\n" * n,
}
_PUBMED = ("<PubmedArticle><MedlineCitation><PMID>{i}</PMID><Article><ArticleTitle>T{i}</ArticleTitle><Abstract>"
           "<AbstractText>Words.</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>")
_ENDNOTE = ('<record><ref-type name="Journal Article">17</ref-type><titles><title>T{i}</title></titles>'
            "<abstract>Words.</abstract></record>")
_OAI = ("<record><header><identifier>oai:arXiv.org:0704.{i:04d}</identifier></header><metadata>"
        '<arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>0704.{i:04d}</id><title>T{i}</title>'
        "<abstract>Words.</abstract></arXiv></metadata></record>")
_RDF_HEAD = ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
             'xmlns:z="http://www.zotero.org/namespaces/export#" xmlns:dc="http://purl.org/dc/elements/1.1/" '
             'xmlns:bib="http://purl.org/net/biblio#" xmlns:dcterms="http://purl.org/dc/terms/">')
_RDF_ITEM = ('<bib:Article rdf:about="#item_{i}"><z:itemType>journalArticle</z:itemType><dc:title>T{i}</dc:title>'
             "<dcterms:abstract>Words.</dcterms:abstract></bib:Article>")
_SNAPSHOT = ('{{"id": "0704.{i:04d}", "authors": "J. Doe", "title": "T{i}", "abstract": "Words.", "versions": '
             '[{{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}}], "authors_parsed": [["Doe", "J.", ""]], '
             '"categories": "cs.LG", "journal-ref": null, "doi": null, "update_date": "2008-11-13"}}\n')
_OPENALEX = ('{{"id": "https://openalex.org/W{i}", "display_name": "T{i}", "publication_year": 2020, '
             '"authorships": [], "abstract_inverted_index": {{"Words.": [0]}}}}\n')
MANY_ENTRIES |= {  # the formats added with issue 17's readers
    "medline": lambda n: "".join(f"PMID- {i}\nTI  - T{i}\nAB  - Words.\nFAU - Doe, Jane\n\n" for i in range(n)),
    "wos": lambda n: (
        "FN Clarivate Analytics Web of Science\nVR 1.0\n"
        + "".join(f"PT J\nAU Doe, J\nTI T{i}\nAB Words.\nPY 2020\nUT WOS:{i:015d}\nER\n\n" for i in range(n))
        + "EF\n"
    ),
    "pubmed-xml": lambda n: (
        "<PubmedArticleSet>" + "".join(_PUBMED.format(i=i) for i in range(n)) + "</PubmedArticleSet>"
    ),
    "endnote-xml": lambda n: "<xml><records>" + "".join(_ENDNOTE.format(i=i) for i in range(n)) + "</records></xml>",
    "oai-pmh": lambda n: (
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords>'
        + "".join(_OAI.format(i=i) for i in range(n))
        + "</ListRecords></OAI-PMH>"
    ),
    "zotero-rdf": lambda n: _RDF_HEAD + "".join(_RDF_ITEM.format(i=i) for i in range(n)) + "</rdf:RDF>",
    "zotero-api": lambda n: (
        "["
        + ",".join(
            f'{{"key": "K{i:07d}", "data": {{"key": "K{i:07d}", "itemType": '
            f'"journalArticle", "title": "T{i}", "abstractNote": "Words."}}}}'
            for i in range(n)
        )
        + "]"
    ),
    "arxiv-snapshot": lambda n: "".join(_SNAPSHOT.format(i=i) for i in range(n)),
    "openalex": lambda n: "".join(_OPENALEX.format(i=i) for i in range(n)),
    "semantic-scholar": lambda n: (
        f'{{"total": {n}, "data": ['
        + ",".join(f'{{"paperId": "{i:040d}", "title": "T{i}", "abstract": "Words.", "year": 2020}}' for i in range(n))
        + "]}"
    ),
}


GENERIC_SHAPES: dict[str, Callable[[int], str]] = {  # run on every parser, whatever its format
    "long line of spaces": lambda n: PAGE + "1 - a" + " " * n + "x\n" + PROSE_LINE + "\n",
    "deep brackets": lambda n: "[" * n + "x" + "]" * n,
    "deep objects": lambda n: '{"a":' * n + "1" + "}" * n,
    "deep XML": lambda n: '<feed xmlns="http://www.w3.org/2005/Atom">' + "<a>" * n + "x" + "</a>" * n + "</feed>",
    "deep BibTeX braces": lambda n: "@article{k, title = {" + "{" * n + "x" + "}" * n + "}, abstract = {Words.}}",
    "unclosed tags": lambda n: '[{"abstract": "' + '<a x=\\"' * n + '"}]',
    "unclosed feed tags": lambda n: "<feed " * n,
}


def _format_shapes(name: str) -> dict[str, Callable[[int], str]]:
    """Inputs in the format's own shape: many entries, runs of blank lines between its lines, one long field."""
    many = MANY_ENTRIES[name]
    return {
        "many entries": many,
        "blank lines": lambda n: many(3).replace("\n", "\n" + "\n" * n) + "\n" * n,
        "long field": lambda n: many(1).replace("Words.", "Words " * n + "end."),
        "long field of spaces": lambda n: many(1).replace("Words.", "a" + " " * n + "b."),
    }


PARSE = {name: parse for name, _, parse in SNIFFERS} | {"csl-json": parse_csl_json}


def _quietly(parse: Callable[[str, str], object]) -> Callable[[str], object]:
    """A parser run for its time: refusing hostile input with a ParseError is a fine outcome, if quick."""
    def run(text: str) -> object:
        try:
            return parse(text, "timed.txt")
        except ParseError as error:
            return error
    return run


RUNS = {name: _quietly(parse) for name, parse in PARSE.items()} | {"detect_format": _quietly(detect_format)}
HELPER_SHAPES = [  # the regexes parsers share: markup cleaning, ids, the sentence splitter
    (clean_text, "unclosed tags", lambda n: '<a x="' * n),
    (clean_text, "tag with spaces", lambda n: "<a" + " " * n),
    (sentence_spans, "run of spaces after a stop", lambda n: "Words." + " " * n + "x"),
    (sentence_spans, "run of stops", lambda n: ". " * n),
    (find_doi, "DOI-like tokens", lambda n: "10.1234/" * n),
    (find_arxiv_id, "arXiv-like prefixes", lambda n: "arxiv: " * n + "abs/" + "a" * n),
]
FORMAT_EXTRA_SHAPES = {  # format -> inputs only that format treats specially
    "bibtex": {"long LaTeX field": lambda n: MANY_ENTRIES["bibtex"](1).replace("Words.", "{\\'e} $\\alpha$ " * n)},
}
LINEAR_CASES = {  # case id -> (make_input, run)
    **{f"{target}: {shape}": (make, run) for target, run in RUNS.items() for shape, make in GENERIC_SHAPES.items()},
    **{f"{target}: {name} {shape}": (make, RUNS[target]) for name in MANY_ENTRIES
       for shape, make in (_format_shapes(name) | FORMAT_EXTRA_SHAPES.get(name, {})).items()
       for target in (name, "detect_format") if target in RUNS},
    **{f"{helper.__name__}: {shape}": (make, helper) for helper, shape, make in HELPER_SHAPES},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(LINEAR_CASES))
def test_parsers_and_sniffers_run_in_linear_time(case: str) -> None:
    assert_linear(*LINEAR_CASES[case])


@pytest.mark.slow
def test_the_linear_time_check_fails_a_quadratic_parser() -> None:
    def quadratic(text: str) -> int:  # scans the rest of the text from every position: n^2/2 characters
        return sum(text.count("a", start) for start in range(len(text)))

    with pytest.raises(pytest.fail.Exception, match="not linear"):
        assert_linear(lambda n: "a" * n, quadratic)
