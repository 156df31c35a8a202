"""PDF full text on the real papers in ../shared/pdfs: reading order, what is left out of the body, chunks that know
their page, bad PDFs one line each, attachments of a BibTeX export, and `ask --json` spans on the PDF's pages."""

from __future__ import annotations

import io
import json
import re
import unicodedata
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from typer.testing import CliRunner

from assistant import Assistant
from assistant.cli import app
from assistant.corpus import parse_file
from assistant.corpus.exports import attached_files
from assistant.corpus.pdf import BodyText, PageText, PdfText, _drop_references, _Line, _page_text, read_pdf
from assistant.errors import ParseError
from assistant.index import chunk_paper, sentence_spans
from tests.linear import assert_linear

PDFS = Path(__file__).resolve().parents[2] / "shared" / "pdfs"
ACL = PDFS / "2020.acl-main.447.pdf"  # S2ORC, 15 pages, two columns, references then appendices
PAPERMAGE = PDFS / "papermage.pdf"
SHORT = PDFS / "2304.02623v1.pdf"  # 4 pages, arXiv stamp in the margin
pytestmark = pytest.mark.skipif(not ACL.exists(), reason="the shared PDFs (../shared/pdfs) are not here")
runner = CliRunner()


def read(path: Path) -> PdfText:
    return read_pdf(path.read_bytes(), str(path))


def flat(text: str) -> str:
    return " ".join(text.split())


def body_of(page: PageText) -> str:
    return " ".join(page.text[a:b] for a, b in page.body)


@pytest.mark.parametrize(("path", "page", "left_ends", "right_starts"), [
    # the last line of the left column and the first of the right, as printed
    (ACL, 3, "superscripts or equation references being recognized as",
     "inline citations in papers with BRACKET-style citations"),
    (PAPERMAGE, 2, "a widely-adopted software tool for scientific document processing, uses",
     "twelve interdependent sequence labeling models"),
])
def test_a_sentence_across_the_column_break_reads_whole(path: Path, page: int, left_ends: str,
                                                         right_starts: str) -> None:
    body = flat(body_of(read(path).pages[page - 1]))
    sentences = [body[a:b] for a, b in sentence_spans(body)]
    assert any(left_ends in s and right_starts in s for s in sentences)
    assert f"{left_ends} {right_starts}" in body


def test_hyphens_at_line_ends_are_joined_and_text_is_nfkc() -> None:
    pdf = read(ACL)
    first = pdf.pages[0].text
    assert "The corpus consists of rich metadata" in flat(first)  # printed "cor-" / "pus"
    everything = "".join(page.text for page in pdf.pages)
    assert everything == unicodedata.normalize("NFKC", everything)
    assert "\u00ad" not in everything


def test_references_running_headers_and_footnotes_are_kept_for_display_but_not_in_the_body() -> None:
    pdf = read(ACL)
    entry = "Riaz Ahmad and Muhammad Tanvir Afzal. 2018"
    shown = flat(" ".join(page.text for page in pdf.pages))
    body = flat(pdf.body().text)
    assert entry in shown and entry not in body
    assert "In this work, we distinguish between bibliography entries and inline citations" in body  # appendix A
    assert "Proceedings of the 58th Annual Meeting" in shown and "Proceedings of the 58th Annual Meeting" not in body
    third = pdf.pages[2]
    assert "4971" in third.text and "4971" not in body_of(third)  # the printed page number
    chunks = chunk_paper(parse_file(ACL).result.papers[0], 200)
    assert not any(entry in flat(c.text) for c in chunks)


def test_metadata_of_a_loose_pdf() -> None:
    paper = parse_file(ACL).result.papers[0]
    assert paper.title == "S2ORC: The Semantic Scholar Open Research Corpus"
    assert paper.authors[:2] == ["Kyle Lo", "Lucy Lu Wang"] and paper.year == 2020
    assert paper.abstract.startswith("We introduce S2ORC") and paper.abstract.endswith("over academic text.")
    assert paper.pdf is not None and paper.pdf.pages == 15 and Path(paper.pdf.path) == ACL.resolve()
    short = parse_file(SHORT).result.papers[0]
    assert short.arxiv_id == "2304.02623" and short.paper_id == "arxiv:2304.02623"
    assert short.abstract.startswith("Large language models have introduced exciting new opportunities")


