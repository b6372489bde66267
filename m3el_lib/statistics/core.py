"""Dataset statistics in the style of a dataset paper, for any dataset in the release format.

`compute_stats(instances)` makes one pass over the instances into a per-instance table (and a
per-candidate length array), then derives every table from it with pandas group-bys, so 80,000
instances take a couple of seconds. `write_stats` saves each table as CSV (and the figures of
`m3el_lib.reports.stats_figures` as PNG and SVG), each with a provenance file beside it.

Definitions (our choices, stated because a reader needs them to trust the numbers):
- topic "(none)" and split "(none)" stand for an empty field; an instance counts for a task when
  `Instance.tasks()` says it qualifies (our reading of the 9 tasks: mention modality x entity
  modality).
- a *mention* is the instance's `name` (the surface name the candidates were looked up by);
  "unique mention names" counts distinct names, "unique sentences" distinct mention contexts.
- *name ambiguity* of an instance: how many of its candidates carry exactly the mention's name
  (surrounding spaces ignored, case kept). The name *decides* when the gold entity is the only
  candidate carrying it: then matching names alone links the mention (a difficulty hint).
- the *gold description* is the record's top-level `description` (the gold entity's).
- lengths are words: runs of non-space characters.
- *vocabulary overlap* uses content words: lower-cased runs of letters/digits minus a short
  English stop-word list. Per instance: Jaccard of the sentence's and the gold description's
  word sets, and the share of the description's words found in the sentence (NaN, and left out
  of the means, when the description has no content words). Per topic we also give the Jaccard
  of the two whole vocabularies. High overlap hints that the text alone gives the answer away.
- image coverage counts a listed picture (a local path or URL); with `check_files`, also
  whether the local file exists under the dataset root.
"""
from __future__ import annotations

import os
import posixpath
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..data.io import Dataset
from ..data.picture_paths import release_root_for, split_local_path
from ..data.schema import MENTION_IMAGE_KINDS, SPLITS, TASK_NAMES, Entity, ImageRef, Instance
from ..timing import timed

NONE = "(none)"
ALL = "all"
SIDES = ("mention", "gold_entity", "negatives", "all_candidates")
TEXT_FIELDS = ("sentence", "gold_description", "candidate_description")
# A short, fixed stop-word list (function words only) so overlaps measure content words; fixed
# here rather than taken from a library so the numbers cannot change with a library version.
STOPWORDS = frozenset(
    """a an the and or but nor of in on at to for from by with without into onto over under about
    as is are was were be been being am it its this that these those he she they we you i his her
    their our your my me him them us not no so than then there here which who whom whose what when
    where why how also has have had do does did can could will would shall should may might must
    s""".split()
)
_WORD = re.compile(r"[^\W_]+")


def content_words(text: str) -> set[str]:
    """Lower-cased words of letters/digits, stop words removed (the overlap vocabulary)."""
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def word_count(text: str) -> int:
    return len(text.split())


@dataclass
class DatasetStats:
    """Every statistic of one dataset: named tables plus the per-instance table they come from."""

    tables: dict[str, pd.DataFrame]
    per_instance: pd.DataFrame
    candidate_lengths: pd.DataFrame  # topic, words: one row per candidate description
    overview: dict[str, Any]
    checksum: str = ""
    label: str = ""
    rejection_summary: str = ""  # what a lenient load dropped, and where its report is ("" if nothing)

    def table(self, name: str) -> pd.DataFrame:
        return self.tables[name]


# ---------------------------------------------------------------- the single pass


