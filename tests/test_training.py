"""Tests of the CLIP_ND training library: config, modality-augmented data, towers, loss, engine.

All on the tiny random model and small synthetic datasets (seconds each); the kill-and-resume
and multi-process tests live in tests/test_training_resume.py and tests/test_distributed.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from m3el_lib.data.io import load_dataset
from m3el_lib.data.schema import TASK_NAMES, task_by_name
from m3el_lib.data.synthetic import write_synthetic_dataset
from m3el_lib.training import config as tconfig
from m3el_lib.training.data import (
    ImageStore, TextStore, build_examples, collate, epoch_plan, instance_pictures, micro_batches, rank_micro_batches,
)
from m3el_lib.training.engine import lr_factor

TINY = "m3el-tiny-random"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> object:
    root = tmp_path_factory.mktemp("syn") / "data"
    write_synthetic_dataset(root, n=60, image_every=2)  # every other instance is text-only
    return load_dataset(root)


@pytest.fixture(scope="module")
def tiny():
    from m3el_lib.models.loading import load_model

    return load_model(TINY)


def tiny_config(tmp_path: Path, **changes) -> tconfig.TrainConfig:
    base = dict(profile="sample", model=TINY, epochs=2, batch_size=4, lr=1e-3, warmup_steps=2, progress=False,
                device="cpu", output_dir=str(tmp_path / "run"), trainable="all", precompute_frozen=False)
    return tconfig.TrainConfig(**{**base, **changes})


# ---------------------------------------------------------------- config


def test_presets_are_valid_and_differ_where_they_should():
    sample, full = tconfig.preset("sample"), tconfig.preset("full")
    assert sample.device == "cpu" and sample.precompute_frozen and sample.trainable == "last"
    assert full.trainable == "all" and full.image_cache == "stream" and full.precision == "auto"
    assert sorted(sample.pairings) == sorted(TASK_NAMES)


def test_config_file_json_and_yaml_round_trip(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"preset": "sample", "epochs": 3, "pairings": ["T-T"]}))
    loaded = tconfig.load_config(tmp_path / "a.json")
    assert loaded.epochs == 3 and loaded.pairings == ["T-T"] and loaded.trainable == "last"
    (tmp_path / "b.yaml").write_text("lr: 0.01\nbatch_size: 8\n")
    assert tconfig.load_config(tmp_path / "b.yaml", base=loaded).lr == 0.01
    again = tconfig.from_dict(loaded.to_dict())
    assert again == loaded


def test_config_errors_name_the_file_and_field(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"epoch": 3}))
    with pytest.raises(ValueError, match=r"bad.json.*epoch"):
        tconfig.load_config(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="pairings"):
        tconfig.TrainConfig(pairings=["T-X"])
    with pytest.raises(ValueError, match="trainable"):
        tconfig.TrainConfig(trainable="some")


def test_committed_config_files_load():
    for path in sorted(Path(__file__).resolve().parents[1].glob("configs/*.json")):
        tconfig.load_config(path)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    values = [lr_factor(s, 10, 110, 0.1) for s in range(111)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[110] == pytest.approx(0.1)


# ---------------------------------------------------------------- what an epoch shows


def test_examples_get_only_the_pairings_they_qualify_for(synthetic):
    examples = build_examples(synthetic, synthetic.split("train"), TASK_NAMES)
    for example in examples:
        assert set(example.pairings) == set(example.instance.tasks())
        if not example.instance.has_mention_image:
            assert example.pairings == (task_by_name("T-T"),)
    only_tt = build_examples(synthetic, synthetic.split("train"), ["T-T"])
    assert all(e.pairings == (task_by_name("T-T"),) for e in only_tt)
    image_only = build_examples(synthetic, synthetic.split("train"), ["I-I"])
    assert image_only and all(e.instance.has_mention_image for e in image_only)


def test_an_unusable_picture_drops_the_pairings_that_need_it(synthetic):
    examples = build_examples(synthetic, synthetic.split("train"), TASK_NAMES)
    with_picture = next(e for e in examples if e.mention_image)
    again = build_examples(synthetic, [with_picture.instance], TASK_NAMES, unusable={with_picture.mention_image})
    assert {t.mention.value for t in again[0].pairings} == {"T"}
    assert {t.entity.value for t in again[0].pairings} == {"T", "I", "TI"}


def test_epoch_plan_is_deterministic_and_samples_every_pairing(synthetic):
    examples = build_examples(synthetic, synthetic.instances, TASK_NAMES)
    first = epoch_plan(examples, seed=1, epoch=0, hard_negatives=-1)
    assert first == epoch_plan(examples, seed=1, epoch=0, hard_negatives=-1)
    assert first != epoch_plan(examples, seed=1, epoch=1, hard_negatives=-1)
    assert sorted(p.example for p in first) == list(range(len(examples)))
    seen = {p.task.name for epoch in range(20) for p in epoch_plan(examples, 1, epoch, -1)}
    assert seen == set(TASK_NAMES)  # the augmentation reaches every task over the epochs
    capped = epoch_plan(examples, seed=1, epoch=0, hard_negatives=1)
    assert all(len(p.negatives) == 1 for p in capped)
    assert all(examples[p.example].instance.gold_index not in p.negatives for p in first)


def test_micro_batches_split_a_step_across_processes_as_one_process_would():
    one = [i for step in range(3) for i in rank_micro_batches(step, accum=4, world_size=1, rank=0)]
    two = [rank_micro_batches(step, accum=2, world_size=2, rank=r) for step in range(3) for r in (0, 1)]
    assert one == list(range(12))
    assert sorted(i for part in two for i in part) == one
    assert rank_micro_batches(0, 2, 2, 0) == [0, 2] and rank_micro_batches(0, 2, 2, 1) == [1, 3]
    assert len(micro_batches(list(range(10)), 4)) == 2  # the partial last batch waits for the next epoch


def test_collate_builds_one_pool_with_golds_and_hard_negatives(synthetic, tiny):
    examples = build_examples(synthetic, synthetic.split("train"), TASK_NAMES)
    texts = TextStore({t for e in examples for t in _texts(e)}, tiny.tokenizer)
    images = ImageStore(instance_pictures(synthetic, [e.instance for e in examples]), tiny.preprocess)
    plan = epoch_plan(examples, seed=0, epoch=0, hard_negatives=-1)[:6]
    batch = collate(plan, examples, texts, images)
    pool_ids = []
    for p in plan:
        inst = examples[p.example].instance
        pool_ids += [inst.qid] + [inst.candidates[i].qid for i in p.negatives]
    assert batch.pool_size == len(set(pool_ids))
    for row, p in enumerate(plan):
        task = p.task
        assert (batch.mention_text_row[row] >= 0) == (task.mention.value in ("T", "TI"))
        assert (batch.mention_image_row[row] >= 0) == (task.mention.value in ("I", "TI"))
    # the target of each row is its own gold: its text row is the gold's text
    golds = [examples[p.example].instance.gold for p in plan]
    if batch.entity_text is not None:
        from m3el_lib.models.encoders import entity_text

        expected = texts.gather([entity_text(g) for g in golds])
        assert torch.equal(batch.entity_text[batch.entity_text_row[batch.targets]], expected)


def test_a_micro_batch_pins_every_tensor_for_the_copy_to_a_gpu(synthetic, tiny, monkeypatch):
    # DataLoader(pin_memory=True) calls MicroBatch.pin_memory on CUDA machines; CPU-only torch
    # cannot pin, so the page-locking itself is replaced by a marked copy
    def pinned(tensor):
        copy = tensor.clone()
        copy.was_pinned = True
        return copy

    examples = build_examples(synthetic, synthetic.split("train"), TASK_NAMES)
    texts = TextStore({t for e in examples for t in _texts(e)}, tiny.tokenizer)
    images = ImageStore(instance_pictures(synthetic, [e.instance for e in examples]), tiny.preprocess)
    batch = collate(epoch_plan(examples, seed=0, epoch=0, hard_negatives=-1)[:6], examples, texts, images)
    monkeypatch.setattr(torch.Tensor, "pin_memory", pinned)
    moved = batch.pin_memory()

    def tensors(b):
        for name, value in vars(b).items():
            for tensor in (value.values() if isinstance(value, dict) else [value]):
                if isinstance(tensor, torch.Tensor):
                    yield name, tensor

    assert moved.instance_ids == batch.instance_ids
    before, after = list(tensors(batch)), list(tensors(moved))
    assert [n for n, _ in before] == [n for n, _ in after] and len(after) >= 8
    assert all(getattr(t, "was_pinned", False) and torch.equal(t, u) for (_, t), (_, u) in zip(after, before))


def _texts(example):
    from m3el_lib.models.encoders import entity_text, mention_text

    return [mention_text(example.instance)] + [entity_text(c) for c in example.instance.candidates]


# ---------------------------------------------------------------- the loss


class _Fixed(torch.nn.Module):
    """Towers whose 'inputs' are the embeddings themselves (to test the loss by hand)."""

    def __init__(self) -> None:
        super().__init__()
        self.logit_scale = torch.nn.Parameter(torch.tensor(0.0))

    def encode_text(self, x):
        return x

    def encode_image(self, x):
        return x


def _batch(mention_mod, entity_mod, targets, mt, mi, et, ei, et_rows, ei_rows):
    from m3el_lib.training.data import MicroBatch

    n = len(targets)
    long = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
    return MicroBatch(
        mention_modality=long(mention_mod), entity_modality=long(entity_mod), targets=long(targets),
        mention_text=mt, mention_text_row=long(list(range(n)) if mt is not None else [-1] * n),
        mention_image=mi, mention_image_row=long(list(range(n)) if mi is not None else [-1] * n),
        entity_text=et, entity_text_row=long(et_rows), entity_image=ei, entity_image_row=long(ei_rows),
    )


def test_loss_is_cross_entropy_over_the_pool_in_each_rows_modality():
    from m3el_lib.training.loss import ModalityAugmentedLoss

    eye = torch.eye(3)
    # row 0: T mention vs T entities; row 1: T mention vs I entities; entity 2 has no picture
    batch = _batch([0, 0], [0, 1], [0, 1], mt=eye[:2], mi=None, et=eye, ei=eye[:2], et_rows=[0, 1, 2], ei_rows=[0, 1, -1])
    out = ModalityAugmentedLoss(_Fixed())(batch)
    assert torch.isinf(out.logits[1, 2]) and out.logits[1, 2] < 0  # no picture: out of the I row
    expected = torch.nn.functional.cross_entropy(torch.tensor([[1.0, 0, 0], [0, 1.0, float("-inf")]]), torch.tensor([0, 1]))
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert out.accuracy.item() == 1.0


def test_masked_entities_leave_gradients_finite():
    from m3el_lib.training.loss import ModalityAugmentedLoss

    towers = _Fixed()
    et = torch.randn(3, 4, requires_grad=True)
    batch = _batch([0, 2], [1, 2], [0, 1], mt=torch.randn(2, 4), mi=torch.randn(2, 4), et=et,
                   ei=torch.randn(2, 4), et_rows=[0, 1, 2], ei_rows=[0, 1, -1])
    ModalityAugmentedLoss(towers)(batch).loss.backward()
    assert torch.isfinite(towers.logit_scale.grad) and torch.isfinite(et.grad).all()


def test_ti_uses_the_evaluation_fusion():
    from m3el_lib.models.fusion import fuse
    from m3el_lib.training.loss import modality_embeddings

    text, image = torch.randn(5, 8), torch.randn(5, 8)
    assert torch.allclose(modality_embeddings(text, image)[2], fuse(text, image))


# ---------------------------------------------------------------- towers


def test_splits_of_the_tiny_clip_equal_its_forward(tiny):
    from m3el_lib.training.towers import CLIPTextSplit, ViTSplit

    model = tiny.model.eval()
    pixels = torch.randn(3, 3, 64, 64)
    tokens = tiny.tokenizer(["a red kangaroo", "Mercury the planet", "x"])
    with torch.no_grad():
        for k in (0, 1, 2):
            v, t = ViTSplit(model.visual, k), CLIPTextSplit(model, k)
            assert torch.allclose(v.suffix(v.prefix(pixels)), model.encode_image(pixels), atol=1e-5)
            assert torch.allclose(t.suffix(t.prefix(tokens)), model.encode_text(tokens), atol=1e-5)


def test_splits_of_sample_style_towers_equal_their_forward():
    """The sample model's tower types (timm EfficientNet-Lite0, BERT-style HF text), small and random."""
    from open_clip.hf_model import HFTextEncoder
    from open_clip.timm_model import TimmModel
    from transformers import BertConfig

    from m3el_lib.training.towers import HFTextSplit, TimmSplit

    torch.manual_seed(0)
    bert = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    text = HFTextEncoder("tiny-bert", output_dim=16, config=bert, pooler_type="mean_pooler", proj_type="linear").eval()
    tokens = torch.randint(1, 100, (4, 20))
    tokens[0, 7:] = 0  # padding
    visual = TimmModel("efficientnet_lite0", embed_dim=16, image_size=64, pool="avg", proj="linear").eval()
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for k in (0, 1, 2):
            hs, ts = HFTextSplit(text, k), TimmSplit(visual, k)
            assert torch.allclose(hs.suffix(hs.prefix(tokens)), text(tokens), atol=1e-5)
            assert torch.allclose(ts.suffix(ts.prefix(pixels)), visual(pixels), atol=1e-5)


