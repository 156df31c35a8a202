"""The paper record every parser produces, and the rules that give it a stable id."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

from pydantic import BaseModel, Field, PrivateAttr, field_validator

_WS = re.compile(r"\s+")
# A tag with optional name="value" attributes; "a<b and c>d" has no '=' so it is left alone.
_TAG = re.compile(
    r"</?(?:[A-Za-z][\w.-]*:)?([A-Za-z][\w.-]*)"
    r"(?:\s+[\w:.-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'<>]+))*\s*/?>"
)
_BLOCK_TAGS = frozenset({"p", "br", "div", "li", "ul", "ol", "sec", "title", "h1", "h2", "h3", "h4", "tr", "td"})
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?"
_MONTH_DAY = re.compile(
    rf"{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}", re.IGNORECASE
)


def month_day(value: object) -> str | None:
    """A date without a year ("May 24", "24 Sep", "Sept. 25th"), as written; None for anything else. Such a date
    is kept as the paper's `date` and shown as written, but the paper has no year: it sorts and filters as undated
    ("Sep 25" is not 2025)."""
    text = " ".join(str(value).split())[:40] if value is not None else ""
    return text if _MONTH_DAY.fullmatch(text) else None


_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)
_ARXIV_NEW = re.compile(r"(?:arxiv[:/]\s*|abs/|pdf/)?(\d{4}\.\d{4,5})(?:v\d+)?", re.IGNORECASE)
_ARXIV_OLD = re.compile(r"(?:arxiv[:/]\s*|abs/|pdf/)([a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?", re.IGNORECASE)
DERIVED_TITLE_WORDS = 12
MAX_SOURCE_ID_CHARS = 256  # a longer "id" is not an identifier (a 10^6-digit number, a pasted abstract)
# Lone surrogates (from JSON "\\ud800" escapes) break UTF-8 encoding, embedding and storage; C0/C1 controls and
# bidirectional overrides garble terminals and reorder displayed text. Single-line fields lose line breaks too.
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAK = re.compile("[\t\n\r\u2028\u2029]")


def sanitize(text: str, one_line: bool = False) -> str:
    """Text safe to store, embed and print: lone surrogates become U+FFFD, control characters go."""
    text = _CONTROL.sub("", _SURROGATE.sub("\ufffd", text))
    return _LINE_BREAK.sub(" ", text) if one_line else text


MAX_RECORD_CHARS = 16 * 2**20  # one record of a streamed export (a PubMed article with its references is ~100 KB):
# a bigger "record" is a damaged or hostile file, not a paper, and the limit bounds a stream's memory


class SourceRef(BaseModel):
    """Where a record came from: the file, its detected format and the entry's place in it."""

    file: str
    format: str
    position: int = Field(description="1-based index of the entry within the file")


_ADDED_FIELDS = ("keywords", "collections", "attachments", "pdf")
NO_ABSTRACT = "no abstract"  # how a paper stored from its metadata alone is marked wherever it is shown


class PdfSource(BaseModel):
    """A PDF whose full text a paper carries: where it was read and the SHA-256 of its bytes (the PDF is not copied
    into the home: pages are shown and boxes found from this file, and a changed or moved file is noticed)."""

    path: str
    sha256: str
    pages: int