class _FileChecker:
    """Whether a listed picture's local file exists under its root, without leaving the root.

    Relative paths start at the records' folder, `/M3EL/...` paths at the release root
    (`io.split_local_path`, `io.release_root_for`: the loader's own rules). Resolving every path
    (`Path.resolve`) costs ~50 us; at 500,000 pictures that alone breaks the time budget. Instead
    each folder is resolved and listed once; a file is present when its folder lies inside the
    root and lists it as a regular file (also under its extension's other case, `.JPG`/`.jpg`).
    Only symbolic links, which could point outside, are resolved one by one. Answers are
    memoised (entities recur).
    """

    def __init__(self, root: Path | None):
        self.root = Path(root).resolve() if root is not None else None
        self.roots = {"data": self.root, "release": release_root_for(self.root)} if self.root is not None else {}
        self.seen: dict[str, bool] = {}
        self.folders: dict[tuple[str, str], dict[str, str] | None] = {}

    def present(self, ref: ImageRef | None) -> bool:
        if self.root is None or ref is None or not ref.local_path:
            return False
        known = self.seen.get(ref.local_path)
        if known is None:
            known = self.seen[ref.local_path] = self._lookup(ref.local_path)
        return known

    def _lookup(self, local: str) -> bool:
        where = split_local_path(local)
        if where is None:
            return False  # a path outside the root counts as missing and is never followed
        base, relative = where
        folder, name = posixpath.split(relative)
        if (base, folder) not in self.folders:
            self.folders[base, folder] = self._list(self.roots[base], folder)
        listing = self.folders[base, folder] or {}
        stem, suffix = posixpath.splitext(name)
        for candidate in (name, stem + suffix.lower(), stem + suffix.upper()):
            kind = listing.get(candidate)
            if kind == "link":
                root = self.roots[base]
                target = (root / folder / candidate).resolve()
                return target.is_relative_to(root) and target.is_file()
            if kind == "file":
                return True
        return False

    @staticmethod
    def _list(root: Path, folder: str) -> dict[str, str] | None:
        directory = (root / folder).resolve() if folder else root
        if not directory.is_relative_to(root) or not directory.is_dir():
            return None
        with os.scandir(directory) as entries:
            return {e.name: "link" if e.is_symlink() else "file" if e.is_file() else "other" for e in entries}


def _has_image(ref: ImageRef | None) -> bool:
    return ref is not None and bool(ref.local_path or ref.url)


def _gold_position(inst: Instance) -> int:
    """Index of the gold candidate, or -1 (lenient data or hand-made instances may lack it)."""
    for index, candidate in enumerate(inst.candidates):
        if candidate.qid == inst.qid:
            return index
    return -1


_COLUMNS = (
    "instance_id", "topic", "split", "name", "sentence_key", "gold_qid", "n_candidates", "has_gold",
    "same_name", "name_decides", "mention_image", "gold_image", "n_negatives", "negatives_with_image",
    "all_candidates_image", "mention_file", "gold_file", "negatives_with_file", "mention_image_kind",
    "sentence_words", "gold_description_words", "jaccard", "description_coverage",
)
_INT_COLUMNS = ("n_candidates", "same_name", "n_negatives", "negatives_with_image", "negatives_with_file",
                "sentence_words", "gold_description_words")
_BOOL_COLUMNS = ("has_gold", "name_decides", "mention_image", "gold_image", "all_candidates_image", "mention_file", "gold_file")


@lru_cache(maxsize=None)
def _tasks_for(mention_text: bool, mention_image: bool, has_candidates: bool,
               entity_text: bool, entity_image: bool) -> tuple[bool, ...]:
    """Which of TASK_NAMES an instance with these modalities qualifies for.

    Asks `Instance.tasks()` itself (the one definition) on a stand-in instance with the same
    modalities, once per combination, instead of once per instance: 32 combinations, not 80,000 calls.
    """
    picture = ImageRef("x.png", "", "x.png")
    candidates: tuple[Entity, ...] = ()
    if has_candidates:
        candidates = (Entity("Q1", "n" if entity_text else "", "", picture if entity_image else None),)
    stand_in = Instance("Q1", "", "", "s" if mention_text else "", picture if mention_image else None, candidates)
    qualified = {t.name for t in stand_in.tasks()}
    return tuple(name in qualified for name in TASK_NAMES)