def test_set_trainable_freezes_all_but_the_last_blocks_and_heads(tiny):
    from m3el_lib.models.loading import load_model
    from m3el_lib.training.towers import set_trainable

    model = load_model(TINY).model
    set_trainable(model, "heads", 0)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {"visual.proj", "text_projection", "logit_scale"}
    set_trainable(model, "last", 1)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "visual.transformer.resblocks.1.mlp.c_fc.weight" in names
    assert "visual.transformer.resblocks.0.mlp.c_fc.weight" not in names
    assert "transformer.resblocks.1.attn.in_proj_weight" in names and "token_embedding.weight" not in names


# ---------------------------------------------------------------- the engine


def test_precomputed_prefix_trains_exactly_like_the_full_forward(tmp_path, synthetic):
    """Caching the frozen part is a pure speed-up: same losses, same weights."""
    from m3el_lib.models.loading import load_model
    from m3el_lib.training.engine import Trainer

    runs = []
    for pre in (True, False):
        config = tiny_config(tmp_path / str(pre), trainable="last", unlocked_blocks=1, precompute_frozen=pre, epochs=1)
        trainer = Trainer(config, loaded=load_model(TINY), dataset=synthetic)
        assert trainer.towers.precomputed == pre
        result = trainer.fit()
        runs.append(([r["loss"] for r in result.history["train"]], trainer.model.state_dict()))
    (loss_a, state_a), (loss_b, state_b) = runs
    assert loss_a == pytest.approx(loss_b, abs=1e-5)
    assert all(torch.allclose(state_a[k], state_b[k], atol=1e-5) for k in state_a)


