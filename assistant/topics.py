"""Topic orchestration: the library's topic map and cited topic summaries, cached in HOME/clusters, and the topic
report. The clustering and summarizing themselves are `clusters`; the files they are written to are `report`.
`Assistant.clusters`, `cluster_summary` and `summarize` call only this, and the agent's cluster tools use it too.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .clusters import (
    UNCLUSTERED,
    ClusterMap,
    ClusterSummarizer,
    ClusterSummary,
    library_map,
    summary_key,
)
from .index import ProgressCallback, Store
from .index.store import write_atomic
from .migrations import JsonStep, NewerFile, migrate_json, versioned_json

if TYPE_CHECKING:
    from .llm import ChatSetup
    from .report import ReportRun

log = logging.getLogger("litassist.topics")
TopicCount = int | Literal["auto"] | None  # None: the current map, whatever its k; "auto": k chosen; int: that k




def m001_unversioned(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (no schema_version key) has the layout of version 1."""
    return data


def m002_topics_and_unclustered(data: dict[str, Any]) -> dict[str, Any]:
    """One list "clusters" (the unclustered group last) becomes "topics" and "unclustered"."""
    groups = data.pop("clusters")
    data["topics"] = [c for c in groups if c["cluster_id"] != UNCLUSTERED]
    data["unclustered"] = next((c for c in groups if c["cluster_id"] == UNCLUSTERED), None)
    return data


# HOME/clusters/map.json and HOME/clusters/summaries/*.json: steps from each schema version to the next
MAP_MIGRATIONS: list[JsonStep] = [m001_unversioned, m002_topics_and_unclustered]
SUMMARY_MIGRATIONS: list[JsonStep] = [m001_unversioned]
Cached = TypeVar("Cached", ClusterMap, ClusterSummary)


