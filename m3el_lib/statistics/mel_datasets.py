"""The comparison table of multi-modal entity linking (MEL) datasets.

Each published dataset's figures are the ones its authors published, with the publication
named; a figure we could not confirm from the authors' own words reads "unknown" (never a guess
and never a number recalled from a later paper). Our own dataset's row is measured by
`m3el_lib.statistics.core`. The M³EL release row holds only what the M³EL abstract states.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from .core import ALL, DatasetStats

UNKNOWN = "unknown"


@dataclass(frozen=True)
class PublishedDataset:
    """One row of the comparison: what a dataset's authors published, and where."""

    dataset: str
    size: str  # as published, with its unit (instances, samples, image-caption pairs ...)
    topics: str
    tasks: str
    knowledge_base: str
    context_source: str
    source: str  # the publication the figures come from
    note: str = ""


PUBLISHED: tuple[PublishedDataset, ...] = (
    PublishedDataset(
        dataset="WikiMEL",
        size=UNKNOWN,
        topics=UNKNOWN,
        tasks=UNKNOWN,
        knowledge_base=UNKNOWN,
        context_source=UNKNOWN,
        source='P. Wang, J. Wu, X. Chen: "Multimodal Entity Linking with Gated Hierarchical Fusion and '
               'Contrastive Training", SIGIR 2022 (releases WikiMEL and Richpedia-MEL)',
        note="The same group's MELBench release (Zhou et al., \"Weibo-MEL, Wikidata-MEL and Richpedia-MEL: "
             "Multimodal Entity Linking Benchmark Datasets\", CCKS 2021) states 18,880 samples for "
             "Wikidata-MEL; that WikiMEL has the same size is not confirmed here.",
    ),
    PublishedDataset(
        dataset="RichpediaMEL",
        size=UNKNOWN,
        topics=UNKNOWN,
        tasks=UNKNOWN,
        knowledge_base=UNKNOWN,
        context_source=UNKNOWN,
        source='P. Wang, J. Wu, X. Chen: "Multimodal Entity Linking with Gated Hierarchical Fusion and '
               'Contrastive Training", SIGIR 2022',
        note="MELBench (Zhou et al., CCKS 2021) states 17,806 samples for Richpedia-MEL; that "
             "RichpediaMEL has the same size is not confirmed here.",
    ),
    PublishedDataset(
        dataset="WikiDiverse",
        size="about 8K image-caption pairs",
        topics=UNKNOWN,
        tasks=UNKNOWN,
        knowledge_base="Wikipedia",
        context_source="Wikinews (human-annotated)",
        source='X. Wang et al.: "WikiDiverse: A Multimodal Entity Linking Dataset with Diversified Contextual '
               'Topics and Entity Types", ACL 2022 (abstract; size from the authors\' repository README)',
        note="The abstract speaks of diversified topics and entity types without a count we could confirm.",
    ),
    PublishedDataset(
        dataset="M³EL (release)",
        size="79,625 instances",
        topics="5",
        tasks="9",
        knowledge_base=UNKNOWN,
        context_source=UNKNOWN,
        source='F. Wang et al.: "M³EL: A Multi-task Multi-topic Dataset for Multi-modal Entity Linking", '
               "arXiv 2410.18096 (abstract)",
        note="Everything beyond the abstract's three figures is left unknown here; measure the release "
             "with the full profile instead.",
    ),
)


def measured_row(stats: DatasetStats, dataset: str, profile: str, context_source: str = UNKNOWN) -> PublishedDataset:
    """Our dataset's row, measured: size, topics, tasks with at least one instance, knowledge base."""
    kbs = stats.overview.get("knowledge_bases", {})
    kb_names = {"wikidata": "Wikidata", "m3el-snapshot": "offline snapshot (local X ids, not Wikidata)",
                "m3el-synthetic": "synthetic (local X ids, not Wikidata; scale tests only)"}
    topics = stats.table("topic_task").drop(index=ALL, errors="ignore")
    return PublishedDataset(
        dataset=dataset,
        size=f"{stats.overview['instances']:,} instances",
        topics=str(len(topics)),
        tasks=str(stats.overview["tasks_with_instances"]),
        knowledge_base=", ".join(kb_names.get(kb, kb) for kb in kbs) or UNKNOWN,
        context_source=context_source,
        source=f"measured here ({profile} profile, data {stats.checksum[:12] or 'in memory'})",
        note="tasks: how many of the 9 tasks (our reading) have at least one instance",
    )


def comparison_table(stats: DatasetStats | None = None, dataset: str = "M³EL-mini (our sample)",
                     profile: str = "sample", context_source: str = UNKNOWN) -> pd.DataFrame:
    """The published datasets, plus a measured row for `stats` when given."""
    rows = list(PUBLISHED)
    if stats is not None:
        rows.append(measured_row(stats, dataset, profile, context_source))
    return pd.DataFrame([asdict(row) for row in rows])
