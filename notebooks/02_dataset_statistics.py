# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Dataset statistics: what is in the data, per topic and per task
#
# **Goal.** Give the statistics a dataset paper shows, computed from the data itself: how many
# instances each topic has for each of the 9 tasks, how many entities, mentions and candidates,
# how ambiguous the names are, how many pictures there are on each side, how long the texts are,
# and how much a mention's sentence already says about its gold entity. Then set them beside the
# figures the authors of other multi-modal entity linking (MEL) datasets published.
#
# It runs on the embedded sample M³EL-mini by default (`profile = "sample"`) and on the real
# 79,625-instance release with `profile = "full"` (or any dataset in the release format with
# `dataset_path`). Every table and figure is also written as CSV, PNG and SVG, each with a
# provenance file (commit, parameters, data checksum), to the profile's results folder.
#
# Definitions that are our choices (the paper does not give them) are listed in
# `m3el_lib.statistics.core`; the ones a reader needs are repeated next to each table.

# %% tags=["parameters"]
profile = "sample"
dataset_path = ""  # empty: the profile's dataset (the sample is built on first use)
lenient = False  # True: skip and quarantine bad records instead of stopping at the first
out_dir = ""  # empty: results/<profile>/stats under M3EL_HOME

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display
from myst_nb import glue

from m3el_lib import config
from m3el_lib.data.datasets import resolve_dataset
from m3el_lib.reports.findings import negative_tiers, statistics_remarks, value_list
from m3el_lib.statistics.core import ALL
from m3el_lib.statistics.pipeline import run_stats, stats_dir

pd.set_option("display.precision", 3)
pd.set_option("display.max_columns", 20)
pd.set_option("display.width", 160)

chosen = config.get_profile(profile)
dataset_ref = resolve_dataset(dataset_path or None, chosen.name)
data_path = dataset_ref.path
target = Path(out_dir) if out_dir else stats_dir(chosen.name)
stats, written = run_stats(data_path, target, profile=chosen.name, lenient=lenient)
tables = stats.tables
# Values the prose shows (MyST-NB glue: each number stays tied to the cell that computed it).
glue("profile_name", chosen.name, display=False)
glue("data_name", data_path.name, display=False)
glue("data_checksum", stats.checksum[:12], display=False)
glue("n_instances", int(stats.overview["instances"]), display=False)
glue("n_rejected", int(stats.overview["rejected_records"]), display=False)
glue("n_written", len(written), display=False)
glue("results_folder", str(target), display=False)


def show(name: str) -> None:
    """A statistics table (its caption is the Markdown above the cell)."""
    display(tables[name] if name in tables else pd.read_csv(target / f"{name}.csv"))


def figure(name: str) -> None:
    display(Image(filename=str(target / f"{name}.png")))


# %% [markdown]
# Every number below comes from the **{glue:text}`profile_name` profile**, data
# {glue:text}`data_name` (checksum {glue:text}`data_checksum`): {glue:text}`n_instances:,d`
# instances ({glue:text}`n_rejected` records rejected). Each table's caption names the CSV it was
# written to; {glue:text}`n_written` files went to {glue:text}`results_folder`.

# %% [markdown]
# ## Overview
# The headline counts. *Entities* are the distinct ids among all candidates (gold and negatives);
# *unique mention names* the distinct `name` fields (the name the candidates were looked up by);
# *ambiguous share* the share of instances where at least two candidates carry the mention's exact
# name; *name decides share* the share where the gold entity is the only candidate carrying it,
# so that matching names alone would link the mention. `files_checked` says whether listed
# pictures were also looked up on disk.
#
# **Overview** ({glue:text}`profile_name` profile, data {glue:text}`data_checksum`; `overview.csv`)

# %%
show("overview")

# %% [markdown]
# ## How this compares with other MEL datasets
# Each published row holds only figures its authors published, with the publication named;
# "unknown" means we could not confirm a figure from the authors' own words, so we did not fill it
# in from memory or from later papers. The M³EL release row holds the three figures of the M³EL
# abstract. The last row is measured here: its *tasks* column counts the tasks (our reading: every
# pairing of mention modality T, I, TI with entity modality T, I, TI) with at least one instance.
#
# **MEL datasets: published figures and ours** (ours: {glue:text}`profile_name` profile, data
# {glue:text}`data_checksum`; `mel_datasets.csv`)

# %%
show("mel_datasets")

