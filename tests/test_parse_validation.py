"""What parsers refuse or doubt: BibTeX @string macros and '#' concatenation, impossible dates (kept as written,
undated, with a warning naming the entry), and fields too big to be one entry's."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.corpus import parse_file
from assistant.corpus.exports import (
    MAX_FIELD_CHARS,
    _year_and_date,
    parse_arxiv_atom,
    parse_bibtex,
    parse_csl_json,
    parse_json,
    parse_jsonl,
    parse_ris,
)
from assistant.errors import ParseError
from assistant.index.ingest import IngestReport

REAL = Path(__file__).parent / "fixtures" / "real"


def test_real_bib_with_string_macros_and_concatenation() -> None:
    """BibTeX's own example file: booktitle = "Proc. Fifteenth Annual acm" # stoc, with stoc an @STRING."""
    result = parse_file(REAL / "xampl-strings-excerpt.bib").result
    by_title = {paper.title: paper for paper in result.papers}
    talk = by_title["On Notions of Information Transfer in VLSI Circuits"]
    assert talk.venue == "Proc. Fifteenth Annual acm Symposium on the Theory of Computing"
    assert talk.authors == ["Alfred V. Oaho", "Jeffrey D. Ullman", "Mihalis Yannakakis"]
    assert (talk.year, talk.date, talk.abstract) == (1983, None, "")
    assert "Proc. Fifteenth Annual Symposium on the Theory of Computing" in by_title  # a title made by '#'
    article = by_title["The Gnats and Gnus Document Preparation System"]
    assert (article.authors, article.year, article.venue) == (["Leslie A. Aamport"], 1986, "G-Animal's Journal")
    assert not any("#" in (paper.venue or "") + paper.title for paper in result.papers)


def test_string_macros_nest_concatenate_and_keep_undefined_names() -> None:
    text = """@string{abs = "We study sparse attention"}
@STRING{Full = ABS # { in depth, } # "at scale"}
@string{jml = {Journal of {ML} Research}}
@article{k1, title = "Sparse" # { } # "Attention", journal = jml, abstract = abs # " and more", year = 2020}
@article{k2, title = {Nested}, abstract = full # ".", journal = undefinedname, year = "20" # "21"}
@article{k3, title = {Literal}, abstract = {abs # " stays, inside braces"}}
"""
    first, second, third = parse_bibtex(text, "m.bib").papers
    assert (first.title, first.abstract, first.venue, first.year) == (
        "Sparse Attention", "We study sparse attention and more", "Journal of ML Research", 2020)
    assert (second.abstract, second.venue, second.year) == (
        "We study sparse attention in depth, at scale.", "undefinedname", 2021)
    assert third.abstract == 'abs # " stays, inside braces"'


def test_macros_that_expand_exponentially_are_refused_in_one_line() -> None:
    levels = "".join(f"@string{{a{i + 1} = a{i} # a{i} # a{i} # a{i}}}\n" for i in range(15))
    text = '@string{a0 = "0123456789"}\n' + levels + "@article{k, title = {T}, abstract = a15}\n"
    with pytest.raises(ParseError, match=r"@string 'a\d+' expand past the size limit") as error:
        parse_bibtex(text, "laughs.bib")
    assert "\n" not in str(error.value)


def test_many_references_to_one_long_macro_are_refused() -> None:
    text = f'@string{{m = "{"x" * (MAX_FIELD_CHARS - 10)}"}}\n' + "".join(
        f"@article{{k{i}, title = {{T{i}}}, abstract = m}}\n" for i in range(50))
    with pytest.raises(ParseError, match="expand past the size limit"):
        parse_bibtex(text, "copies.bib")