def test_body_chunks_are_slices_of_the_pages_they_name() -> None:
    paper = parse_file(PAPERMAGE).result.papers[0]
    chunks = chunk_paper(paper, 200)
    abstract = [c for c in chunks if not c.location()]
    body = [c for c in chunks if c.location()]
    assert abstract and " ".join(c.text for c in abstract) == " ".join(paper.abstract.split())
    assert len(body) > 20 and [c.position for c in chunks] == list(range(len(chunks)))
    pdf = read(PAPERMAGE)
    joined = pdf.body()
    for chunk in body:
        where = chunk.location()
        pieces = list(joined.pieces(where["body_start"], where["body_start"] + len(chunk.text)))
        assert " ".join(pdf.pages[page - 1].text[a:b] for page, a, b in pieces) == chunk.text
        assert (pieces[0][:2], pieces[-1][0::2]) == ((where["page"], where["start"]), (where["page_end"], where["end"]))
        assert chunk.embed_text.endswith(chunk.text)
    sections = {c.section for c in body}
    assert "1 Introduction" in sections and "2.1 Turn-key software for scientific documents" in sections
    assert not [c for c in body if c.text == c.section]  # a heading is embedded with what it heads


def test_body_text_maps_back_to_pages() -> None:
    body = BodyText.of(read(ACL))
    at = body.text.index("we use majority voting to select canonical metadata values")
    pieces = list(body.pieces(at, at + len("we use majority voting to select canonical metadata values")))
    assert [page for page, *_ in pieces] == [3, 4]  # the sentence runs over the page break
    pdf = read(ACL)
    assert "".join(pdf.pages[p - 1].text[a:b] + " " for p, a, b in pieces).strip() == \
        "we use majority voting to select canonical metadata values"


