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

from m3el_lib import config
from m3el_lib.data.datasets import resolve_dataset
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
data_id = f"{chosen.name} profile, data `{data_path.name}` (checksum `{stats.checksum[:12]}`)"
display(Markdown(f"Every number below comes from the **{data_id}**: {stats.overview['instances']:,} instances"
                 f" ({stats.overview['rejected_records']} records rejected). Files written: {len(written)} to `{target}`."))


def show(name: str, caption: str) -> None:
    """A table with its caption and the data it comes from."""
    display(Markdown(f"**{caption}** ({data_id}; `{name}.csv`)"))
    display(tables[name] if name in tables else pd.read_csv(target / f"{name}.csv"))


def figure(name: str) -> None:
    display(Image(filename=str(target / f"{name}.png")))


# %% [markdown]
# ## Overview
# The headline counts. *Entities* are the distinct ids among all candidates (gold and negatives);
# *unique mention names* the distinct `name` fields (the name the candidates were looked up by);
# *ambiguous share* the share of instances where at least two candidates carry the mention's exact
# name; *name decides share* the share where the gold entity is the only candidate carrying it,
# so that matching names alone would link the mention. `files_checked` says whether listed
# pictures were also looked up on disk.

# %%
show("overview", "Overview")

# %% [markdown]
# ## How this compares with other MEL datasets
# Each published row holds only figures its authors published, with the publication named;
# "unknown" means we could not confirm a figure from the authors' own words, so we did not fill it
# in from memory or from later papers. The M³EL release row holds the three figures of the M³EL
# abstract. The last row is measured here: its *tasks* column counts the tasks (our reading: every
# pairing of mention modality T, I, TI with entity modality T, I, TI) with at least one instance.

# %%
show("mel_datasets", "MEL datasets: published figures and ours")

# %% [markdown]
# ## Instances per topic and task
# An instance counts for a task when it has what the task needs: a sentence for a text mention,
# a picture for an image mention, and for entity modality I (or TI) a picture for *every*
# candidate, since a candidate without one could not be ranked by picture. So the eight tasks
# that involve a picture can only have as many instances as there are fully pictured instances,
# and a topic with few pictures shows small numbers there: a zero is a real zero, not a gap.

# %%
figure("topic_task_heatmap")
show("topic_task", "Instances per topic and task")