class Paper(BaseModel):
    """One paper: the unit that is deduplicated, stored, searched and cited."""

    paper_id: str
    title: str
    title_derived: bool = False
    authors: list[str] = Field(default_factory=list)
    author_count: int | None = None
    year: int | None = None
    date: str | None = None
    venue: str | None = None
    url: str | None = None
    doi: str | None = None
    arxiv_id: str | None = None
    abstract: str = ""
    keywords: list[str] = Field(default_factory=list, description="keywords or tags, as the source gave them")
    collections: list[str] = Field(default_factory=list, description="reference-manager collections (Zotero)")
    attachments: list[str] = Field(default_factory=list, description="paths of attached files (PDFs)")
    pdf: PdfSource | None = Field(default=None, description="the PDF whose full text is embedded with the abstract")
    sources: list[SourceRef] = Field(default_factory=list)
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """What the parser doubted in this entry (an impossible date kept as written). Not stored or embedded:
        the parse result reports it once, naming the entry."""
        return self._warnings

    @property
    def has_abstract(self) -> bool:
        """False for an entry stored from its metadata alone (a .bib without abstracts): it is searchable by
        title, authors, venue and year, shown as "no abstract", and never quoted as a finding."""
        return bool(self.abstract.strip())

    def names(self, limit: int = 3) -> str:
        """The first `limit` authors ("A, B, C et al."); "" when the source listed none."""
        return ", ".join(self.authors[:limit]) + (" et al." if len(self.authors) > limit else "")

    @property
    def when(self) -> str:
        """The year, else the date as the source wrote it, marked as having no year ("Feb 3, no year": none is
        invented, and "Sep 25" cannot pass for 2025), else ""."""
        return str(self.year) if self.year else f"{self.date}, no year" if self.date else ""

    @field_validator("paper_id", "title", "date", "venue", "url", "doi", "arxiv_id")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return None if value is None else sanitize(value, one_line=True)

    @field_validator("authors", "keywords", "collections", "attachments")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return [sanitize(name, one_line=True) for name in value]

    @field_validator("abstract")
    @classmethod
    def _text(cls, value: str) -> str:
        return sanitize(value)

    def content_key(self) -> str:
        """Hash of everything that is embedded or shown; sources are excluded so merges do not re-embed."""
        added_later = {name for name in _ADDED_FIELDS if not getattr(self, name)}  # papers stored before they
        payload = self.model_dump_json(exclude={"sources", *added_later})  # existed keep their key (no re-embedding)
        return hashlib.sha1(payload.encode("utf-8")).hexdigest()


class Skipped(BaseModel):
    """An entry a parser saw but did not turn into a paper, with the reason, named by what the entry had (its
    citation key or title) so the user can find it, not only by number."""

    position: int
    reason: str
    label: str | None = None


MAX_SKIPPED_DETAILS = 1000  # a million skipped rows are counted by reason, not kept (or printed) one by one


class ParseResult(BaseModel):
    format: str
    papers: list[Paper] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list, description=f"the first {MAX_SKIPPED_DETAILS}")
    skipped_total: int = 0
    skip_reasons: dict[str, int] = Field(default_factory=dict)
    warnings: list[str] = Field(
        default_factory=list, description=f"the first {MAX_SKIPPED_DETAILS}, naming their entry"
    )
    warnings_total: int = 0

    def skip(self, entry: Skipped) -> None:
        if len(self.skipped) < MAX_SKIPPED_DETAILS:
            self.skipped.append(entry)
        self.skipped_total += 1
        self.skip_reasons[entry.reason] = self.skip_reasons.get(entry.reason, 0) + 1

    def add(self, paper: Paper) -> None:
        """Keep a paper, and report what the parser doubted in it."""
        self.papers.append(paper)
        self.note(paper)

    def warn(self, warning: str) -> None:
        self.warnings_total += 1
        if len(self.warnings) < MAX_SKIPPED_DETAILS:
            self.warnings.append(warning)

    def note(self, paper: Paper) -> None:
        """Report what the parser doubted in a paper under the entry's number and title (also for a streamed file,
        whose papers are counted, not kept)."""
        for warning in paper.warnings:
            self.warnings_total += 1
            if len(self.warnings) < MAX_SKIPPED_DETAILS:
                title = paper.title if len(paper.title) <= 60 else paper.title[:59] + "…"
                self.warnings.append(f"entry {paper.sources[0].position} ({title!r}): {warning}")


def clean_text(value: object) -> str:
    """Unescape HTML entities, drop tags exports leave in text (<i>, <sub>, <jats:p>), NFC, collapse spaces."""
    if value is None:
        return ""
    text = html.unescape(str(value))
    text = _TAG.sub(lambda tag: " " if tag[1].lower() in _BLOCK_TAGS else "", text)
    text = unicodedata.normalize("NFC", text).replace("\u00a0", " ")
    return _WS.sub(" ", text).strip()