@pytest.mark.parametrize(("parse", "text"), [
    (parse_bibtex, "@article{big, title = {Big}, abstract = {%s}}\n@article{ok, title = {Fine}, abstract = {Fine.}}"),
    (parse_json, '[{"id": "big", "title": "Big", "abstract": "%s"}, {"title": "Fine", "abstract": "Fine."}]'),
    (parse_ris, "TY  - JOUR\nTI  - Big\nAB  - %s\nER  - \nTY  - JOUR\nTI  - Fine\nAB  - Fine.\nER  - \n"),
])
def test_an_entry_with_a_field_over_the_limit_is_skipped_by_name(parse, text: str) -> None:
    result = parse(text.replace("%s", "word " * (MAX_FIELD_CHARS // 5 + 1)), "big.txt")
    assert [paper.title for paper in result.papers] == ["Fine"]
    (skipped,) = result.skipped
    assert skipped.position == 1
    assert skipped.reason.startswith("its abstract has 1,000,00")  # RIS drops the trailing space
    assert skipped.reason.endswith(f"characters, over the {MAX_FIELD_CHARS:,} limit for one field")
    assert skipped.label == ("big" if parse is parse_bibtex else None)


@pytest.mark.parametrize(("value", "expected"), [
    ("2019/05/01", (2019, "2019-05-01")),
    ("2021-01-04T18:59:59Z", (2021, "2021-01-04")),
    ("2020-02-29", (2020, "2020-02-29")),  # a leap day
    ("2019///", (2019, None)),
    ("2019-00-00 2019", (2019, None)),  # Zotero's stored form of a bare year: 00 is an unknown part
    ("2019-07-00", (2019, "2019-07")),
    ("2020-123", (2020, None)),  # three digits are no month
    ("2020-13-45", (None, "2020-13-45")),
    ("2021-02-29", (None, "2021-02-29")),
    ("2020-00-15", (None, "2020-00-15")),  # a day without a month
    ("5000", (None, "5000")),
    ("0999", (None, "0999")),
    ("in press", (None, None)),
])
def test_year_and_date_keep_impossible_dates_as_written_and_undated(value: str, expected: tuple) -> None:
    assert _year_and_date(value) == expected


IMPOSSIBLE = [
    (
        parse_bibtex,
        "@article{k, title = {Dated}, abstract = {A.}, date = {2020-13-45}}",
        "'2020-13-45' (no such month)",
    ),
    (parse_ris, "TY  - JOUR\nTI  - Dated\nDA  - 2021/02/29\nER  - \n", "'2021/02/29' (no such day)"),
    (
        parse_csl_json,
        '[{"title": "Dated", "issued": {"date-parts": [[2020, 13, 45]]}}]',
        "'2020-13-45' (no such month)",
    ),
    (parse_csl_json, '[{"title": "Dated", "issued": {"date-parts": [[5000]]}}]', "'5000' (year outside 1000-2100)"),
    (parse_json, '[{"title": "Dated", "date": "2020-00-15"}]', "'2020-00-15' (no such day)"),
    (parse_jsonl, '{"title": "Dated", "year": "5000"}\n', "'5000' (year outside 1000-2100)"),
    (
        parse_arxiv_atom,
        (
            '<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>Dated</title>'
            "<published>2020-02-30T10:00:00Z</published></entry></feed>"
        ),
        "'2020-02-30T10:00:00Z' (no such day)",
    ),
]


@pytest.mark.parametrize(("parse", "text", "problem"), IMPOSSIBLE)
def test_an_impossible_date_is_kept_as_written_undated_and_warned_about(parse, text: str, problem: str) -> None:
    result = parse(text, "dated.txt")
    (paper,) = result.papers
    assert paper.year is None
    assert paper.date == problem.split("'")[1]
    assert result.warnings == [f"entry 1 ('Dated'): impossible date {problem}: kept as written, treated as undated"]


def test_a_possible_date_gives_no_warning() -> None:
    result = parse_csl_json('[{"title": "Dated", "issued": {"date-parts": [[2020, 2, 29]]}}]', "ok.json")
    assert (result.papers[0].year, result.papers[0].date, result.warnings) == (2020, "2020-02-29", [])


def test_ingest_report_names_the_file_and_entry_of_each_warning() -> None:
    result = parse_csl_json(IMPOSSIBLE[2][1], "lib.json")
    report = IngestReport()
    report.count_parsed("lib.json", result, len(result.papers))
    assert report.warnings == [
        "lib.json: entry 1 ('Dated'): impossible date '2020-13-45' (no such month): kept as written, treated as undated"
    ]


def test_a_streamed_file_reports_its_warnings_too(tmp_path) -> None:
    from assistant import Assistant

    lines = tmp_path / "dated.jsonl"
    lines.write_text('{"id": "a", "title": "Dated", "date": "2020-13-45"}\n{"id": "b", "title": "Fine"}\n')
    report = Assistant(home=tmp_path / "home").ingest([lines])
    assert report.new == 2 and any("entry 1 ('Dated'): impossible date '2020-13-45'" in w for w in report.warnings)