def instance_table(
    instances: Sequence[Instance], root: Path | None = None, check_files: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, set[str]]]:
    """One row per instance with everything the tables need; plus candidate lengths and entity sets.

    The entity sets map each topic to the Qids of its candidates (for distinct-entity counts).
    One pass, one tuple per instance: this is the loop that has to be fast at 80,000 instances.
    """
    checker = _FileChecker(root if check_files else None)
    present = checker.present if checker.root is not None else (lambda ref: False)
    rows: list[tuple[Any, ...]] = []
    task_rows: list[tuple[bool, ...]] = []
    cand_topic: list[str] = []
    cand_words: list[int] = []
    entities: dict[str, set[str]] = {}
    sentence_vocab: dict[str, set[str]] = {}
    description_vocab: dict[str, set[str]] = {}
    for position, inst in enumerate(instances):
        topic = inst.topic or NONE
        gold = _gold_position(inst)
        name = inst.name.strip()
        cands = inst.candidates
        same_name = sum(c.name.strip() == name for c in cands)
        # The name alone decides when the gold is the one candidate carrying the mention's name.
        name_decides = same_name == 1 and gold >= 0 and cands[gold].name.strip() == name
        cand_images = [_has_image(c.image) for c in cands]
        n_img = sum(cand_images)
        gold_img = gold >= 0 and cand_images[gold]
        sent_words, desc_words = content_words(inst.sentence), content_words(inst.description)
        shared, union = len(sent_words & desc_words), len(sent_words | desc_words)
        if checker.root is not None:
            files = [present(c.image) for c in cands]
            gold_file = gold >= 0 and files[gold]
            negatives_with_file = sum(files) - gold_file
        else:
            gold_file, negatives_with_file = False, 0
        mention_image = _has_image(inst.image)
        rows.append((
            inst.instance_id or f"#{position}", topic, inst.split or NONE, name, inst.sentence.strip(), inst.qid,
            len(cands), gold >= 0, same_name, name_decides, mention_image, gold_img,
            len(cands) - (gold >= 0), n_img - gold_img, bool(cands) and n_img == len(cands),
            present(inst.image), gold_file, negatives_with_file,
            inst.mention_image_kind if inst.mention_image_kind in MENTION_IMAGE_KINDS else "unknown",
            len(inst.sentence.split()), len(inst.description.split()),
            shared / union if union else np.nan, shared / len(desc_words) if desc_words else np.nan,
        ))
        task_rows.append(_tasks_for(
            bool(inst.sentence.strip()), mention_image, bool(cands),
            all(c.name.strip() or c.description.strip() for c in cands), n_img == len(cands),
        ))
        entities.setdefault(topic, set()).update(c.qid for c in cands)
        cand_topic.extend([topic] * len(cands))
        cand_words.extend(len(c.description.split()) for c in cands)
        sentence_vocab.setdefault(topic, set()).update(sent_words)
        description_vocab.setdefault(topic, set()).update(desc_words)
    table = pd.DataFrame.from_records(rows, columns=list(_COLUMNS)) if rows else pd.DataFrame(
        {c: pd.Series(dtype="object") for c in _COLUMNS})
    tasks = pd.DataFrame.from_records(task_rows, columns=list(TASK_NAMES)) if task_rows else pd.DataFrame(
        {c: pd.Series(dtype=bool) for c in TASK_NAMES})
    table = pd.concat([table, tasks.astype(bool)], axis=1)
    table = table.astype({**{c: "int64" for c in _INT_COLUMNS}, **{c: bool for c in _BOOL_COLUMNS},
                          "jaccard": "float64", "description_coverage": "float64"})
    for text_column in ("instance_id", "name", "sentence_key", "gold_qid"):
        table[text_column] = table[text_column].astype("str") if len(table) else table[text_column].astype("object")
    # Few distinct values: categories make the many per-topic selections and group-bys cheap.
    for column in ("topic", "split", "mention_image_kind"):
        table[column] = table[column].astype("str").astype("category")
    lengths = pd.DataFrame({"topic": pd.Series(cand_topic, dtype="object"), "words": np.asarray(cand_words, dtype="int64")})
    table.attrs["vocabularies"] = (sentence_vocab, description_vocab)
    table.attrs["files_checked"] = checker.root is not None
    return table, lengths, entities


# ---------------------------------------------------------------- tables from the per-instance table


def _topics(table: pd.DataFrame) -> list[str]:
    return sorted(table["topic"].unique().tolist())


def _splits(table: pd.DataFrame) -> list[str]:
    present = set(table["split"].unique().tolist())
    return [s for s in SPLITS] + ([NONE] if NONE in present else []) + sorted(present - set(SPLITS) - {NONE})


def topic_task_table(table: pd.DataFrame) -> pd.DataFrame:
    """Instances per topic (rows, plus "all") and task (columns); zero where none qualify."""
    topics = _topics(table)
    grouped = table.groupby("topic")[list(TASK_NAMES)].sum().reindex(topics, fill_value=0)
    grouped.insert(0, "instances", table.groupby("topic").size().reindex(topics, fill_value=0))
    total = grouped.sum(axis=0).to_frame(ALL).T
    out = pd.concat([grouped, total]).astype("int64")
    out.index.name = "topic"
    return out


