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
# # Results: CLIP_ND against the baselines, task by task and topic by topic
#
# **Goal.** The headline table: every baseline of notebook 04 against CLIP_ND (notebook 05) on
# the 9 tasks of the test split, with 95% bootstrap intervals and the improvement in points;
# the same per topic; the ablation (what the modality augmentation and our entity-view
# alignment each add); and a gallery of CLIP_ND's wrong predictions with their pictures.
#
# Every number here comes from the project's one evaluator (`m3el_lib.evaluation.metrics`): the
# baselines from the table notebook 04 wrote, CLIP_ND and the ablations by evaluating their
# exported checkpoints (`m3el evaluate --checkpoint`). The paper's own figures appear beside
# ours, marked as the paper's: they were measured on the paper's release with CLIP ViT-B/32,
# ours on the profile's data and model, so they frame ours and are not comparable to it.

# %% tags=["parameters"]
profile = "sample"
split = "test"
n_bootstrap = 1000
train_if_missing = True  # train a run whose checkpoint is missing (notebook 05 normally did)
gallery_tasks = ["T-I", "I-T"]
gallery_items = 6

# %%
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from m3el_lib import config
from m3el_lib.data.datasets import open_dataset
from m3el_lib.evaluation.baselines import CHANCE
from m3el_lib.evaluation.pipeline import baselines_frame, evaluate_runs
from m3el_lib.evaluation.scoring import model_scorer
from m3el_lib.evaluation.subsets import CROSS_MODAL_TASKS, evaluate_subsets, predictions, seen_in_training
from m3el_lib.models.loading import load_model
from m3el_lib.paper import PAPER_CLIP_ND_GAIN_POINTS, PAPER_EXISTING_MODELS_ACC
from m3el_lib.reports.baseline_tables import mention_picture_table, plot_accuracy
from m3el_lib.reports.findings import subset_summary
from m3el_lib.reports.model_card import write_model_card
from m3el_lib.reports.training import (
    best_baseline_gain, error_gallery, headline_table, improvement_table, overall, topic_frame,
)
from m3el_lib.training.experiments import load_run, runs_for

pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 30)
chosen = config.get_profile(profile)
dataset = open_dataset(profile=chosen.name)
baselines = baselines_frame(dataset, chosen.name, split, n_bootstrap)
# Values the prose shows (MyST-NB glue: each number stays tied to the cell that computed it).
glue("profile_name", chosen.name, display=False)
glue("data_name", dataset.root.name, display=False)
glue("data_checksum", dataset.checksum[:12], display=False)
glue("split", split, display=False)
glue("n_bootstrap", n_bootstrap, display=False)
glue("paper_low", PAPER_EXISTING_MODELS_ACC[0], display=False)
glue("paper_high", PAPER_EXISTING_MODELS_ACC[1], display=False)
glue("paper_gain_low", PAPER_CLIP_ND_GAIN_POINTS[0], display=False)
glue("paper_gain_high", PAPER_CLIP_ND_GAIN_POINTS[1], display=False)

# %% [markdown]
# Profile **{glue:text}`profile_name`**, data {glue:text}`data_name` (checksum
# {glue:text}`data_checksum`), split {glue:text}`split`, {glue:text}`n_bootstrap` bootstrap
# resamples.

# %% [markdown]
# ## CLIP_ND and its ablations, evaluated
#
# Each run's exported checkpoint (`best.pt`, the best validation epoch) goes through
# `run_model_evaluation`, exactly as `m3el evaluate --model M --checkpoint best.pt` would.

# %%
runs = {label: load_run(path, chosen.name).replace(progress=False) for label, path in runs_for(chosen.name).items()}
evaluated = evaluate_runs(runs, chosen.name, split, n_bootstrap, train_if_missing)
results = pd.concat([baselines, *(v.frame for v in evaluated.values())], ignore_index=True)
display(pd.DataFrame({label: {"checkpoint": str(v.run.best), "weights": v.result.weights_id[:12],
                              "results": v.written[0].name} for label, v in evaluated.items()}).T)

# %% [markdown]
# ## The headline table
#
# Acc@1 (the paper's ACC) in percent with the 95% bootstrap interval, ranking each instance's own
# candidates. "-": the model cannot do the task (a text-only or picture-only baseline).