# %% [markdown]
# ## Instances per topic and task
# An instance counts for a task when it has what the task needs: a sentence for a text mention,
# a picture for an image mention, and for entity modality I (or TI) a picture for *every*
# candidate, since a candidate without one could not be ranked by picture. So the eight tasks
# that involve a picture can only have as many instances as there are fully pictured instances,
# and a topic with few pictures shows small numbers there: a zero is a real zero, not a gap.

# %%
figure("topic_task_heatmap")

# %% [markdown]
# **Instances per topic and task** ({glue:text}`profile_name` profile, data
# {glue:text}`data_checksum`; `topic_task.csv`)

# %%
show("topic_task")

# %% [markdown]
# **Instances per topic and split** ({glue:text}`profile_name` profile, data
# {glue:text}`data_checksum`; `topic_split.csv`)

# %%
show("topic_split")

# %% [markdown]
# **Instances per split, topic and task** ({glue:text}`profile_name` profile, data
# {glue:text}`data_checksum`; `topic_task_split.csv`)

# %%
show("topic_task_split")

# %% [markdown]
# When the dataset folder carries a construction manifest (the sample does), its own per-task
# counts must equal ours: two independent countings of the same records.

# %%
manifest_path = data_path / "manifest.json" if data_path.is_dir() else None
manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path and manifest_path.exists() else {}
by_task = manifest.get("counts", {}).get("by_task")
if by_task and not lenient:
    ours = tables["topic_task"].loc[ALL].drop("instances").to_dict()
    agree = {task: int(ours[task]) == count for task, count in by_task.items()}
    print(f"manifest vs statistics ({chosen.name}, {data_path.name}): " + ("all 9 task counts agree" if all(agree.values())
          else f"DISAGREE on {[t for t, ok in agree.items() if not ok]}"))
else:
    print("no construction manifest with per-task counts next to this dataset: nothing to cross-check")

# %% [markdown]
# ## Entities, mentions and candidates
# Per topic: instances, distinct entities among the candidates, distinct gold entities, distinct
# mention names and sentences, candidates per instance and how often the name is ambiguous. Then
# the two distributions: candidates per instance, and how many candidates carry the mention's
# exact name (case kept, surrounding spaces ignored). In the paper's construction the candidates
# *share the mention's name*, so the name alone never tells them apart. Where most instances sit
# at 1 instead, the negatives were found some other way (similar names or texts), and a model
# that sees entity names can often link by string matching: the text tasks are then easier than
# in a same-name candidate set. The reading below says how often that is the case here.
#
# **Entities, mentions, candidates and ambiguity per topic** ({glue:text}`profile_name` profile,
# data {glue:text}`data_checksum`; `per_topic.csv`)

# %%
show("per_topic")
figure("candidates_ambiguity")
overall = tables["per_topic"].loc[ALL]
glue("candidates_mean", float(overall["candidates_mean"]), display=False)
glue("candidates_min", int(overall["candidates_min"]), display=False)
glue("candidates_max", int(overall["candidates_max"]), display=False)
glue("ambiguous_share", float(overall["ambiguous_share"]), display=False)
glue("name_decides_share", float(overall["name_decides_share"]), display=False)
glue("negative_tiers", negative_tiers(manifest.get("counts", {}).get("negatives_by_tier")), display=False)

# %% [markdown]
# Reading ({glue:text}`profile_name` profile, data {glue:text}`data_checksum`):
#
# - Candidates per instance: mean {glue:text}`candidates_mean:.2f`, from
#   {glue:text}`candidates_min` to {glue:text}`candidates_max`.
# - Instances with at least two candidates of the mention's exact name:
#   {glue:text}`ambiguous_share:.1%`.
# - Instances where the gold entity is the only candidate with the mention's name (the name alone
#   decides): {glue:text}`name_decides_share:.1%`.
# - How the construction chose the negatives (from its manifest): {glue:text}`negative_tiers`.

# %% [markdown]
# ## Pictures: coverage per side and the kinds of mention picture
# The share of mentions, gold entities and negative candidates with a listed picture, per topic
# (the last bar: instances where every candidate has one, which is what the entity-side image
# tasks need). `files_present` in the table counts the listed pictures whose file is actually in
# the dataset folder. The kinds of mention picture say how the mention's picture relates to the
# gold entity's: a *distinct* file, an *augmented* copy of the entity's picture, the *same file*,
# *unknown*, or *none*. Augmented or identical pictures make the image tasks easier than distinct
# photographs would.

# %%
figure("image_coverage")