def topic_task_split_table(table: pd.DataFrame) -> pd.DataFrame:
    """Instances per split, topic and task, one row per (split, topic); zero rows kept."""
    topics, splits = _topics(table), _splits(table)
    index = pd.MultiIndex.from_product([splits, topics], names=["split", "topic"])
    grouped = table.groupby(["split", "topic"])[list(TASK_NAMES)].sum().reindex(index, fill_value=0)
    grouped.insert(0, "instances", table.groupby(["split", "topic"]).size().reindex(index, fill_value=0))
    return grouped.astype("int64")


def topic_split_table(table: pd.DataFrame) -> pd.DataFrame:
    topics, splits = _topics(table), _splits(table)
    counts = table.groupby(["topic", "split"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=topics, columns=splits, fill_value=0)
    counts.loc[ALL] = counts.sum(axis=0)
    counts["total"] = counts.sum(axis=1)
    counts.index.name = "topic"
    counts.columns.name = None
    return counts.astype("int64")


def per_topic_table(table: pd.DataFrame, entities: dict[str, set[str]]) -> pd.DataFrame:
    """Instances, entities, mentions, candidates and ambiguity per topic and overall."""
    rows = []
    groups = [(topic, table[table["topic"] == topic]) for topic in _topics(table)] + [(ALL, table)]
    for topic, part in groups:
        ents = set().union(*entities.values()) if topic == ALL else entities.get(topic, set())
        n = len(part)
        rows.append({
            "topic": topic,
            "instances": n,
            "entities": len(ents),
            "gold_entities": part["gold_qid"].nunique(),
            "unique_mention_names": part["name"].nunique(),
            "unique_sentences": part["sentence_key"].nunique(),
            "candidates_total": int(part["n_candidates"].sum()),
            "candidates_mean": float(part["n_candidates"].mean()) if n else 0.0,
            "candidates_median": float(part["n_candidates"].median()) if n else 0.0,
            "candidates_min": int(part["n_candidates"].min()) if n else 0,
            "candidates_max": int(part["n_candidates"].max()) if n else 0,
            "without_gold": int((~part["has_gold"]).sum()),
            "same_name_mean": float(part["same_name"].mean()) if n else 0.0,
            "ambiguous_share": float((part["same_name"] >= 2).mean()) if n else 0.0,
            "name_decides_share": float(part["name_decides"].mean()) if n else 0.0,
        })
    return pd.DataFrame(rows).set_index("topic")


def distribution_table(values: pd.Series, name: str) -> pd.DataFrame:
    """How many instances have each value (every value from 0 to the maximum, zeros included)."""
    counts = values.value_counts()
    top = int(values.max()) if len(values) else 0
    counts = counts.reindex(range(0, top + 1), fill_value=0)
    out = pd.DataFrame({name: counts.index.astype("int64"), "instances": counts.to_numpy(dtype="int64")})
    total = out["instances"].sum()
    out["share"] = out["instances"] / total if total else 0.0
    return out


def image_coverage_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per topic (and overall) and side: pictures listed, out of how many, and the share.

    mention and all_candidates count instances; gold_entity counts instances that have a gold
    candidate; negatives counts negative candidates. files_present counts listed pictures whose
    file exists (only when files were checked, else empty).
    """
    checked = bool(table.attrs.get("files_checked"))
    rows = []
    groups = [(topic, table[table["topic"] == topic]) for topic in _topics(table)] + [(ALL, table)]
    for topic, part in groups:
        sides = {
            "mention": (part["mention_image"].sum(), len(part), part["mention_file"].sum()),
            "gold_entity": (part["gold_image"].sum(), part["has_gold"].sum(), part["gold_file"].sum()),
            "negatives": (part["negatives_with_image"].sum(), part["n_negatives"].sum(), part["negatives_with_file"].sum()),
            "all_candidates": (part["all_candidates_image"].sum(), len(part), None),
        }
        for side, (with_image, total, files) in sides.items():
            rows.append({
                "topic": topic,
                "side": side,
                "with_image": int(with_image),
                "total": int(total),
                "share": float(with_image / total) if total else 0.0,
                "files_present": int(files) if checked and files is not None else None,
            })
    out = pd.DataFrame(rows)
    out["files_present"] = out["files_present"].astype("Int64")
    return out


def mention_image_kind_table(table: pd.DataFrame) -> pd.DataFrame:
    topics = _topics(table)
    counts = table.groupby(["topic", "mention_image_kind"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=topics, columns=list(MENTION_IMAGE_KINDS), fill_value=0)
    counts.loc[ALL] = counts.sum(axis=0)
    counts.index.name = "topic"
    counts.columns.name = None
    return counts.astype("int64")


def ambiguity_and_picture_kinds(table: pd.DataFrame, split: str | None = None) -> pd.DataFrame:
    """Per topic (and all): how often the name is ambiguous and what the mention picture is.

    `ambiguous_share`: instances with a candidate other than the gold that has exactly the
    mention's name; `distinct_share`: of the instances with a mention picture, those whose picture
    is a different file from any picture of the gold (kind "distinct"; "augmented" marks a
    transformed copy of the gold's own picture). `split` restricts to one split (e.g. "test").
    """
    part = table if split in (None, "", "all") else table[table["split"] == split]
    rows = []
    for topic, group in [(topic, part[part["topic"] == topic]) for topic in _topics(table)] + [(ALL, part)]:
        pictured = group[group["mention_image"]]
        kinds = pictured["mention_image_kind"].astype(str)
        n = len(group)
        rows.append({
            "topic": topic,
            "instances": n,
            "ambiguous_share": float((group["same_name"] >= 2).mean()) if n else 0.0,
            "with_mention_picture": len(pictured),
            "distinct": int((kinds == "distinct").sum()),
            "augmented": int((kinds == "augmented").sum()),
            "distinct_share": float((kinds == "distinct").mean()) if len(pictured) else 0.0,
        })
    return pd.DataFrame(rows).set_index("topic")


def _describe(values: pd.Series) -> dict[str, float]:
    if not len(values):
        return {"count": 0, "mean": 0.0, "min": 0.0, "median": 0.0, "p90": 0.0, "max": 0.0}
    return {
        "count": int(len(values)),
        "mean": float(values.mean()),
        "min": float(values.min()),
        "median": float(values.median()),
        "p90": float(values.quantile(0.9)),
        "max": float(values.max()),
    }


def text_length_table(table: pd.DataFrame, candidate_lengths: pd.DataFrame) -> pd.DataFrame:
    """Words per text field and topic: count, mean, min, median, 90th percentile, max."""
    rows = []
    sources = {
        "sentence": (table, "sentence_words"),
        "gold_description": (table, "gold_description_words"),
        "candidate_description": (candidate_lengths, "words"),
    }
    for topic in [*_topics(table), ALL]:
        for field_name, (frame, column) in sources.items():
            part = frame[column] if topic == ALL else frame.loc[frame["topic"] == topic, column]
            rows.append({"topic": topic, "field": field_name, **_describe(part)})
    return pd.DataFrame(rows)


def vocabulary_overlap_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per topic: mean per-instance Jaccard and description coverage, and whole-vocabulary Jaccard."""
    sentence_vocab, description_vocab = table.attrs.get("vocabularies", ({}, {}))
    rows = []
    for topic in [*_topics(table), ALL]:
        part = table if topic == ALL else table[table["topic"] == topic]
        if topic == ALL:
            sv = set().union(*sentence_vocab.values()) if sentence_vocab else set()
            dv = set().union(*description_vocab.values()) if description_vocab else set()
        else:
            sv, dv = sentence_vocab.get(topic, set()), description_vocab.get(topic, set())
        union = sv | dv
        rows.append({
            "topic": topic,
            "instances": len(part),
            "mean_jaccard": float(part["jaccard"].mean()) if part["jaccard"].notna().any() else np.nan,
            "mean_description_coverage": float(part["description_coverage"].mean()) if part["description_coverage"].notna().any() else np.nan,
            "no_shared_word_share": float((part["description_coverage"] == 0).sum() / part["description_coverage"].notna().sum())
            if part["description_coverage"].notna().any() else np.nan,
            "sentence_vocabulary": len(sv),
            "description_vocabulary": len(dv),
            "vocabulary_jaccard": len(sv & dv) / len(union) if union else np.nan,
        })
    return pd.DataFrame(rows).set_index("topic")


# ---------------------------------------------------------------- everything at once


@timed('statistics')
def compute_stats(
    data: Dataset | Sequence[Instance],
    *,
    root: Path | None = None,
    check_files: bool = True,
    label: str = "",
) -> DatasetStats:
    """Every statistic of a dataset (a loaded `Dataset`, or instances with an optional root)."""
    if isinstance(data, Dataset):
        instances, root, checksum, rejected = data.instances, root or data.root, data.checksum, len(data.rejected)
    else:
        instances, checksum, rejected = list(data), "", 0
    table, candidate_lengths, entities = instance_table(instances, root=root, check_files=check_files)
    per_topic = per_topic_table(table, entities)
    topic_task = topic_task_table(table)
    tables = {
        "topic_task": topic_task,
        "topic_task_split": topic_task_split_table(table),
        "topic_split": topic_split_table(table),
        "per_topic": per_topic,
        "candidates_distribution": distribution_table(table["n_candidates"], "candidates"),
        "ambiguity_distribution": distribution_table(table["same_name"], "same_name_candidates"),
        "image_coverage": image_coverage_table(table),
        "mention_image_kinds": mention_image_kind_table(table),
        "ambiguity_and_picture_kinds": ambiguity_and_picture_kinds(table),
        "ambiguity_and_picture_kinds_test": ambiguity_and_picture_kinds(table, "test"),
        "text_lengths": text_length_table(table, candidate_lengths),
        "vocabulary_overlap": vocabulary_overlap_table(table),
    }
    overall = per_topic.loc[ALL]
    overview = {
        "label": label,
        "checksum": checksum,
        "instances": int(len(table)),
        "rejected_records": rejected,
        "topics": len(_topics(table)),
        "tasks_with_instances": int((topic_task.loc[ALL, list(TASK_NAMES)] > 0).sum()),
        "entities": int(overall["entities"]),
        "gold_entities": int(overall["gold_entities"]),
        "unique_mention_names": int(overall["unique_mention_names"]),
        "unique_sentences": int(overall["unique_sentences"]),
        "candidates_total": int(overall["candidates_total"]),
        "candidates_mean": float(overall["candidates_mean"]),
        "instances_without_gold": int(overall["without_gold"]),
        "instances_without_candidates": int((table["n_candidates"] == 0).sum()),
        "ambiguous_share": float(overall["ambiguous_share"]),
        "name_decides_share": float(overall["name_decides_share"]),
        "files_checked": bool(table.attrs.get("files_checked")),
        "knowledge_bases": dict(sorted(Counter(inst.kb for inst in instances).items())),
    }
    return DatasetStats(tables=tables, per_instance=table, candidate_lengths=candidate_lengths,
                        overview=overview, checksum=checksum, label=label)


def overview_table(stats: DatasetStats) -> pd.DataFrame:
    """The overview as a two-column table (metric, value) for CSV and display."""
    def shown(value: Any) -> Any:
        if isinstance(value, dict):
            return ", ".join(f"{a}: {b}" for a, b in value.items())
        return round(value, 4) if isinstance(value, float) else value

    rows = [{"metric": k, "value": shown(v)} for k, v in stats.overview.items()]
    return pd.DataFrame(rows)


def example_instances(instances: Iterable[Instance], root: Path | None = None) -> dict[str, Instance]:
    """One example per topic for the gallery: the first one with the most pictures on disk.

    Prefers a mention picture, then more candidate pictures whose file exists under `root`; the
    first such instance wins ties, so the choice is deterministic.
    """
    checker = _FileChecker(root)
    # Without a root nothing can be opened: rank by listed pictures instead.
    shown = checker.present if checker.root is not None else _has_image
    best: dict[str, tuple[tuple[int, int], Instance]] = {}
    for inst in instances:
        topic = inst.topic or NONE
        score = (int(shown(inst.image)), sum(shown(c.image) for c in inst.candidates))
        if topic not in best or score > best[topic][0]:
            best[topic] = (score, inst)
    return {topic: best[topic][1] for topic in sorted(best)}


# ---------------------------------------------------------------- writing tables and figures


def name_mentions(instances: Sequence[Instance]) -> dict[str, float]:
    """How much the mention sentences give away, lexically: share naming the gold, and another candidate.

    A sentence that contains the gold's full name (case-insensitive) and no other candidate's makes
    T-T nearly a string match; this is a property of the data, printed beside the T-T numbers.
    """
    gold_named = other_named = only_gold = 0
    for inst in instances:
        sentence = inst.sentence.lower()
        gold = bool(inst.gold.name) and inst.gold.name.lower() in sentence
        other = any(c.name and c.qid != inst.qid and c.name.lower() in sentence for c in inst.candidates)
        gold_named += gold
        other_named += other
        only_gold += gold and not other
    n = max(len(instances), 1)
    return {"instances": len(instances), "gold name in sentence": gold_named / n, "another candidate's name in sentence": other_named / n, "only the gold's name": only_gold / n}