# %%
baseline_models = [m for m in dict.fromkeys(baselines["model"]) if m != CHANCE]
headline_models = baseline_models + ["CLIP_ND"]
display(headline_table(results, headline_models).rename_axis(f"{chosen.name}: Acc@1 % [95% CI], {split} split"))

# %% [markdown]
# **The paper's figures (not ours; its release, its models):** existing models score ACC
# {glue:text}`paper_low:.1%`-{glue:text}`paper_high:.1%`; CLIP_ND improves on them by
# {glue:text}`paper_gain_low:.1f` to {glue:text}`paper_gain_high:.1f` points on average.

# %%
chart = results[results["model"].isin(headline_models + [CHANCE])]
plot_accuracy(chart, title=f"Acc@1 per task ({chosen.name}, {split}); band: the paper's range for existing models")

# %% [markdown]
# ## By kind of mention picture
#
# The tasks whose mention shows a picture, scored again on *distinct* mention pictures (another
# picture of the entity) and on *augmented* ones (a flagged copy of the gold's own picture, where
# a model may only be detecting a near-duplicate), for CLIP_ND and its ablations.

# %%
slices = pd.concat([v.result.slice_frame().assign(model=label) for label, v in evaluated.items()], ignore_index=True)
if len(slices):
    display(mention_picture_table(slices).rename_axis(f"{chosen.name}: Acc@1 and n by mention picture, {split} split"))
else:
    print("no instance with a mention picture in this split: nothing to slice")

# %% [markdown]
# ## The improvement, in points
#
# First against the model CLIP_ND starts from (the profile's zero-shot model, a baseline of
# notebook 04: OpenAI's CLIP in the full profile, the sample's miniature CLIP in the sample
# one), with whether the two 95% intervals overlap; then against the strongest baseline that can
# do each task.

# %%
start_model = f"{chosen.model} ({chosen.pretrained})"  # the zero-shot model CLIP_ND starts from (a notebook 04 row)
gains = improvement_table(results, "CLIP_ND", [start_model])
display(gains.set_index("task"))
cross = gains[gains["task"].isin(CROSS_MODAL_TASKS)]
separated = bool((~cross["intervals overlap"]).all() and (cross["gain (points)"] > 0).all())
best = best_baseline_gain(results, "CLIP_ND", baseline_models)
display(best.set_index("task"))
glue("gain_over_start", float(gains["gain (points)"].mean()), display=False)
glue("gain_over_best", float(best["gain (points)"].mean()), display=False)
glue("cross_modal_tasks", ", ".join(CROSS_MODAL_TASKS), display=False)
glue("intervals_verdict", "do not overlap" if separated else "OVERLAP", display=False)

# %% [markdown]
# Mean gain over the 9 tasks: **{glue:text}`gain_over_start:+.1f` points** against the model
# before fine-tuning and **{glue:text}`gain_over_best:+.1f` points** against the best baseline per
# task (the paper reports {glue:text}`paper_gain_low:.1f` to {glue:text}`paper_gain_high:.1f`
# points for its CLIP_ND; a different dataset and model). On the cross-modal tasks
# ({glue:text}`cross_modal_tasks`) CLIP_ND's intervals {glue:text}`intervals_verdict` those of the
# model before fine-tuning.

# %% [markdown]
# ## Per topic
#
# Acc@1 % per topic for CLIP_ND and the model it starts from (the topics' test sets are small:
# read these with the overall intervals in mind).

# %%
display(topic_frame(results, ["CLIP_ND", start_model]))

# %% [markdown]
# ## The ablation
#
# Same data, model, preset and seed; one change each (notebook 05): the 9 pairings without the
# entity-view alignment, and the T-T pairing alone (no alignment).

# %%
ablations = [label for label in runs if label != "CLIP_ND"]
display(headline_table(results, ["CLIP_ND", *ablations, start_model]).rename_axis(f"{chosen.name}: Acc@1 % [95% CI]"))
display(improvement_table(results, "CLIP_ND", ablations).pivot(index="task", columns="against", values="gain (points)")
        .reindex([t for t in overall(results)["task"].unique()]).rename_axis("CLIP_ND gain over, points"))