def _encrypted_pdf() -> bytes:
    """A one-page PDF under the standard security handler whose user password is not empty."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += (b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 4 0 R /ID [<00112233445566778899aabbccddeeff>"
            b"<00112233445566778899aabbccddeeff>] >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return bytes(out)


def _scanned_pdf() -> bytes:
    """A page of a real paper as an image only (no text layer), the way a scanner writes it."""
    document = pdfium.PdfDocument(str(SHORT))
    image = document[0].render(scale=0.5).to_pil().convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PDF")
    return buffer.getvalue()


def bad_pdfs(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scan.pdf").write_bytes(_scanned_pdf())
    (folder / "locked.pdf").write_bytes(_encrypted_pdf())
    (folder / "cut.pdf").write_bytes(ACL.read_bytes()[: ACL.stat().st_size // 2])
    return {"scan.pdf": "without a text layer", "locked.pdf": "encrypted", "cut.pdf": "damaged or truncated"}


def test_bad_pdfs_are_one_line_each_and_the_other_files_go_on(tmp_path: Path) -> None:
    folder = tmp_path / "pdfs"
    expected = bad_pdfs(folder)
    (folder / "good.pdf").symlink_to(SHORT)
    for name, words in expected.items():
        with pytest.raises(ParseError, match=words):
            parse_file(folder / name)
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), "ingest", str(folder), "--json"])
    report = json.loads(result.stdout)
    failed = {Path(f["file"]).name: f["reason"] for f in report["files_failed"]}
    assert set(failed) == set(expected)
    for name, words in expected.items():
        assert words in failed[name] and "\n" not in failed[name] and "Traceback" not in failed[name]
    assert report["new"] == 1 and report["chunks_embedded"] > 20


def test_bibtex_attachments_add_full_text_and_a_bad_one_is_a_warning(tmp_path: Path) -> None:
    bad_pdfs(tmp_path / "files")
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@inproceedings{lo2020,\n title = {S2ORC: The Semantic Scholar Open Research Corpus},\n"
        " author = {Lo, Kyle and Wang, Lucy Lu},\n year = {2020},\n abstract = {We introduce S2ORC, a corpus.},\n"
        f" file = {{Full Text PDF:{ACL}:application/pdf;Snapshot:{tmp_path}/page.html:text/html}}\n}}\n"
        "@article{locked,\n title = {A locked paper},\n year = {2021},\n abstract = {Its abstract.},\n"
        " file = {files/locked.pdf}\n}\n", encoding="utf-8")
    result = parse_file(bib).result
    with_text, locked = result.papers
    assert (
        with_text.pdf is not None
        and with_text.pdf.pages == 15
        and with_text.abstract == "We introduce S2ORC, a corpus."
    )
    assert locked.pdf is None and locked.attachments == ["files/locked.pdf"]
    assert len(result.warnings) == 1 and "locked.pdf" in result.warnings[0] and "encrypted" in result.warnings[0]
    odd = tmp_path / "odd.bib"  # attachments that cannot be files: one warning each, never an error for the file
    (tmp_path / "folder.pdf").mkdir()
    odd.write_text("@article{a,\n title = {Home of nobody},\n file = {~nosuchuser12/a.pdf}\n}\n"
                   "@article{b,\n title = {A folder},\n file = {folder.pdf}\n}\n"
                   f"@article{{c,\n title = {{Too long}},\n file = {{{'x' * 5000}.pdf}}\n}}\n", encoding="utf-8")
    odd_result = parse_file(odd).result
    assert len(odd_result.papers) == 3 and all(p.pdf is None for p in odd_result.papers)
    assert len(odd_result.warnings) == 3 and all("\n" not in w for w in odd_result.warnings)
    assert any(c.location() for c in chunk_paper(with_text, 200))


def test_file_field_parsing_is_linear() -> None:
    assert attached_files(r"Full Text PDF:C\:\\Users\\me\\a.pdf:application/pdf; /b.pdf") == [
        r"C:\Users\me\a.pdf", "/b.pdf"]
    assert_linear(lambda n: "x:" * n + ";" * n, attached_files)


def test_ask_json_spans_name_a_page_whose_text_they_are(tmp_path: Path) -> None:
    """Offline (extractive) answers over two ingested PDFs: every span with a page is text of that page, as
    pdfium itself reads the page (whitespace and hyphenation aside), with boxes on the page; the reference list
    says the page."""
    folder = tmp_path / "pdfs"
    folder.mkdir()
    for path in (ACL, PAPERMAGE):
        (folder / path.name).symlink_to(path)
    home = ["--home", str(tmp_path / "home")]
    assert runner.invoke(app, [*home, "ingest", str(folder)]).exit_code == 0
    paged = 0
    for question in ("How does S2ORC select canonical metadata when publisher metadata is incomplete?",
                     "How does papermage represent layers of a document as entities with spans and boxes?"):
        answer = json.loads(runner.invoke(app, [*home, "ask", "--json", question]).stdout)
        for citation in answer["citations"]:
            path = ACL if citation["title"].startswith("S2ORC") else PAPERMAGE
            document = pdfium.PdfDocument(str(path))
            for span in citation["spans"]:
                if "page" not in span:
                    continue
                paged += 1
                raw = document[span["page"] - 1].get_textpage().get_text_range()
                assert _letters(span["text"]) in _letters(raw)
                assert span["rects"] and all(0 <= v <= 1 for rect in span["rects"] for v in rect)
                reference = next(line for line in answer["answer"].splitlines()
                                 if line.startswith(f"[{citation['number']}] "))
                listed = re.search(r", pp?\. ([\d, ]+)$", reference)
                assert listed and span["page"] in {int(n) for n in listed.group(1).split(", ")}
    assert paged


def _letters(text: str) -> str:
    """Text compared as letters and digits only (pdfium's own text keeps line breaks and hyphens)."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text.replace("\ufffe", "").replace("\x02", "")))


def test_a_moved_pdf_is_noticed_on_reingest(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "paper.pdf", tmp_path / "b" / "paper.pdf"
    first.parent.mkdir()
    second.parent.mkdir()
    first.write_bytes(SHORT.read_bytes())
    lib = Assistant(home=tmp_path / "home")
    lib.ingest([first])
    first.rename(second)
    report = lib.ingest([second])
    (paper,) = lib.papers()
    assert paper.pdf is not None and Path(paper.pdf.path) == second.resolve()
    assert report.chunks_embedded > 0 and report.merged_duplicates == 1  # re-embedded: the passages' file moved


def test_a_moved_pdf_keeps_its_pages_without_boxes(tmp_path: Path) -> None:
    moved = tmp_path / "moved.pdf"
    moved.write_bytes(SHORT.read_bytes())
    lib = Assistant(home=tmp_path / "home")
    lib.ingest([moved])
    paper = lib.papers()[0]
    assert paper.pdf is not None
    moved.unlink()
    from assistant.corpus import pdf as reader

    reader._CACHE.clear()
    hits = lib.search("sensemaking process over a set of source documents", k=1)
    assert hits[0].location["page"] >= 1
    spans = reader.place(paper.pdf, hits[0].location, hits[0].text, 0, 20)
    assert spans[0].page == hits[0].location["page"] and spans[0].rects == [] and spans[0].text == hits[0].text[:20]


def _synthetic_page(count: int) -> list[_Line]:
    """`count` lines of a two-column page, a heading every tenth line, a references heading halfway."""
    lines = []
    for i in range(count):
        text = "References" if i == count // 2 else f"{i % 9 + 1} Method" if i % 10 == 0 else f"word{i} text-"
        x0 = 60.0 if i % 2 else 320.0
        top = 780.0 - (i // 2) * 12 % 700
        lines.append(_Line(list(text), list(range(len(text))), x0, x0 + 220, top - 10, top, 10.0))
    return lines


def test_page_assembly_is_linear() -> None:
    """Reading order, footnotes, headings and the references cut, on pages of ever more lines."""
    def assemble(text: str) -> object:
        page = _page_text(1, _synthetic_page(len(text)), set(), 600.0, 800.0)
        _drop_references([page])
        return BodyText.of(PdfText(path="x", sha256="0", pages=[page]))

    assert_linear(lambda n: "x" * n, assemble, start=64)


def test_zotero_rdf_export_with_files_reads_its_pdfs_when_streamed(tmp_path: Path) -> None:
    """Zotero's "Export Files" writes the RDF beside a files/ folder; ingest streams the RDF, and each item's PDF
    (here a stand-in: a shared paper under the name the export gives) adds its full text."""
    from test_parse_xml_feeds import ZOTERO_WITH_FILES

    export = tmp_path / "export" / "My Library.rdf"
    pdf = export.parent / "files" / "9" / "Vaswani et al. - 2017 - Attention Is All You Need.pdf"
    pdf.parent.mkdir(parents=True)
    pdf.symlink_to(SHORT)
    export.write_text(ZOTERO_WITH_FILES, encoding="utf-8")
    lib = Assistant(home=tmp_path / "home")
    report = lib.ingest([export])
    assert not report.files_failed and report.papers_by_format == {"zotero-rdf": 3}
    (attention,) = [p for p in lib.papers() if p.title == "Attention Is All You Need"]
    assert attention.pdf is not None and attention.pdf.pages == 4 and Path(attention.pdf.path) == pdf.resolve()
    hit = lib.search("sensemaking process over a set of source documents", k=1)[0]
    assert hit.paper_id == attention.paper_id and hit.location["page"] >= 1
    pdf.unlink()
    parsed = parse_file(export).result  # read whole (not streamed): the same attachment, now missing
    assert parsed.papers[0].pdf is None and len(parsed.warnings) == 1 and "no such file" in parsed.warnings[0]