def test_training_lowers_the_loss_and_writes_logs_checkpoints_and_provenance(tmp_path, synthetic):
    from m3el_lib.models.loading import load_model
    from m3el_lib.training.engine import Trainer

    config = tiny_config(tmp_path, epochs=6, pairings=["I-I", "T-T"], early_stopping_patience=0)
    trainer = Trainer(config, loaded=load_model(TINY), dataset=synthetic)
    result = trainer.fit()
    losses = [r["loss"] for r in result.history["train"]]
    per_epoch = trainer.steps_per_epoch
    assert sum(losses[-per_epoch:]) < sum(losses[:per_epoch])
    out = result.output_dir
    for name in ("best.pt", "last.pt", "train_log.csv", "val_log.csv", "history.json", "train_summary.json",
                 "best.pt.provenance.json", "train_summary.json.provenance.json"):
        assert (out / name).is_file(), name
    assert len((out / "train_log.csv").read_text().splitlines()) == result.global_step + 1
    assert len(result.history["val"]) == 6 and result.stopped == "completed"
    provenance = json.loads((out / "best.pt.provenance.json").read_text())
    assert provenance["data_checksum"] == synthetic.checksum and provenance["model"] == TINY


def test_a_run_writes_tensorboard_events_that_tensorboard_reads_back(tmp_path, synthetic):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from m3el_lib.models.loading import load_model
    from m3el_lib.training.engine import Trainer

    config = tiny_config(tmp_path, epochs=2, pairings=["I-I", "T-T", "TI-TI"], early_stopping_patience=0)
    result = Trainer(config, loaded=load_model(TINY), dataset=synthetic).fit()
    events = EventAccumulator(str(result.output_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {f"train/{n}" for n in ("loss", "lr", "temperature", "logit_scale", "batch_accuracy", "grad_norm")}
    expected |= {"val/acc_I-I", "val/acc_T-T", "val/acc_TI-TI", "val/acc_selected_mean", "val/acc_all_mean"}
    assert expected <= tags, expected - tags
    train_rows, val_rows = result.history["train"], result.history["val"]
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [r["step"] for r in train_rows]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in train_rows], abs=1e-5)
    temperature = events.Scalars("train/temperature")
    assert [e.value for e in temperature] == pytest.approx([1 / r["logit_scale"] for r in train_rows], rel=1e-4)
    accuracy = events.Scalars("val/acc_T-T")
    assert [(e.step, e.value) for e in accuracy] == [(r["step"], pytest.approx(r["acc_T-T"], abs=1e-5)) for r in val_rows]


