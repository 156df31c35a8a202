"""Export parsers on realistic, ugly samples: LaTeX, HTML entities, unicode, odd delimiters, broken files."""

from __future__ import annotations

import pytest

from assistant.corpus.exports import (
    EXPORT_SNIFFERS,
    parse_arxiv_atom,
    parse_bibtex,
    parse_csl_json,
    parse_csv,
    parse_json,
    parse_jsonl,
    parse_ris,
)
from assistant.corpus.records import Skipped, SourceRef
from assistant.errors import ParseError

BIBTEX = r"""% Exported from JabRef 5.9
@string{neurips = "Advances in Neural Information Processing Systems"}
@comment{jabref-meta: databaseType:bibtex;}

@inproceedings{mueller2020gpu,
  title     = {{GPU}-Accelerated Schr{\"{o}}dinger Solvers for {\'E}lectron Dynamics},
  author    = {M{\"u}ller, J{\"o}rg and Caf{\'e}, Ren{\'e} and {National Institute of Standards and Technology}},
  booktitle = neurips,
  year      = {2020},
  pages     = {1--10},
  doi       = {10.5555/ABC\_123},
  abstract  = {We accelerate $\alpha$-particle simulations by 5% on {GPU}s \& TPUs -- a 10--20$\times$
               speed-up over the {\"{o}}ld baseline.},
}

@Article{Smith2021,
  Title         = {Attention for {$\beta$}-Decay: 深度学习 meets {\it physics}},
  Author        = {Smith, John and Jane Doe},
  Journal       = {Physical Review D},
  Year          = 2021,
  Eprint        = {2101.00001},
  ArchivePrefix = {arXiv},
  Abstract      = "We use &lt;i&gt;transformers&lt;/i&gt; and H<sub>2</sub>O &amp; {\"U}ber-models."
}

@book{nobody2019,
  title  = {A Book Without an Abstract},
  author = {Nobody, A.},
  year   = {2019}
}
"""

RIS = (
    "Provider: Example Publisher\r\n"
    "\r\n"
    "TY  - JOUR\r\n"
    "TI  - Sparse &amp; Efficient Attention for\r\n"
    "      Long Documents\r\n"
    "AU  - García, José\r\n"
    "AU  - Wang, Xiu\r\n"
    "PY  - 2019///\r\n"
    "DA  - 2019/05/01\r\n"
    "JO  - Journal of Machine Learning Research\r\n"
    "DO  - 10.1234/JMLR.2019.001\r\n"
    "UR  - https://jmlr.org/papers/v20/19-001.html\r\n"
    "AB  - We propose a sparse attention pattern whose cost grows\r\n"
    "linearly with the sequence length (α = 0.5).\r\n"
    "\r\n"
    "  Experiments on 長文 documents confirm a 3× speed-up.\r\n"
    "ER  - \r\n"
    "\r\n"
    "TY  - CHAP\r\n"
    "T1  - Graph Neural Networks: A Survey\r\n"
    "A1  - Müller, Anna\r\n"
    "Y1  - 2021/03/15/\r\n"
    "T2  - Handbook of Graph Learning\r\n"
    "N2  - A survey of message passing &lt;i&gt;and&lt;/i&gt; spectral methods.\r\n"
    "ER  - \r\n"
    "\r\n"
    "TY  - BOOK\r\n"
    "TI  - A Book Without an Abstract\r\n"
    "AU  - Nobody, A.\r\n"
    "PY  - 2018\r\n"
    "ER  - \r\n"
)

CSL_JSON = """[
  {"id": "vaswani2017attention", "type": "paper-conference", "title": "Attention is <i>All</i> you Need",
   "author": [{"family": "Vaswani", "given": "Ashish"}, {"family": "Shazeer", "given": "Noam"}],
   "issued": {"date-parts": [[2017, 12]]}, "container-title": "Advances in Neural Information Processing Systems",
   "URL": "https://arxiv.org/abs/1706.03762",
   "abstract": "The dominant sequence transduction models are based on complex recurrent networks."},
  {"id": "ipcc2021", "type": "report", "title": "Climate Change 2021: The Physical Science Basis",
   "author": [{"literal": "Intergovernmental Panel on Climate Change"}],
   "issued": {"date-parts": [["2021"]]}, "DOI": "10.1017/9781009157896",
   "abstract": "&Eacute;valuation of the Earth’s climate — ΔT ≈ 1.1 °C."},
  {"id": "draft", "type": "article", "title": "Untitled draft", "issued": {"date-parts": [[2024]]}}
]"""