# %%
show("topic_split", "Instances per topic and split")
show("topic_task_split", "Instances per split, topic and task")

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
    print(f"manifest vs statistics, {data_id}: " + ("all 9 task counts agree" if all(agree.values())
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

# %%
show("per_topic", "Entities, mentions, candidates and ambiguity per topic")
figure("candidates_ambiguity")

# %%
overall = tables["per_topic"].loc[ALL]
lines = [
    f"- Candidates per instance: mean {overall['candidates_mean']:.2f}, from {overall['candidates_min']:.0f} to "
    f"{overall['candidates_max']:.0f}.",
    f"- Instances with at least two candidates of the mention's exact name: {overall['ambiguous_share']:.1%}.",
    f"- Instances where the gold entity is the only candidate with the mention's name (the name alone decides): "
    f"{overall['name_decides_share']:.1%}.",
]
tiers = manifest.get("counts", {}).get("negatives_by_tier")
if tiers:
    total = sum(tiers.values())
    lines.append("- How the construction chose the negatives (from its manifest): "
                 + ", ".join(f"{name.replace('_', ' ')} {count / total:.0%}" for name, count in tiers.items()) + ".")
display(Markdown(f"Reading ({data_id}):\n\n" + "\n".join(lines)))

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
show("image_coverage", "Image coverage per topic and side")
show("mention_image_kinds", "Kinds of mention picture per topic")

# %%
coverage = tables["image_coverage"]
mentions = coverage[(coverage["side"] == "mention") & (coverage["topic"] != ALL)].set_index("topic")["share"]
display(Markdown(
    f"Reading ({data_id}): the mention-picture share goes from {mentions.min():.1%} ({mentions.idxmin()}) to "
    f"{mentions.max():.1%} ({mentions.idxmax()}); the topics with few pictures are the ones with small counts in the "
    "image tasks of the heatmap above."
    if len(mentions) else f"Reading ({data_id}): no instances."
))

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
show(kinds_split, f"Same-name ambiguity and mention-picture kinds per topic ({'test split' if kinds_split.endswith('test') else 'all splits'})")
hardness = tables[kinds_split].loc[ALL]
display(Markdown(
    f"Reading ({data_id}, {'test split' if kinds_split.endswith('test') else 'all splits'}): {hardness['ambiguous_share']:.1%} of "
    f"{int(hardness['instances']):,} instances have a same-name negative; {hardness['distinct_share']:.1%} of the "
    f"{int(hardness['with_mention_picture']):,} mention pictures are distinct, {int(hardness['augmented']):,} augmented."
))

# %% [markdown]
# ## Text lengths
# Words (runs of non-space characters) per mention sentence, gold entity description, and
# candidate description (all candidates). The boxes show quartiles, the whiskers 1.5 times the
# inter-quartile range, the dots what lies beyond.

# %%
figure("text_lengths")
show("text_lengths", "Words per text field and topic")

# %% [markdown]
# ## Vocabulary overlap: how much the sentence gives away
# Content words (lower-cased letter/digit runs without a short list of function words) of the
# mention sentence against those of the gold description: per instance the Jaccard index and
# the share of the description's words found in the sentence (*description coverage*), averaged
# per topic; *no shared word* is the share of instances where they share none; the last column
# compares the two whole vocabularies of the topic. A high description coverage means the text
# alone points at the gold entity: a hint that text-to-text linking is easy on that topic.

# %%
show("vocabulary_overlap", "Vocabulary overlap between mention sentence and gold description")

# %%
overlap = tables["vocabulary_overlap"].drop(index=ALL, errors="ignore")
if len(overlap):
    display(Markdown(
        f"Reading ({data_id}): on average {tables['vocabulary_overlap'].loc[ALL, 'mean_description_coverage']:.0%} of "
        f"a gold description's content words appear in the mention's sentence; highest in "
        f"{overlap['mean_description_coverage'].idxmax()} ({overlap['mean_description_coverage'].max():.0%}), lowest in "
        f"{overlap['mean_description_coverage'].idxmin()} ({overlap['mean_description_coverage'].min():.0%})."
    ))

# %% [markdown]
# ## One example per topic
# For each topic, the instance with the most pictures on disk (the first such one): the mention's
# picture and sentence on the left, then its candidates with the gold entity first and framed.
# A candidate or mention without a picture appears as an empty, labelled box ("no picture", or
# "file missing" when the record lists a file that is not in the dataset folder).

# %%
figure("example_gallery")

# %% [markdown]
# ## What this showed
# The statistics of the dataset, computed from its records in one pass, with every table and
# figure written next to its provenance. The closing summary below is computed, so it stays true
# for whichever profile and data ran this page.

# %%
task_counts = tables["topic_task"].loc[ALL].drop("instances")
summary = [
    f"- {stats.overview['instances']:,} instances in {stats.overview['topics']} topics; "
    f"{stats.overview['tasks_with_instances']} of the 9 tasks have instances: "
    + ", ".join(f"{task} {count:,}" for task, count in task_counts.items()) + ".",
    f"- {stats.overview['entities']:,} distinct entities among the candidates, {stats.overview['gold_entities']:,} of "
    f"them gold; {stats.overview['unique_mention_names']:,} distinct mention names.",
    f"- Name ambiguity: {stats.overview['ambiguous_share']:.1%} of instances have two or more candidates with the "
    f"mention's exact name; in {stats.overview['name_decides_share']:.1%} the name alone picks the gold entity.",
    f"- On the {'test split' if kinds_split.endswith('test') else 'whole dataset'}: {hardness['ambiguous_share']:.1%} of "
    f"instances have a same-name negative and {hardness['distinct_share']:.1%} of mention pictures are another picture of "
    f"the entity ({int(hardness['augmented']):,} augmented copies, flagged).",
    f"- Pictures: {tables['image_coverage'].set_index(['topic', 'side']).loc[(ALL, 'mention'), 'share']:.1%} of "
    f"mentions and {tables['image_coverage'].set_index(['topic', 'side']).loc[(ALL, 'all_candidates'), 'share']:.1%} "
    "of instances with every candidate pictured.",
    f"- Sentences have {tables['text_lengths'].set_index(['topic', 'field']).loc[(ALL, 'sentence'), 'median']:.0f} "
    "words at the median; gold descriptions "
    f"{tables['text_lengths'].set_index(['topic', 'field']).loc[(ALL, 'gold_description'), 'median']:.0f}.",
]
# What the numbers mean for the later chapters; each remark is printed only when the data bear it out.
by_topic = tables["topic_task"].drop(index=ALL)
picture_tasks = [t for t in task_counts.index if t != "T-T"]
if len(by_topic) and picture_tasks:
    scarcest = by_topic[picture_tasks].min(axis=1)
    summary.append(f"- Pictures are the scarce resource: {task_counts[picture_tasks].min():,} instances qualify for the "
                   f"smallest picture task, against {task_counts['T-T']:,} for T-T; {scarcest.idxmin()} has only "
                   f"{scarcest.min():,}, so its picture-task scores rest on very few instances.")
if stats.overview["name_decides_share"] > 0.5:
    summary.append("- Unlike the paper's same-name candidates, here the name alone picks the gold entity in most instances: "
                   "text tasks that show entity names measure name matching more than disambiguation.")
coverage_all = tables["vocabulary_overlap"].loc[ALL, "mean_description_coverage"]
if coverage_all > 0.5:
    summary.append(f"- Sentences restate their gold description ({coverage_all:.0%} of its content words on average): "
                   "another sign that text-to-text linking is easy on this data.")
display(Markdown(f"**Summary** ({data_id}):\n\n" + "\n".join(summary)))