# %% [markdown]
# **Image coverage per topic and side** ({glue:text}`profile_name` profile, data
# {glue:text}`data_checksum`; `image_coverage.csv`)

# %%
show("image_coverage")

# %% [markdown]
# **Kinds of mention picture per topic** ({glue:text}`profile_name` profile, data
# {glue:text}`data_checksum`; `mention_image_kinds.csv`)

# %%
show("mention_image_kinds")
coverage = tables["image_coverage"]
mentions = coverage[(coverage["side"] == "mention") & (coverage["topic"] != ALL)].set_index("topic")["share"]
glue("mention_share_low", float(mentions.min()), display=False)
glue("mention_share_low_topic", mentions.idxmin(), display=False)
glue("mention_share_high", float(mentions.max()), display=False)
glue("mention_share_high_topic", mentions.idxmax(), display=False)

# %% [markdown]
# Reading ({glue:text}`profile_name` profile, data {glue:text}`data_checksum`): the
# mention-picture share goes from {glue:text}`mention_share_low:.1%`
# ({glue:text}`mention_share_low_topic`) to {glue:text}`mention_share_high:.1%`
# ({glue:text}`mention_share_high_topic`); the topics with few pictures are the ones with small
# counts in the image tasks of the heatmap above.

# %% [markdown]
# ## How hard the test split is: same-name candidates and kinds of mention picture
# The two properties that decide whether linking is disambiguation rather than name or picture
# matching, on the split the evaluation scores. *Ambiguous share*: instances where a candidate
# other than the gold carries exactly the mention's name (the paper's candidates share it).
# *Distinct share*: of the instances whose mention shows a picture, those where it is another
# picture of the entity, a different file from any of the gold's (a WikiMEL-style news photo
# against the knowledge base's photo); *augmented* ones are a transformed copy of the gold's own
# picture, flagged per record and scored as their own slice in the evaluation chapters.

# %%
kinds_split = "ambiguity_and_picture_kinds_test" if (tables["ambiguity_and_picture_kinds_test"]["instances"] > 0).any() \
    else "ambiguity_and_picture_kinds"
hardness = tables[kinds_split].loc[ALL]
glue("hardness_csv", f"{kinds_split}.csv", display=False)
glue("hardness_split", "test split" if kinds_split.endswith("test") else "all splits", display=False)
glue("hardness_ambiguous", float(hardness["ambiguous_share"]), display=False)
glue("hardness_instances", int(hardness["instances"]), display=False)
glue("hardness_distinct", float(hardness["distinct_share"]), display=False)
glue("hardness_pictures", int(hardness["with_mention_picture"]), display=False)
glue("hardness_augmented", int(hardness["augmented"]), display=False)

# %% [markdown]
# **Same-name ambiguity and mention-picture kinds per topic, {glue:text}`hardness_split`**
# ({glue:text}`profile_name` profile, data {glue:text}`data_checksum`; {glue:text}`hardness_csv`)

# %%
show(kinds_split)

# %% [markdown]
# Reading ({glue:text}`profile_name` profile, data {glue:text}`data_checksum`,
# {glue:text}`hardness_split`): {glue:text}`hardness_ambiguous:.1%` of
# {glue:text}`hardness_instances:,d` instances have a same-name negative;
# {glue:text}`hardness_distinct:.1%` of the {glue:text}`hardness_pictures:,d` mention pictures are
# distinct, {glue:text}`hardness_augmented:,d` augmented.

# %% [markdown]
# ## Text lengths
# Words (runs of non-space characters) per mention sentence, gold entity description, and
# candidate description (all candidates). The boxes show quartiles, the whiskers 1.5 times the
# inter-quartile range, the dots what lies beyond.

# %%
figure("text_lengths")

# %% [markdown]
# **Words per text field and topic** ({glue:text}`profile_name` profile, data
# {glue:text}`data_checksum`; `text_lengths.csv`)

# %%
show("text_lengths")

# %% [markdown]
# ## Vocabulary overlap: how much the sentence gives away
# Content words (lower-cased letter/digit runs without a short list of function words) of the
# mention sentence against those of the gold description: per instance the Jaccard index and
# the share of the description's words found in the sentence (*description coverage*), averaged
# per topic; *no shared word* is the share of instances where they share none; the last column
# compares the two whole vocabularies of the topic. A high description coverage means the text
# alone points at the gold entity: a hint that text-to-text linking is easy on that topic.
#
# **Vocabulary overlap between mention sentence and gold description** ({glue:text}`profile_name`
# profile, data {glue:text}`data_checksum`; `vocabulary_overlap.csv`)