def test_tensorboard_can_be_turned_off(tmp_path, synthetic, capsys):
    from m3el_lib.cli import main
    from m3el_lib.models.loading import load_model
    from m3el_lib.training.engine import Trainer

    result = Trainer(tiny_config(tmp_path, epochs=1, tensorboard=False), loaded=load_model(TINY), dataset=synthetic).fit()
    assert (result.output_dir / "train_log.csv").is_file()
    assert not list(result.output_dir.rglob("events.out.tfevents.*"))
    assert main(["train", "--profile", "sample", "--no-tensorboard", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["tensorboard"] is False


def test_early_stopping_stops_after_patience_epochs_without_gain(tmp_path, synthetic):
    from m3el_lib.models.loading import load_model
    from m3el_lib.training.engine import Trainer

    # lr 0: nothing changes, so validation never improves after the first epoch
    config = tiny_config(tmp_path, epochs=10, lr=0.0, early_stopping_patience=2)
    result = Trainer(config, loaded=load_model(TINY), dataset=synthetic).fit()
    assert result.stopped == "early_stopping" and result.epochs_run == 3
    assert torch.load(result.best_path, weights_only=True)["epoch"] == 1  # saved after the first epoch


def test_exported_checkpoint_loads_and_the_evaluator_agrees_with_validation(tmp_path, synthetic):
    """best.pt loads with models.load_model, and m3el_lib.evaluation.metrics on the val split gives the
    in-loop validation's Acc@1 (same encoders, same fusion, same tie rule)."""
    from m3el_lib.evaluation.metrics import evaluate
    from m3el_lib.models.loading import load_model
    from m3el_lib.evaluation.scoring import EmbeddingScorer
    from m3el_lib.training.engine import Trainer

    config = tiny_config(tmp_path, epochs=2, early_stopping_patience=0)
    trainer = Trainer(config, loaded=load_model(TINY), dataset=synthetic)
    result = trainer.fit()
    exported = torch.load(result.best_path, weights_only=True)
    assert exported["model_name"] == TINY and "state_dict" in exported
    loaded = load_model(TINY, checkpoint=result.best_path)
    ours = trainer.validate()
    theirs = evaluate(EmbeddingScorer(loaded, loaded.name, loaded.weights_id, persist_cache=False), synthetic, split="val", n_bootstrap=0, per_topic=False)
    for group in theirs.groups:
        if group.mode == "candidates" and group.topic == "all":
            assert ours[f"acc_{group.task}"] == pytest.approx(group.metrics["acc@1"], abs=1e-6), group.task


def test_too_few_examples_for_a_global_batch_is_a_clear_error(tmp_path, synthetic):
    from m3el_lib.models.loading import load_model
    from m3el_lib.training.engine import Trainer

    with pytest.raises(ValueError, match="global batch"):
        Trainer(tiny_config(tmp_path, batch_size=64), loaded=load_model(TINY), dataset=synthetic)


def test_cli_resolves_profile_config_file_and_overrides(tmp_path, capsys):
    from m3el_lib.cli import main

    (tmp_path / "c.json").write_text(json.dumps({"epochs": 4, "batch_size": 8}))
    code = main(["train", "--profile", "sample", "--config", str(tmp_path / "c.json"), "--set", "lr=0.5",
                 "--set", 'pairings=["T-T"]', "--print-config"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["epochs"] == 4 and printed["lr"] == 0.5 and printed["pairings"] == ["T-T"]
    assert printed["trainable"] == "last"  # from the sample preset
    assert main(["train", "--set", "epochz=1", "--print-config"]) == 2


# ---------------------------------------------------------------- entity views, caches, data paths


def test_entity_view_loss_aligns_each_entitys_text_with_its_own_picture():
    from m3el_lib.training.loss import ModalityAugmentedLoss

    eye = torch.eye(3)
    # three pool entities, the third without a picture; a T-T row so the main term is trivial
    aligned = _batch([0], [0], [0], mt=eye[:1], mi=None, et=eye, ei=eye[:2], et_rows=[0, 1, 2], ei_rows=[0, 1, -1])
    swapped = _batch([0], [0], [0], mt=eye[:1], mi=None, et=eye, ei=eye[[1, 0]], et_rows=[0, 1, 2], ei_rows=[0, 1, -1])
    plain = ModalityAugmentedLoss(_Fixed())(aligned).loss
    with_alignment = ModalityAugmentedLoss(_Fixed(), entity_alignment=1.0)
    # logit scale 1: matching views score 1, others 0 -> CE = log(1 + e^-1) in both directions
    expected = torch.log(1 + torch.exp(torch.tensor(-1.0)))
    assert (with_alignment(aligned).loss - plain).item() == pytest.approx(expected.item(), abs=1e-6)
    assert with_alignment(swapped).loss > with_alignment(aligned).loss


def test_collate_encodes_both_entity_views_when_asked(synthetic, tiny):
    examples = build_examples(synthetic, synthetic.split("train"), ["T-T"])
    texts = TextStore({t for e in examples for t in _texts(e)}, tiny.tokenizer)
    images = ImageStore(instance_pictures(synthetic, [e.instance for e in examples]), tiny.preprocess)
    plan = epoch_plan(examples, seed=0, epoch=0, hard_negatives=-1)[:4]
    plain = collate(plan, examples, texts, images)
    both = collate(plan, examples, texts, images, both_entity_views=True)
    assert plain.entity_image is None and (plain.entity_image_row == -1).all()
    with_pictures = sum(1 for p in plan for _ in examples[p.example].entity_images)
    assert int((both.entity_image_row >= 0).sum()) == with_pictures > 0


def test_frozen_prefix_outputs_are_kept_on_disk_and_reused(tmp_path, synthetic):
    from m3el_lib.models.loading import load_model
    from m3el_lib.training.engine import Trainer

    config = tiny_config(tmp_path, trainable="last", precompute_frozen=True, epochs=1)
    first = Trainer(config, loaded=load_model(TINY), dataset=synthetic)
    assert not first.data_report["stores_from_disk_cache"]
    second = Trainer(config, loaded=load_model(TINY), dataset=synthetic)
    assert second.data_report["stores_from_disk_cache"]
    assert torch.equal(first.images.inputs, second.images.inputs)
    other_cut = Trainer(config.replace(unlocked_blocks=2), loaded=load_model(TINY), dataset=synthetic)
    assert not other_cut.data_report["stores_from_disk_cache"]  # another split: another key


def test_per_tower_blocks(tiny):
    from m3el_lib.models.loading import load_model
    from m3el_lib.training.towers import set_trainable

    model = load_model(TINY).model
    set_trainable(model, "last", 1, text_blocks=0)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "visual.transformer.resblocks.1.mlp.c_fc.weight" in names
    assert not any(n.startswith("transformer.") for n in names) and "text_projection" in names


def test_streaming_workers_give_the_same_losses_as_memory(tmp_path, synthetic):
    """The full profile's path (DataLoader workers decode pictures) trains exactly like the sample's."""
    from m3el_lib.models.loading import load_model
    from m3el_lib.training.engine import Trainer

    losses = []
    for mode, workers in (("memory", 0), ("stream", 1)):
        config = tiny_config(tmp_path / mode, epochs=1, image_cache=mode, num_workers=workers, entity_alignment=1.0)
        result = Trainer(config, loaded=load_model(TINY), dataset=synthetic).fit()
        losses.append([r["loss"] for r in result.history["train"]])
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
