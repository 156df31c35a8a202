"""What a real library export becomes: entries in the file vs papers stored, with an abstract, and skipped.

    PYTHONPATH=. python benchmarks/real_exports.py FOLDER [--minilm] [--max-entries N] [--json]

For each file in FOLDER (not recursive; SOURCES.md and other *.md files are left out):
- "entries" is counted here, independently of litassist's parsers, by a simple format-aware count (BibTeX
  `@type{` minus @string/@comment/@preamble, RIS `TY  -`, MEDLINE `PMID-`, `<PubmedArticle>`, EndNote / OAI-PMH
  `<record>`, Zotero RDF items, Atom `<entry>`, WoS `PT ` records, a JSON array's length / `results` / `data`,
  JSONL lines), so a parser that silently drops entries shows up as a gap;
- "stored" and "with abstract" come from a real ingest of that one file into a fresh temporary home, read back
  from the library itself (`stats()` and `papers()`), not from the parser;
- "format" is the format ingest reported, or its one-line failure.

Embedding: by default a cheap deterministic hashing embedder stands in for MiniLM (the counts do not depend on the
vectors, and the machine this runs on is shared); `--minilm` uses the library's own embedder, and then files over
`--max-entries` are not ingested (noted in the row). Works on the code before and after issue 17 (no new API).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assistant import Assistant

_BIBTEX_ENTRY = re.compile(r"^[ \t]*@[ \t]*([A-Za-z]+)[ \t]*[{(]", re.MULTILINE)
_NOT_ENTRIES = {"string", "comment", "preamble"}
_RDF_ITEM = re.compile(r"<z:itemType>([A-Za-z]+)</z:itemType>")


class HashingEmbedder:
    """Word hashes into 384 buckets, L2-normalized: fast and deterministic, enough for storing and counting."""

    name = "hashing-384"
    dimensions = 384

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                vectors[row, int.from_bytes(digest, "little") % self.dimensions] += 1.0
        vectors[:, 0] += 1e-3  # no all-zero vector for an empty text
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", "replace").removeprefix("\ufeff")


def _zotero_child(item: object) -> bool:
    """An attachment or note in a Zotero Web API listing: not an entry of its own."""
    data = item.get("data") if isinstance(item, dict) else None
    return isinstance(data, dict) and data.get("itemType") in ("attachment", "note")


def _count_json(text: str) -> tuple[str, int] | None:
    try:
        data = json.loads(text)
    except ValueError:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            records = [json.loads(line) for line in lines]
        except ValueError:
            return None
        if records and "authors_parsed" in records[0]:
            return "JSONL (arXiv snapshot)", len(records)
        return "JSONL", len(records)
    if isinstance(data, list):
        return "JSON array", sum(1 for item in data if not _zotero_child(item))
    if isinstance(data, dict):
        for key in ("results", "data", "items", "records"):
            if isinstance(data.get(key), list):
                return f"JSON object .{key}", len(data[key])
        return "JSON object", 1
    return None


def count_entries(text: str) -> tuple[str, int]:
    """(what the file looks like, how many entries it holds), by simple counting that trusts no parser."""
    head = text[:4000]
    stripped = head.lstrip("\ufeff \t\r\n")
    if stripped[:1] in "[{":
        counted = _count_json(text)
        if counted:
            return counted
    if "<PubmedArticle>" in text or "<PubmedArticleSet" in head:
        return "PubMed XML", text.count("<PubmedArticle>")
    if "<OAI-PMH" in head:
        return "OAI-PMH", text.count("<record>")
    if "<xml><records>" in head or "<records><record>" in head:
        return "EndNote XML", text.count("<record>")
    if "<rdf:RDF" in head:
        kinds = _RDF_ITEM.findall(text)
        return "Zotero RDF", sum(1 for kind in kinds if kind not in ("attachment", "note"))
    if "<feed" in head and "http://www.w3.org/2005/Atom" in head:
        return "Atom feed", text.count("<entry>")
    lines = text.splitlines()
    if any(line.startswith("PMID- ") for line in lines[:50]):
        return "MEDLINE", sum(1 for line in lines if line.startswith("PMID- "))
    if any(line.startswith("TY  -") for line in lines[:50]):
        return "RIS", sum(1 for line in lines if line.startswith("TY  -"))
    if any(line.startswith("FN ") for line in lines[:3]) and any(line.startswith("PT ") for line in lines[:50]):
        return "WoS tagged", sum(1 for line in lines if line.startswith("PT "))
    kinds = [kind.lower() for kind in _BIBTEX_ENTRY.findall(text)]
    if kinds:
        return "BibTeX", sum(1 for kind in kinds if kind not in _NOT_ENTRIES)
    return "unknown", 0


def ingest_one(path: Path, minilm: bool) -> dict:
    """Ingest `path` alone into a fresh temporary home and read the library back."""
    with tempfile.TemporaryDirectory() as tmp:
        lib = Assistant(home=Path(tmp) / "home")
        if not minilm:
            lib.__dict__["embedder"] = HashingEmbedder()  # `shared` properties cache in __dict__
        started = time.perf_counter()
        report = lib.ingest([path])
        seconds = time.perf_counter() - started
        papers = lib.papers()
        stats = lib.stats()
        skipped = [
            f"#{s.position} {getattr(s, 'label', '') or ''} {s.reason}".replace("  ", " ") for s in report.skipped[:5]
        ]
        return {
            "format": ", ".join(f"{name}" for name in report.papers_by_format) or "",
            "failures": [f.reason for f in report.files_failed],
            "stored": stats.papers,
            "with_abstract": sum(1 for p in papers if (p.abstract or "").strip()),
            "skipped": report.skipped_total,
            "skip_reasons": report.skip_reasons,
            "skipped_examples": skipped,
            "merged": report.merged_duplicates,
            "warnings": list(report.warnings)[:5],
            "seconds": round(seconds, 1),
        }


def run(folder: Path, minilm: bool, max_entries: int) -> list[dict]:
    rows = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".md"):
        looks_like, entries = count_entries(read_text(path))
        row = {"file": path.name, "looks_like": looks_like, "entries": entries}
        if minilm and entries > max_entries:
            row.update(format="", failures=[f"not ingested: {entries} entries > --max-entries {max_entries}"],
                       stored=None, with_abstract=None, skipped=None, merged=None)
        else:
            row.update(ingest_one(path, minilm))
        rows.append(row)
        print(f"  {path.name}: {row.get('stored')} stored of {entries}", file=sys.stderr, flush=True)
    return rows


def _cell(value: object) -> str:
    return "–" if value is None else str(value).replace("|", "\\|")


def markdown(rows: list[dict]) -> str:
    out = ["| file | counted as | format detected (or failure) | entries | stored | with abstract | skipped | merged |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        detected = row["format"] or "FAILED: " + "; ".join(row["failures"])
        out.append("| " + " | ".join(_cell(v) for v in (
            row["file"], row["looks_like"], detected, row["entries"], row["stored"], row["with_abstract"],
            row["skipped"], row["merged"])) + " |")
    total = {k: sum(r[k] or 0 for r in rows) for k in ("entries", "stored", "with_abstract", "skipped")}
    out.append(f"| **total** | | | {total['entries']} | {total['stored']} | {total['with_abstract']} | "
               f"{total['skipped']} | |")
    notes = []
    for row in rows:
        details = []
        if row["format"] and row["failures"]:
            details.append("failures: " + "; ".join(row["failures"]))
        if row.get("skip_reasons"):
            details.append("skip reasons: " + ", ".join(f"{k}: {v}" for k, v in row["skip_reasons"].items()))
        if row.get("skipped_examples"):
            details.append("first skipped: " + "; ".join(row["skipped_examples"]))
        if row.get("warnings"):
            details.append("warnings: " + "; ".join(row["warnings"]))
        if details:
            notes.append(f"- **{row['file']}** — " + " — ".join(details))
    return "\n".join(out + ([""] + notes if notes else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--minilm", action="store_true", help="embed with the library's own model (slower)")
    parser.add_argument("--max-entries", type=int, default=3000, help="with --minilm: skip larger files")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # failures are in the table, once
    rows = run(args.folder, args.minilm, args.max_entries)
    print(json.dumps(rows, indent=1) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