JSON_PLAIN = """[
  {"title": "Spectral Clustering Revisited",
   "abstract": "We revisit spectral clustering with &lt;sub&gt;k&lt;/sub&gt;-NN graphs.",
   "authors": ["Ng, Andrew", "Jordan, Michael I."], "year": "2001", "venue": "NeurIPS", "arxiv": "arXiv:0711.0189v1"},
  {"title": "Missing abstract", "authors": []},
  "not an object"
]"""

JSONL = (
    '{"_id": "4983", "title": "Microstructural development of human newborn cerebral white matter", '
    '"text": "Alterations of the architecture of cerebral white matter in the developing brain.", "metadata": {}}\n'
    "\n"
    '{"id": 77, "title": "Ca\\u0301lculo &amp; <b>Bayes</b>", '
    '"summary": "Un estudio bayesiano \\u2028— 贝叶斯推断.", '
    '"authors": "Pérez, Ana and Ruiz, Luis", "published": "2023-02-28T00:00:00Z", "journal": "Stat. Sci."}\n'
    '{"title": "Only a title"}\n'
)

CSV_SEMICOLON = (
    "Name;Summary Text;Authors;Year;DOI;Journal\n"
    '"Quantum Error Correction; a Primer";"Surface codes protect qubits.\nWe review thresholds for\n'
    '""noisy"" hardware &amp; decoders.";"Gottesman, Daniel; Preskill, John";2016;10.1103/RevModPhys.88.041001;'
    "Rev. Mod. Phys.\n"
    "Élan vital of β-sheets;Protein β-sheets fold <i>in vivo</i> faster than predicted.;"
    "Zhang Wei and Li Na;2022;;Nature\n"
    "No abstract here;;Someone;2020;;\n"
)

ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"
      xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title type="html">ArXiv Query: search_query=all:graphene</title>
  <id>http://arxiv.org/api/cHxbiOdZaP56ODnBPIenZhzg5f8</id>
  <opensearch:totalResults>2</opensearch:totalResults>
  <entry>
    <id>http://arxiv.org/abs/2101.00001v2</id>
    <updated>2021-01-04T18:59:59Z</updated>
    <published>2021-01-01T10:00:00Z</published>
    <title>Electron   Transport in
      Twisted Bilayer Graphene</title>
    <summary>  We study electron transport in twisted bilayer graphene
near the magic angle θ ≈ 1.1° &amp; find superconductivity.
</summary>
    <author><name>Pablo Jarillo-Herrero</name></author>
    <author><name>Yuan Cao</name><arxiv:affiliation>MIT</arxiv:affiliation></author>
    <arxiv:doi>10.1038/nature26160</arxiv:doi>
    <link title="doi" href="http://dx.doi.org/10.1038/nature26160" rel="related"/>
    <link href="http://arxiv.org/abs/2101.00001v2" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2101.00001v2" rel="related" type="application/pdf"/>
    <arxiv:primary_category term="cond-mat.mes-hall" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cond-mat.supr-con" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
  <entry>
    <id>http://arxiv.org/abs/hep-th/9711200v3</id>
    <published>1997-11-27T19:23:41Z</published>
    <title>The Large N Limit of Superconformal Field Theories and Supergravity</title>
    <summary>We show that the large N limit of certain conformal field theories includes gravity.</summary>
    <author><name>Juan M. Maldacena</name></author>
    <link href="http://arxiv.org/abs/hep-th/9711200v3" rel="alternate" type="text/html"/>
    <arxiv:primary_category term="hep-th" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
