"""litassist: ask questions of a pile of paper abstracts and get answers that cite them.

The public surface: everything the CLI, the app and other programs use is imported from here (`from assistant
import Assistant, Filters, StoreError`), never from a submodule; tests/test_architecture.py checks that cli.py and
ui/ do so. `Assistant` is the facade; the rest are its result types, errors and the helpers that render them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agent import Answer, Event, Step, collect
    from .api import (
        DEMO_CORPUS,
        Assistant,
        LibraryFacets,
        PaperPage,
        ProviderInfo,
        Stats,
        error_text,
        failure_text,
        is_demo_file,
        model_errors,
        provider_info,
    )
    from .bibtex import bibtex as bibtex_text
    from .citations import CitedText, Evidence, Span, mark_spans, verbatim_spans
    from .claims import citation_spans, claim_text, marker_claims
    from .claims import claims as answer_claims
    from .clusters import (
        MAX_CLUSTERS,
        UNCLUSTERED,
        Cluster,
        ClusterMap,
        ClusterSummary,
        MapPoint,
        trends,
        year_counts,
    )
    from .config import Settings, expand_path, load_settings
    from .conversations import (
        EXPORTS,
        INTERRUPTED,
        Conversation,
        ConversationInfo,
        SavedTurn,
        author_names,
        conversation_markdown,
        reference_line,
    )
    from .corpus import NO_ABSTRACT, Paper, PdfSource
    from .corpus.display import display_abstract, display_date, display_title, plain_text
    from .corpus.pdf import pdf_text, render_page, span_boxes
    from .enrich import EnrichReport
    from .errors import (
        ContextLengthError,
        ConversationError,
        ConversationsDamaged,
        EmptyLibraryError,
        EnrichError,
        LibraryBusy,
        ParseError,
        ProviderError,
        RequestRefusedError,
        StoreError,
    )
    from .evaluate import AnswerReport, RetrievalReport, eval_home, evaluate_answers, evaluate_retrieval
    from .exports_out import PAPER_EXPORTS, file_stem
    from .index import IngestReport, ProgressCallback, ReindexReport, RemovalReport, SourceRecord, split_sentences
    from .markdown import markdown_html
    from .providers import provider_names
    from .providers import providers as model_providers
    from .questions import about, paper_name
    from .report import FORMATS, ReportRun
    from .retrieve import Filters, Hit
    from .retrieve import Mode as SearchMode


# Where each public name lives (module -> names), imported on first use: `litassist --help` and other light
# commands do not load numpy, Chroma or the embedding model.
_PUBLIC: dict[str, tuple[str, ...]] = {
    "api": ("Assistant", "DEMO_CORPUS", "LibraryFacets", "PaperPage", "ProviderInfo", "Stats", "error_text",
            "failure_text", "is_demo_file", "model_errors", "provider_info"),
    "errors": ("ContextLengthError", "ConversationError", "ConversationsDamaged", "EmptyLibraryError", "EnrichError",
               "LibraryBusy", "ParseError", "ProviderError", "RequestRefusedError", "StoreError"),
    "config": ("Settings", "expand_path", "load_settings"),
    "corpus": ("NO_ABSTRACT", "Paper", "PdfSource"),
    "corpus.display": ("display_abstract", "display_date", "display_title", "plain_text"),
    "corpus.pdf": ("pdf_text", "render_page", "span_boxes"),
    "retrieve": ("Filters", "Hit"),
    "index": ("IngestReport", "ProgressCallback", "ReindexReport", "RemovalReport", "SourceRecord", "split_sentences"),

    "agent": ("Answer", "Event", "Step", "collect"),
    "citations": ("CitedText", "Evidence", "Span", "mark_spans", "verbatim_spans"),
    "claims": ("citation_spans", "claim_text", "marker_claims"),
    "conversations": ("EXPORTS", "INTERRUPTED", "Conversation", "ConversationInfo", "SavedTurn", "author_names",
                      "conversation_markdown", "reference_line"),
    "clusters": ("MAX_CLUSTERS", "UNCLUSTERED", "Cluster", "ClusterMap", "ClusterSummary", "MapPoint", "trends",
                 "year_counts"),
    "questions": ("about", "paper_name"),
    "report": ("FORMATS", "ReportRun"),
    "enrich": ("EnrichReport",),
    "evaluate": ("AnswerReport", "RetrievalReport", "eval_home", "evaluate_answers", "evaluate_retrieval"),
    "exports_out": ("PAPER_EXPORTS", "file_stem"),
    "markdown": ("markdown_html",),
    "providers": ("provider_names",),
}
# A name that is also a submodule's is public under another one: once `assistant.claims` is imported, the package
# attribute `claims` is that module, whatever this file says. Retrieval's `Mode` is public as the plainer SearchMode.
_RENAMED = {"answer_claims": ("claims", "claims"), "bibtex_text": ("bibtex", "bibtex"),
            "model_providers": ("providers", "providers"), "SearchMode": ("retrieve", "Mode")}
_HOMES = {name: (module, name) for module, names in _PUBLIC.items() for name in names} | _RENAMED
__all__ = [
    "DEMO_CORPUS",
    "EXPORTS",
    "FORMATS",
    "INTERRUPTED",
    "MAX_CLUSTERS",
    "NO_ABSTRACT",
    "PAPER_EXPORTS",
    "UNCLUSTERED",
    "Answer",
    "AnswerReport",
    "Assistant",
    "CitedText",
    "Cluster",
    "ClusterMap",
    "ClusterSummary",
    "ContextLengthError",
    "Conversation",
    "ConversationError",
    "ConversationInfo",
    "ConversationsDamaged",
    "EmptyLibraryError",
    "EnrichError",
    "EnrichReport",
    "Event",
    "Evidence",
    "Filters",
    "Hit",
    "IngestReport",
    "LibraryBusy",
    "LibraryFacets",
    "MapPoint",
    "Paper",
    "PaperPage",
    "ParseError",
    "PdfSource",
    "ProgressCallback",
    "ProviderError",
    "ProviderInfo",
    "RequestRefusedError",
    "ReindexReport",
    "RemovalReport",
    "ReportRun",
    "RetrievalReport",
    "SavedTurn",
    "SearchMode",
    "Settings",
    "SourceRecord",
    "Span",
    "Stats",
    "Step",
    "StoreError",
    "answer_claims",
    "about",
    "author_names",
    "bibtex_text",
    "citation_spans",
    "claim_text",
    "collect",
    "conversation_markdown",
    "display_abstract",
    "display_date",
    "display_title",
    "error_text",
    "eval_home",
    "evaluate_answers",
    "evaluate_retrieval",
    "expand_path",
    "failure_text",
    "file_stem",
    "is_demo_file",
    "load_settings",
    "mark_spans",
    "markdown_html",
    "marker_claims",
    "model_providers",
    "model_errors",
    "pdf_text",
    "plain_text",
    "provider_info",
    "paper_name",
    "provider_names",
    "reference_line",
    "render_page",
    "span_boxes",
    "split_sentences",
    "trends",
    "verbatim_spans",
    "year_counts",
]  # the names of _PUBLIC (tests/test_architecture.py checks)


def __getattr__(name: str) -> Any:
    """Import lazily, so `litassist --help` and other light commands do not load numpy, Chroma or torch."""
    if name in _HOMES:
        import importlib

        module, attribute = _HOMES[name]
        return getattr(importlib.import_module(f".{module}", __name__), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