class ClusterCache:
    """HOME/clusters: the last map (reused while the library is unchanged) and one file per summary.

    Plain JSON files, written whole under a unique name then renamed into place, so a killed run leaves the old
    file or the new one. Chroma holds papers and vectors; these are derived views that can always be recomputed:
    a damaged file (binary, truncated, another layout) is logged in one line and recomputed.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    def load_map(self) -> ClusterMap | None:
        return _read(self.folder / "map.json", ClusterMap, MAP_MIGRATIONS)

    def save_map(self, cluster_map: ClusterMap) -> None:
        self._write(self.folder / "map.json", _versioned(cluster_map, MAP_MIGRATIONS))

    def load_summary(self, key: str) -> ClusterSummary | None:
        return _read(self.folder / "summaries" / f"{key}.json", ClusterSummary, SUMMARY_MIGRATIONS)

    def save_summary(self, key: str, summary: ClusterSummary) -> None:
        self._write(self.folder / "summaries" / f"{key}.json", _versioned(summary, SUMMARY_MIGRATIONS))

    def _write(self, path: Path, text: str) -> None:
        """Write one entry. Whatever is in the way (a file where a cache folder belongs, a folder where an entry
        belongs) is derived data: it is removed with one warning line. A cache that cannot be written at all
        costs a recomputation next time, not this run."""
        try:
            for folder in (self.folder, path.parent):
                if folder.is_symlink() or folder.exists() and not folder.is_dir():
                    log.warning("%s is not a folder; replacing it (the topic cache is rebuilt)", folder)
                    folder.unlink()
            if path.is_dir() and not path.is_symlink():
                log.warning("%s is a folder; replacing it with the cache entry", path)
                shutil.rmtree(path)
            write_atomic(path, text)
        except OSError as error:
            log.warning("could not save %s (%s); it will be recomputed next time", path, error.strerror or error)


def _versioned(record: ClusterMap | ClusterSummary, steps: list[JsonStep]) -> str:
    return json.dumps(versioned_json(record.model_dump(mode="json"), steps), ensure_ascii=False)


def _read(path: Path, model: type[Cached], steps: list[JsonStep]) -> Cached | None:
    """A cached record, or None when there is none or it cannot be used (it is then recomputed; so is a file of a
    newer litassist: derived data)."""
    try:
        return model.model_validate(migrate_json(json.loads(path.read_bytes()), steps, path))
    except FileNotFoundError:
        return None
    except NewerFile as error:
        log.warning("%s; recomputing it", error)
        return None
    except (OSError, ValueError) as error:  # ValidationError is a ValueError: garbage, truncation, old layouts
        log.warning("%s cannot be used (%s); recomputing it", path, " ".join(str(error).split())[:120])
        return None




class Topics:
    """The topic map and summaries of one library; built lazily, so a library never asked about topics pays
    nothing (no chat model is built until a summary is needed)."""

    def __init__(self, store: Store, folder: Path, chat: Callable[[], ChatSetup],
                 summarizer: Callable[[], ClusterSummarizer]):
        self.store = store
        self.cache = ClusterCache(folder)
        self._chat = chat
        self._summarizer = summarizer

    def clusters(self, n_clusters: TopicCount = None) -> ClusterMap:
        """The library's topic clusters with a 2-D map. `n_clusters`: None for the current map (the last one
        computed, with its k: brought up to date if the library changed; k chosen automatically if there is none),
        "auto" for k chosen automatically, a number for that many topics.

        Reused while the library is unchanged; after a small change new papers join their nearest topics, after a
        larger one the map is recomputed and clusters that continue keep their ids (clusters.library_map)."""
        cached = self.cache.load_map()
        if n_clusters is None:
            requested = cached.requested_clusters if cached else None
        else:
            requested = None if n_clusters == "auto" else n_clusters
        cluster_map = library_map(self.store, cached, requested)
        if cluster_map is not cached:
            self.cache.save_map(cluster_map)
            log.info("topic map of %d papers: %s, %d clusters, %d assigned since", cluster_map.paper_count,
                     cluster_map.method, len(cluster_map.topics), cluster_map.changed_since)
        return cluster_map

    def cluster_summary(self, cluster_id: str, force: bool = False) -> ClusterSummary:
        """A cited summary of one cluster of the current map; cached until the cluster's papers change."""
        return self._summary(self.clusters(), cluster_id, force)[0]

    def _summary(self, cluster_map: ClusterMap, cluster_id: str, force: bool) -> tuple[ClusterSummary, bool]:
        """(summary, whether it came from the cache)."""
        cluster = cluster_map.get(cluster_id)
        if cluster is None or cluster_id == UNCLUSTERED:
            known = ", ".join(c.cluster_id for c in cluster_map.topics)
            raise KeyError(f"no cluster {cluster_id!r} to summarize; the clusters are {known}")
        chat = self._chat()
        key = summary_key(cluster, chat.provider, chat.model_name)
        cached = None if force else self.cache.load_summary(key)
        if cached:
            return cached, True
        summarizer = self._summarizer()
        summary = summarizer.summarize(cluster, self.store.get_papers(summarizer.evidence_ids(cluster)))
        self.cache.save_summary(key, summary)
        return summary, False

    def summarize(
        self,
        out_dir: str | Path,
        n_clusters: TopicCount = "auto",
        formats: Sequence[str] = ("md", "json", "html"),
        force: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ReportRun:
        """Write a topic report to `out_dir`: overview, topic map, trends, cited summary per topic and subtopic,
        BibTeX, clusters.json.

        Each summary is cached as soon as it is written, so an interrupted run resumes where it stopped;
        `force` writes every summary again."""
        from .report import ReportRun, shown_papers, write_report

        cluster_map = self.clusters(n_clusters)
        summaries, fresh = {}, 0
        every = [c for topic in cluster_map.topics for c in (topic, *topic.subtopics)]  # topics and subtopics
        for done, cluster in enumerate(every, start=1):
            summaries[cluster.cluster_id], cached = self._summary(cluster_map, cluster.cluster_id, force)
            fresh += not cached
            if progress:
                progress("summarize", done, len(every))
        papers = self.store.get_papers(shown_papers(cluster_map, summaries))
        files = write_report(Path(out_dir), cluster_map, summaries, papers, formats)
        return ReportRun(out_dir=str(out_dir), files=files, clusters=len(cluster_map.topics), summarized=fresh,
                         cached=len(summaries) - fresh)