</feed>
"""

PROSE = """Transformers have become the dominant architecture for language modelling, and their
attention mechanism scales quadratically with sequence length; many papers try to fix that.
We were unable to reproduce the results, however, and we discuss why in this note.
"""


def _by_title(result):
    return {paper.title: paper for paper in result.papers}


# ---------------------------------------------------------------- BibTeX


def test_bibtex_decodes_latex_and_resolves_strings():
    result = parse_bibtex(BIBTEX, "refs.bib")
    assert result.format == "bibtex"
    gpu, attention, _ = result.papers

    assert gpu.title == "GPU-Accelerated Schrödinger Solvers for Électron Dynamics"
    assert gpu.authors == ["Jörg Müller", "René Café", "National Institute of Standards and Technology"]
    assert gpu.venue == "Advances in Neural Information Processing Systems"
    assert gpu.year == 2020
    assert gpu.doi == "10.5555/abc_123"
    assert gpu.paper_id == "doi:10.5555/abc_123"  # never the user-local key "mueller2020gpu"
    assert gpu.abstract == (
        "We accelerate α-particle simulations by 5% on GPUs & TPUs – a 10–20× speed-up over the öld baseline."
    )
    assert gpu.sources == [SourceRef(file="refs.bib", format="bibtex", position=1)]

    assert attention.title == "Attention for β-Decay: 深度学习 meets physics"
    assert attention.authors == ["John Smith", "Jane Doe"]
    assert attention.arxiv_id == "2101.00001"
    assert attention.paper_id == "arxiv:2101.00001"
    assert attention.venue == "Physical Review D"
    assert attention.abstract == "We use transformers and H2O & Über-models."


def test_bibtex_entry_without_abstract_is_a_paper_without_abstract():
    result = parse_bibtex(BIBTEX, "refs.bib")
    book = result.papers[2]
    assert (book.title, book.authors, book.year, book.abstract) == (
        "A Book Without an Abstract",
        ["A. Nobody"],
        2019,
        "",
    )
    assert not book.has_abstract and book.has_abstract is not result.papers[0].has_abstract
    assert result.skipped == []


def test_bibtex_entry_with_nothing_usable_is_skipped_by_its_key():
    text = "@misc{emptyentry2020, author={Someone}, year={2020}}\n@misc{ok, title={Kept}}\n"
    result = parse_bibtex(text, "x.bib")
    assert [p.title for p in result.papers] == ["Kept"]
    assert result.skipped == [Skipped(position=1, reason="no title, abstract, DOI or arXiv id", label="emptyentry2020")]


def test_entry_with_only_a_doi_is_a_paper_named_by_it():
    (paper,) = parse_bibtex("@misc{k, doi={10.1000/XYZ.1}}", "x.bib").papers
    assert (paper.paper_id, paper.title, paper.title_derived) == ("doi:10.1000/xyz.1", "untitled (10.1000/xyz.1)", True)


def test_bibtex_bare_percent_and_ampersand_survive_with_and_without_latex():
    text = (
        "@article{a, title={Plain}, abstract={Recall rose 5% & precision 2%, at no cost.}}\n"
        "@article{b, title={Marked}, abstract={Recall rose 5% & precision {\\'e}tait 2%, at no cost.}}\n"
    )
    plain, marked = parse_bibtex(text, "x.bib").papers
    assert plain.abstract == "Recall rose 5% & precision 2%, at no cost."
    assert marked.abstract == "Recall rose 5% & precision était 2%, at no cost."


def test_bibtex_eprint_is_only_an_arxiv_id_under_arxiv_prefix():
    text = "@article{k, title={T}, abstract={A}, eprint={12345678}, eprinttype={pubmed}}"
    assert parse_bibtex(text, "x.bib").papers[0].arxiv_id is None


def test_bibtex_malformed_entry_fails_the_file_and_names_it():
    # an unclosed brace in the middle entry: bibtexparser would resume at the next '@' and drop it quietly
    broken = BIBTEX.replace("meets {\\it physics}},", "meets {\\it physics},")
    with pytest.raises(ParseError) as excinfo:
        parse_bibtex(broken, "refs.bib")
    message = str(excinfo.value)
    assert message.startswith("malformed BibTeX entry near line 16 ('@Article{Smith2021,'): ")
    assert "\n" not in message


def test_bibtex_without_entries_is_an_error():
    with pytest.raises(ParseError, match="no BibTeX entries"):
        parse_bibtex("% only a comment\n", "empty.bib")


# ---------------------------------------------------------------- RIS


def test_ris_joins_continuation_lines_and_handles_crlf():
    result = parse_ris(RIS, "export.ris")
    assert result.format == "ris"
    sparse, survey, _ = result.papers

    assert sparse.title == "Sparse & Efficient Attention for Long Documents"
    assert sparse.abstract == (
        "We propose a sparse attention pattern whose cost grows linearly with the sequence length (α = 0.5). "
        "Experiments on 長文 documents confirm a 3× speed-up."
    )
    assert sparse.authors == ["José García", "Xiu Wang"]
    assert (sparse.year, sparse.date) == (2019, "2019-05-01")
    assert sparse.venue == "Journal of Machine Learning Research"
    assert sparse.url == "https://jmlr.org/papers/v20/19-001.html"
    assert sparse.paper_id == "doi:10.1234/jmlr.2019.001"

    # alternative tags: T1, A1, Y1, T2, N2
    assert survey.title == "Graph Neural Networks: A Survey"
    assert survey.authors == ["Anna Müller"]
    assert (survey.year, survey.date) == (2021, "2021-03-15")
    assert survey.venue == "Handbook of Graph Learning"
    assert survey.abstract == "A survey of message passing and spectral methods."
    assert survey.paper_id.startswith("t:")

    book = result.papers[2]
    assert (book.title, book.year, book.has_abstract) == ("A Book Without an Abstract", 2018, False)
    assert result.skipped == []


def test_ris_record_missing_its_end_tag_is_not_lost():
    unterminated = RIS.replace("ER  - \r\n\r\nTY  - CHAP", "TY  - CHAP")
    result = parse_ris(unterminated, "export.ris")
    assert [paper.title for paper in result.papers] == [
        "Sparse & Efficient Attention for Long Documents",
        "Graph Neural Networks: A Survey",
        "A Book Without an Abstract",
    ]
    assert result.papers[1].authors == ["Anna Müller"]  # not merged into the first record


def test_ris_rejects_text_that_is_not_ris():
    with pytest.raises(ParseError, match="not RIS"):
        parse_ris(PROSE, "notes.ris")


# ---------------------------------------------------------------- CSL-JSON and JSON


def test_csl_json_date_parts_and_literal_authors():
    result = parse_csl_json(CSL_JSON, "library.json")
    assert result.format == "csl-json"
    attention, ipcc, draft = result.papers

    assert attention.title == "Attention is All you Need"
    assert attention.authors == ["Ashish Vaswani", "Noam Shazeer"]
    assert (attention.year, attention.date) == (2017, "2017-12")
    assert attention.venue == "Advances in Neural Information Processing Systems"
    assert attention.paper_id == "arxiv:1706.03762"  # from the URL; the citation key is not an id

    assert ipcc.authors == ["Intergovernmental Panel on Climate Change"]
    assert (ipcc.year, ipcc.date) == (2021, None)
    assert ipcc.paper_id == "doi:10.1017/9781009157896"
    assert ipcc.abstract == "Évaluation of the Earth’s climate — ΔT ≈ 1.1 °C."

    assert (draft.title, draft.year, draft.abstract) == ("Untitled draft", 2024, "")
    assert result.skipped == []


def test_json_array_of_csl_items_is_parsed_as_csl():
    result = parse_json(CSL_JSON, "library.json")
    assert result.format == "csl-json"
    assert [paper.paper_id for paper in result.papers][:2] == ["arxiv:1706.03762", "doi:10.1017/9781009157896"]
    assert [paper.has_abstract for paper in result.papers] == [True, True, False]


def test_json_array_of_plain_records():
    result = parse_json(JSON_PLAIN, "papers.json")
    assert result.format == "json"
    paper, missing = result.papers
    assert (missing.title, missing.has_abstract) == ("Missing abstract", False)
    assert paper.title == "Spectral Clustering Revisited"
    assert paper.abstract == "We revisit spectral clustering with k-NN graphs."
    assert paper.authors == ["Andrew Ng", "Michael I. Jordan"]
    assert paper.year == 2001
    assert paper.venue == "NeurIPS"
    assert paper.arxiv_id == "0711.0189"
    assert paper.paper_id == "arxiv:0711.0189"
    assert result.skipped == [Skipped(position=3, reason="not a JSON object")]


@pytest.mark.parametrize(
    ("text", "message"),
    [('{"title": "x"}', "expected a JSON array"), ('[{"title": "x",}]', "invalid JSON at line 1, column 16")],
)
def test_json_file_level_errors(text, message):
    with pytest.raises(ParseError, match=message):
        parse_json(text, "bad.json")


# ---------------------------------------------------------------- JSONL


def test_jsonl_keeps_beir_ids_and_maps_aliases():
    result = parse_jsonl(JSONL, "corpus.jsonl")
    assert result.format == "jsonl"
    beir, bayes, title_only = result.papers

    assert beir.paper_id == "4983"
    assert beir.title == "Microstructural development of human newborn cerebral white matter"
    assert beir.abstract == "Alterations of the architecture of cerebral white matter in the developing brain."

    assert bayes.paper_id == "77"
    assert bayes.title == "Cálculo & Bayes"  # combining accent NFC-normalized, entity and tag removed
    assert bayes.abstract == "Un estudio bayesiano — 贝叶斯推断."  # a U+2028 inside a string is not a line break
    assert bayes.authors == ["Ana Pérez", "Luis Ruiz"]
    assert (bayes.year, bayes.date) == (2023, "2023-02-28")
    assert bayes.venue == "Stat. Sci."

    assert (title_only.title, title_only.abstract, title_only.sources[0].position) == (
        "Only a title",
        "",
        3,
    )  # records,
    assert result.skipped == []  # not lines, are counted


def test_jsonl_bad_line_names_its_line_number():
    text = '{"_id": "1", "text": "fine"}\n\n{"_id": "2", "text": "unterminated\n'
    with pytest.raises(ParseError, match=r"invalid JSON on line 3\b"):
        parse_jsonl(text, "corpus.jsonl")


# ---------------------------------------------------------------- CSV


def test_csv_semicolons_quoted_newlines_and_custom_mapping():
    result = parse_csv(CSV_SEMICOLON, "sheet.csv", mapping={"abstract": "Summary Text", "title": "name"})
    assert result.format == "csv"
    qec, beta, no_abstract = result.papers

    assert qec.title == "Quantum Error Correction; a Primer"
    assert qec.abstract == 'Surface codes protect qubits. We review thresholds for "noisy" hardware & decoders.'
    assert qec.authors == ["Daniel Gottesman", "John Preskill"]
    assert qec.year == 2016
    assert qec.venue == "Rev. Mod. Phys."
    assert qec.paper_id == "doi:10.1103/revmodphys.88.041001"

    assert beta.title == "Élan vital of β-sheets"
    assert beta.abstract == "Protein β-sheets fold in vivo faster than predicted."
    assert beta.authors == ["Zhang Wei", "Li Na"]
    assert beta.doi is None

    assert (no_abstract.title, no_abstract.year, no_abstract.has_abstract) == ("No abstract here", 2020, False)
    assert result.skipped == []


def test_csv_tab_delimited_with_id_column():
    text = "_id\tTitle\tAbstract\tAuthors\n" "doc-1\tA Title\tAn abstract about τ leptons.\tKim, Min-jun\n"
    (paper,) = parse_csv(text, "sheet.tsv").papers
    assert (paper.paper_id, paper.title, paper.authors) == ("doc-1", "A Title", ["Min-jun Kim"])


def test_csv_without_abstract_or_title_column_lists_the_columns():
    with pytest.raises(ParseError) as excinfo:
        parse_csv(CSV_SEMICOLON, "sheet.csv")
    assert str(excinfo.value) == (
        "no abstract or title column (columns: Name, Summary Text, Authors, Year, DOI, Journal); "
        "map one with --csv-map abstract=COLUMN"
    )


def test_csv_with_titles_and_no_abstract_column_stores_titles():
    papers = parse_csv("Title,Year\nA Study of Things,2021\nAnother Study,2019\n", "titles.csv").papers
    assert [(p.title, p.year, p.has_abstract) for p in papers] == [("A Study of Things", 2021, False),
                                                                   ("Another Study", 2019, False)]


def test_csv_mapping_to_a_missing_column_is_an_error():
    with pytest.raises(ParseError, match="mapped column 'Resumen' not found"):
        parse_csv(CSV_SEMICOLON, "sheet.csv", mapping={"abstract": "Resumen"})


# ---------------------------------------------------------------- arXiv Atom


def test_arxiv_atom_entries():
    result = parse_arxiv_atom(ATOM, "query.xml")
    assert result.format == "arxiv-atom"
    graphene, maldacena = result.papers

    assert graphene.arxiv_id == "2101.00001"
    assert graphene.title == "Electron Transport in Twisted Bilayer Graphene"
    assert graphene.abstract == (
        "We study electron transport in twisted bilayer graphene near the magic angle θ ≈ 1.1° & find "
        "superconductivity."
    )
    assert graphene.authors == ["Pablo Jarillo-Herrero", "Yuan Cao"]
    assert graphene.venue == "cond-mat.mes-hall"  # the primary category, not the other one listed
    assert (graphene.year, graphene.date) == (2021, "2021-01-01")
    assert graphene.url == "http://arxiv.org/abs/2101.00001v2"
    assert graphene.doi == "10.1038/nature26160"

    assert maldacena.arxiv_id == "hep-th/9711200"
    assert maldacena.paper_id == "arxiv:hep-th/9711200"
    assert maldacena.authors == ["Juan M. Maldacena"]
    assert (maldacena.venue, maldacena.year) == ("hep-th", 1997)
    assert result.skipped == []


def test_arxiv_api_error_entry_is_skipped_with_its_message():
    feed = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><entry>'
        "<id>http://arxiv.org/api/errors#incorrect_id_format_for_1234.1234x</id><title>Error</title>"
        "<summary>incorrect id format for 1234.1234x</summary></entry></feed>"
    )
    assert parse_arxiv_atom(feed, "q.xml").skipped == [
        Skipped(position=1, reason="arXiv API error: incorrect id format for 1234.1234x")
    ]


def test_arxiv_atom_malformed_xml_reports_line_and_column():
    broken = ATOM.replace("</title>\n    <summary>We show", "\n    <summary>We show")
    with pytest.raises(ParseError, match=r"malformed Atom XML: mismatched tag: line \d+, column \d+"):
        parse_arxiv_atom(broken, "query.xml")


# ---------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BIBTEX, "bibtex"),
        (RIS, "ris"),
        (CSL_JSON, "json"),
        (JSON_PLAIN, "json"),
        (JSONL, "jsonl"),
        (CSV_SEMICOLON, "csv"),
        ("\ufeffTitle,Abstract\nA,B\n", "csv"),
        (ATOM, "arxiv-atom"),
    ],
)
def test_sniffers_accept_only_their_own_format(text, expected):
    assert [name for name, sniff, _ in EXPORT_SNIFFERS if sniff(text)] == [expected]


@pytest.mark.parametrize("text", [PROSE, "Hello, world", "@someone (on Twitter) said hi, twice", ""])
def test_sniffers_reject_prose(text):
    assert [name for name, sniff, _ in EXPORT_SNIFFERS if sniff(text)] == []


def test_sniffed_parsers_round_trip():
    samples = {"bibtex": BIBTEX, "ris": RIS, "json": JSON_PLAIN, "jsonl": JSONL, "arxiv-atom": ATOM}
    for name, sniff, parser in EXPORT_SNIFFERS:
        if name in samples:
            assert sniff(samples[name])
            assert parser(samples[name], f"sample.{name}").papers
    csv_parser = dict((name, parser) for name, _, parser in EXPORT_SNIFFERS)["csv"]
    assert len(csv_parser(CSV_SEMICOLON, "s.csv", mapping={"abstract": "summary text"}).papers) == 2


def test_ragged_csv_falls_back_to_its_extension_and_is_refused(tmp_path) -> None:
    """Rows shorter than the header are a file cut mid-row (or an unquoted delimiter): the .csv extension picks
    the CSV parser, which names the row instead of storing half a record."""
    from assistant.corpus import parse_file

    ragged = tmp_path / "ragged.csv"
    words = "measured " * 30
    ragged.write_text(f"title,abstract,notes\nFirst,{words},x\nSecond,{words}\nThird\n", encoding="utf-8")
    with pytest.raises(ParseError, match=r"row 2 \(line 3\) has 2 fields but the header has 3"):
        parse_file(ragged)


def test_markup_is_stripped_once_for_every_format() -> None:
    from assistant.corpus.records import clean_text

    assert clean_text("CO<sub>2</sub> &amp; H<sub>2</sub>O <i>in vivo</i>") == "CO2 & H2O in vivo"
    assert clean_text("p&lt;0.05 and a<b and c>d") == "p<0.05 and a<b and c>d"
    assert clean_text("&amp;lt;") == "&lt;"  # unescaped once, not twice


def test_generic_titles_with_different_abstracts_stay_apart() -> None:
    from assistant.corpus import merge_duplicates, parse_text

    words = ["distinct", "findings", "about", "a", "topic", "number"]
    lines = [
        {"title": "Summary", "abstract": " ".join(f"{w}{i}" for w in words * 5)} for i in range(3)
    ] + [{"title": "Summary", "abstract": " ".join(f"{w}0" for w in words * 5) + " Extra sentence."}]
    import json

    result = parse_text("\n".join(json.dumps(x) for x in lines), "generic.jsonl")
    papers, merged = merge_duplicates(result.papers)
    assert merged == 1  # the last record is the first one again, with one more sentence
    assert len(papers) == 3 and len({p.paper_id for p in papers}) == 3
    sourced = parse_text(
        '{"_id": "1", "title": "Summary", "text": "same words here"}\n'
        '{"_id": "2", "title": "Summary", "text": "same words here"}',
        "beir.jsonl",
    )
    assert merge_duplicates(sourced.papers)[1] == 0  # ids the source gave differ: never merged


def test_bibtex_repeated_key_and_repeated_field_keep_every_entry():
    # Mendeley exports repeat citation keys; Scopus repeats `funding_details` (both seen in real exports)
    text = ("@string{nc = {Neural Computation}}\n"
            "@article{Huang1992, title={First paper}, journal=nc, abstract={One.}}\n"
            "@article{Huang1992, title={Second paper}, journal=nc, abstract={Two.}}\n"
            "@ARTICLE{Cooper2018, title={Funded}, funding_details={A}, funding_details={B}, abstract={Three.}}\n")
    papers = parse_bibtex(text, "x.bib").papers
    assert [(p.title, p.venue, p.sources[0].position) for p in papers] == [
        ("First paper", "Neural Computation", 1), ("Second paper", "Neural Computation", 2), ("Funded", None, 3)]


@pytest.mark.parametrize(("parse", "text"), [
    (parse_bibtex, "@article{k, title={T}, keywords={graph learning, GNN}}"),
    (parse_ris, "TY  - JOUR\nTI  - T\nKW  - graph learning\nKW  - GNN\nER  - \n"),
    (parse_csl_json, '[{"id": "k", "type": "article", "title": "T", "keyword": "graph learning, GNN", "issued": {}}]'),
    (parse_jsonl, '{"title": "T", "keywords": ["graph learning", "GNN"]}\n'),
    (parse_csv, "Title,Manual Tags\nT,graph learning; GNN\n"),
])
def test_keywords_are_read_as_a_list_and_exported(parse, text):
    from assistant.bibtex import bibtex

    (paper,) = parse(text, "x").papers
    assert paper.keywords == ["graph learning", "GNN"]
    assert "keywords = {graph learning, GNN}" in bibtex([paper])
