"""All settings in one object, read from the environment (LITASSIST_*) and a `.env` file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_cache_path, user_data_path
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"


def expand_path(value: str | Path) -> str:
    """`~` and `$VARS` expanded, as a shell would: `LITASSIST_HOME=~/papers` means the home folder's papers."""
    return os.path.expanduser(os.path.expandvars(str(value)))


class Settings(BaseSettings):
    """Every knob litassist has; `.env.example` documents each one."""

    model_config = SettingsConfigDict(env_prefix="LITASSIST_", env_file=".env", extra="ignore", populate_by_name=True)

    home: Path = Field(default_factory=lambda: user_data_path("litassist"))
    embedding_provider: Literal["local", "openai"] = "local"
    embedding_model: str | None = None
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LITASSIST_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("LITASSIST_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    embedding_timeout: float = Field(
        default=60.0, gt=0, description="seconds an OpenAI-compatible embedding server may take per request"
    )
    chunk_tokens: int = Field(default=200, ge=32, description="cl100k tokens per embedded chunk, header included")
    buffer_writes_from: int = Field(
        default=100_000, ge=0,
        description="papers from which small writes keep their vectors in the catalog until Chroma takes them in bulk",
    )
    embed_batch_size: int = Field(default=32, ge=1)
    embed_threads: int | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("LITASSIST_EMBED_THREADS", "LITASSIST_TORCH_THREADS"),
        description="CPU threads of the local embedding model (default: one per core)",
    )
    llm_provider: str = Field(
        default="auto", description="auto, or a provider's name: offline, openai, openai-compatible, local, or one a "
        "plugin adds (an unknown name is refused with the list of known ones, by `doctor` and at the first question)",
    )
    llm_model: str | None = None
    llm_timeout: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0)
    llm_context_window: int = Field(default=8192, ge=1024, description="tokens the chat model accepts")
    llm_answer_tokens: int = Field(default=700, ge=64, description="tokens reserved for the answer")
    local_model_path: str | None = None
    local_context_window: int = Field(default=2048, ge=512)
    agent_max_steps: int = Field(default=4, ge=1, description="tool-calling rounds before the agent must answer")
    agent_time_limit: float = Field(
        default=120.0, gt=0, description="seconds the tool loop may run before it must answer from what it has"
    )
    llm_tool_calling: bool = Field(default=True, description="false: one grounded call, no tool loop")
    weak_support_below: float = Field(
        default=0.5, ge=0.0, le=1.0, description="a cited sentence whose best source sentence scores under this is weak"
    )
    abstain_below: float = Field(
        default=0.3, description="answer 'not enough evidence' when no passage is this similar to the question..."
    )
    abstain_term_coverage: float = Field(
        default=0.6, description="...unless one paper holds this share of the question's topic words"
    )
    evidence_k: int = Field(default=6, ge=1, description="papers a search tool call returns")
    chroma_url: str | None = Field(
        default=None, description="use a Chroma server (http://host:port) instead of the embedded store"
    )
    fusion_dense_weight: float = Field(
        default=0.5, ge=0.0, le=1.0, description="weight of dense vs lexical scores in hybrid search"
    )
    rerank: Literal["off", "llm"] = Field(
        default="off", description="llm: the chat model re-orders the top fused candidates of every search"
    )
    rerank_candidates: int = Field(default=20, ge=2, le=100, description="how many candidates the re-ranker orders")
    lock_timeout: float = Field(
        default=600.0, ge=0, description="seconds a writer waits for another writer of the same library"
    )
    max_file_mb: int = Field(default=512, ge=1, description="larger files are refused before they are read")
    max_record_mb: int = Field(
        default=8, ge=1, description="a longer line or record of a streamed format (JSONL, ...) is refused"
    )
    max_chunks_per_paper: int = Field(default=400, ge=1, description="passages embedded per paper at most "
                                      "(a PDF's full text: ~6 a page)")
    pdf_cache: Path = Field(
        default_factory=lambda: user_cache_path("litassist"),
        description="the text read from each PDF is kept under <pdf_cache>/pdf-text/, by the PDF's SHA-256",
    )
    max_removal_share: float = Field(
        default=0.2, ge=0.0, le=1.0, description="a changed file losing more of its papers is refused"
    )
    contact_email: str | None = Field(
        default=None, description="sent to OpenAlex (mailto=) and Crossref (User-Agent) by `enrich`, as they ask"
    )
    openalex_url: str = "https://api.openalex.org"
    crossref_url: str = "https://api.crossref.org"
    arxiv_api_url: str = "https://export.arxiv.org"

    @field_validator("home", "embedding_model", "local_model_path", "pdf_cache", mode="before")
    @classmethod
    def _expand_paths(cls, value: object) -> object:
        """Every setting that may name a file or folder: `~` and `$VARS` expanded (a model name has neither)."""
        return expand_path(value) if isinstance(value, (str, Path)) else value

    @property
    def resolved_embedding_model(self) -> str:
        if self.embedding_model:
            return self.embedding_model
        return OPENAI_EMBEDDING_MODEL if self.embedding_provider == "openai" else LOCAL_EMBEDDING_MODEL

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"


def load_settings(home: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with `home` (the --home flag) taking precedence when given. `overrides` are
    field values in any form pydantic accepts for the field (a str for a Path or a SecretStr): Settings validates
    them, so their static type is the field's input type, which Any stands for."""
    if home is not None:
        overrides["home"] = Path(expand_path(home))
    return Settings(**overrides)