def normalize_title(title: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a title, for matching duplicates."""
    text = clean_text(title).lower()
    if not text.isascii():  # ASCII has no accents to fold (most abstracts: skips a per-character pass)
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return " ".join(re.findall(r"[a-z0-9]+", text))


def normalize_abstract(abstract: str) -> str:
    return normalize_title(abstract)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def find_doi(*values: str | None) -> str | None:
    for value in values:
        if value and (match := _DOI.search(value)):
            return match.group(1).rstrip(".,;)").lower()
    return None


def find_arxiv_id(*values: str | None) -> str | None:
    for value in values:
        if not value:
            continue
        for pattern in (_ARXIV_NEW, _ARXIV_OLD):
            if match := pattern.search(value):
                return match.group(1)
    return None


def derive_title(abstract: str) -> str:
    """A readable label for a paper without a title: the opening words of its abstract."""
    words = clean_text(abstract).split()
    label = " ".join(words[:DERIVED_TITLE_WORDS]).rstrip(".,;:")
    return label + ("…" if len(words) > DERIVED_TITLE_WORDS else "")


def paper_id_for(
    *, source_id: str | None, doi: str | None, arxiv_id: str | None, title: str | None, abstract: str
) -> str:
    """The stable id: the source's own id, else DOI, else arXiv id, else a hash of the title or abstract."""
    if source_id and len(source_id.strip()) <= MAX_SOURCE_ID_CHARS:
        return sanitize(source_id, one_line=True).strip()
    if doi:
        return f"doi:{doi.lower()}"
    if arxiv_id:
        return f"arxiv:{arxiv_id}"
    if title and normalize_title(title):
        return f"t:{_digest(normalize_title(title))}"
    return f"a:{_digest(normalize_abstract(abstract))}"


def split_name(name: str) -> str:
    """'Guo, Zhenyu' -> 'Zhenyu Guo'; other forms are only cleaned."""
    name = clean_text(name)
    if name.count(",") == 1:
        last, first = (part.strip() for part in name.split(","))
        if first and last:
            return f"{first} {last}"
    return name


def make_paper(
    *,
    abstract: str,
    source: SourceRef,
    title: str | None = None,
    source_id: str | None = None,
    authors: list[str] | None = None,
    author_count: int | None = None,
    year: int | None = None,
    date: str | None = None,
    venue: str | None = None,
    url: str | None = None,
    doi: str | None = None,
    arxiv_id: str | None = None,
    keywords: list[str] | None = None,
    collections: list[str] | None = None,
    attachments: list[str] | None = None,
) -> Paper:
    """Build a Paper from raw parser fields: cleans text, finds ids, derives a missing title."""
    abstract = clean_text(abstract)
    title = clean_text(title) or None
    url = clean_text(url) or None
    doi = find_doi(doi) if doi else find_doi(url)
    arxiv_id = (find_arxiv_id(arxiv_id) if arxiv_id else None) or find_arxiv_id(
        url if url and "arxiv" in url.lower() else None
    )
    names = [split_name(a) for a in (authors or []) if clean_text(a)]
    return Paper(
        paper_id=paper_id_for(source_id=source_id, doi=doi, arxiv_id=arxiv_id, title=title, abstract=abstract),
        title=title or derive_title(abstract) or f"untitled ({doi or f'arXiv:{arxiv_id}'})",
        title_derived=title is None,
        authors=names,
        author_count=author_count,
        year=year,
        date=clean_text(date) or None,
        venue=clean_text(venue) or None,
        url=url,
        doi=doi,
        arxiv_id=arxiv_id,
        abstract=abstract,
        keywords=[k for k in (clean_text(k) for k in keywords or []) if k],
        collections=[c for c in (clean_text(c) for c in collections or []) if c],
        attachments=[a for a in attachments or [] if a],
        sources=[source],
    )