# %%
show("vocabulary_overlap")
description_coverage = tables["vocabulary_overlap"]["mean_description_coverage"]
per_topic_coverage = description_coverage.drop(index=ALL, errors="ignore")
glue("coverage_mean", float(description_coverage.loc[ALL]), display=False)
glue("coverage_high", float(per_topic_coverage.max()), display=False)
glue("coverage_high_topic", per_topic_coverage.idxmax(), display=False)
glue("coverage_low", float(per_topic_coverage.min()), display=False)
glue("coverage_low_topic", per_topic_coverage.idxmin(), display=False)

# %% [markdown]
# Reading ({glue:text}`profile_name` profile, data {glue:text}`data_checksum`): on average
# {glue:text}`coverage_mean:.0%` of a gold description's content words appear in the mention's
# sentence; highest in {glue:text}`coverage_high_topic` ({glue:text}`coverage_high:.0%`), lowest in
# {glue:text}`coverage_low_topic` ({glue:text}`coverage_low:.0%`).

# %% [markdown]
# ## One example per topic
# For each topic, the instance with the most pictures on disk (the first such one): the mention's
# picture and sentence on the left, then its candidates with the gold entity first and framed.
# A candidate or mention without a picture appears as an empty, labelled box ("no picture", or
# "file missing" when the record lists a file that is not in the dataset folder).

# %%
figure("example_gallery")

# %%
task_counts = tables["topic_task"].loc[ALL].drop("instances")
sides = tables["image_coverage"].set_index(["topic", "side"])["share"]
words = tables["text_lengths"].set_index(["topic", "field"])["median"]
glue("n_topics", int(stats.overview["topics"]), display=False)
glue("n_tasks_with_instances", int(stats.overview["tasks_with_instances"]), display=False)
glue("task_counts", value_list(task_counts), display=False)
glue("n_entities", int(stats.overview["entities"]), display=False)
glue("n_gold_entities", int(stats.overview["gold_entities"]), display=False)
glue("n_mention_names", int(stats.overview["unique_mention_names"]), display=False)
glue("mention_picture_share", float(sides.loc[(ALL, "mention")]), display=False)
glue("all_candidates_pictured_share", float(sides.loc[(ALL, "all_candidates")]), display=False)
glue("sentence_words_median", float(words.loc[(ALL, "sentence")]), display=False)
glue("description_words_median", float(words.loc[(ALL, "gold_description")]), display=False)
# What the numbers mean for the later chapters: each remark is made only when the data bear it out.
glue("remarks", Markdown(statistics_remarks(task_counts, tables["topic_task"].drop(index=ALL),
                                            stats.overview["name_decides_share"], description_coverage.loc[ALL])),
     display=False)

# %% [markdown]
# ## What this showed
# The statistics of the dataset, computed from its records in one pass, with every table and
# figure written next to its provenance. In numbers ({glue:text}`profile_name` profile, data
# {glue:text}`data_name`, checksum {glue:text}`data_checksum`):
#
# - {glue:text}`n_instances:,d` instances in {glue:text}`n_topics` topics;
#   {glue:text}`n_tasks_with_instances` of the 9 tasks have instances: {glue:text}`task_counts`.
# - {glue:text}`n_entities:,d` distinct entities among the candidates, {glue:text}`n_gold_entities:,d`
#   of them gold; {glue:text}`n_mention_names:,d` distinct mention names.
# - Name ambiguity: {glue:text}`ambiguous_share:.1%` of instances have two or more candidates with
#   the mention's exact name; in {glue:text}`name_decides_share:.1%` the name alone picks the gold
#   entity.
# - On the {glue:text}`hardness_split`: {glue:text}`hardness_ambiguous:.1%` of instances have a
#   same-name negative and {glue:text}`hardness_distinct:.1%` of mention pictures are another
#   picture of the entity ({glue:text}`hardness_augmented:,d` augmented copies, flagged).
# - Pictures: {glue:text}`mention_picture_share:.1%` of mentions and
#   {glue:text}`all_candidates_pictured_share:.1%` of instances with every candidate pictured.
# - Sentences have {glue:text}`sentence_words_median:.0f` words at the median; gold descriptions
#   {glue:text}`description_words_median:.0f`.
#
# What that means for the later chapters (remarks computed by
# `m3el_lib.reports.findings.statistics_remarks`, each made only when the numbers bear it out):
#
# ```{glue:md} remarks
# :format: myst
# ```