# %% [markdown]
# ## Seen and unseen entities
#
# The entity-view alignment learns the pictures of the entities it meets among the training
# instances' candidates. Test instances whose gold entity (with the same picture) is among them
# can profit from that; the others cannot. The cross-modal accuracy on each group, for CLIP_ND, each
# ablation and the zero-shot model they all start from, tells how much of a gain is that memory
# and how much carries over to unseen entities.

# %%
groups = seen_in_training(dataset, split)
scorers = {label: model_scorer(load_model(evaluated[label].model, checkpoint=str(evaluated[label].run.best)))
           for label in ["CLIP_ND", *ablations] if label in evaluated}
scorers[start_model] = model_scorer(load_model(*config.model_choice(chosen)))  # the zero-shot start
seen_tables = []
for label, scorer in scorers.items():
    table = evaluate_subsets(scorer, dataset, groups, n_bootstrap=n_bootstrap)
    table.insert(0, "model", label)
    seen_tables.append(table)
display(pd.concat(seen_tables, ignore_index=True).set_index(["model", "instances", "task"]))

# %% [markdown]
# ## Where CLIP_ND goes wrong
#
# Wrong test predictions on the cross-modal tasks: the mention (picture and sentence), the
# candidate CLIP_ND ranked first, and the gold entity. Same-name candidates of a sample instance
# often share a topic and look alike (flags, insects), which is what makes them hard.

# %%
clip_nd_scorer = scorers["CLIP_ND"]
error_counts = {}
for task in gallery_tasks:
    preds = predictions(clip_nd_scorer, dataset, task, split)
    wrong = [p for p in preds if not p.correct]
    error_counts[task] = (len(wrong), len(preds))
    if wrong:
        fig = error_gallery(dataset, wrong, columns=2, max_items=gallery_items)
        fig.suptitle(f"CLIP_ND wrong on {task} ({len(wrong)} of {len(preds)} {split} instances; first {min(len(wrong), gallery_items)})", fontsize=10)
        display(fig)
display(pd.DataFrame(error_counts, index=["wrong", "instances"]))

# %%
clip_nd_run = evaluated["CLIP_ND"].run
test_rows = overall(results[results["model"] == "CLIP_ND"]).to_dict("records")
card = write_model_card(clip_nd_run.path, clip_nd_run.summary(), clip_nd_run.history(), test_rows)
glue("card_file", str(card), display=False)
glue("model_card", Markdown(card.read_text(encoding="utf-8")), display=False)  # the file, verbatim

# %% [markdown]
# ## The model card
#
# The trained checkpoint's card, now with these test results: the file
# {glue:text}`card_file` (written by `m3el_lib.reports.model_card` next to the checkpoint, with
# its provenance file), shown as it is:
#
# ```{glue:md} model_card
# :format: myst
# ```

# %%
seen = seen_tables[0]
cross_rows = overall(results[results["model"].isin(["CLIP_ND", start_model])])
cells = {(row["model"], row["task"]): 100 * row["acc@1"] for _, row in cross_rows.iterrows()}
glue("trained_model", evaluated["CLIP_ND"].model, display=False)
for task in CROSS_MODAL_TASKS:
    glue(f"clip_nd_{task}", float(cells.get(("CLIP_ND", task), float("nan"))), display=False)
    glue(f"start_{task}", float(cells.get((start_model, task), float("nan"))), display=False)
glue("intervals_word", "separated" if separated else "overlapping", display=False)
glue("seen_summary", subset_summary(seen), display=False)

# %% [markdown]
# ## What this showed
#
# Profile {glue:text}`profile_name`, data {glue:text}`data_checksum`, split {glue:text}`split`,
# model {glue:text}`trained_model` fine-tuned as CLIP_ND: on the cross-modal tasks CLIP_ND reaches
# T-I {glue:text}`clip_nd_T-I:.1f`% (from {glue:text}`start_T-I:.1f`%) and I-T
# {glue:text}`clip_nd_I-T:.1f`% (from {glue:text}`start_I-T:.1f`%), intervals
# {glue:text}`intervals_word`; mean gain {glue:text}`gain_over_start:+.1f` points over the
# zero-shot model it starts from, across the 9 tasks. The ablation table above says what each part
# adds (read it with its intervals); on test gold entities met in training and unseen ones:
# {glue:text}`seen_summary`. The paper's figures are on its release and are not ours.
