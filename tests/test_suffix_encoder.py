"""A fine-tuned checkpoint evaluated on stored frozen-prefix outputs scores exactly as its whole
towers do, and checkpoints cut at the same place from the same start share one prefix store."""
from __future__ import annotations

import pytest
import torch

from m3el_lib.data.io import load_dataset
from m3el_lib.data.synthetic import write_synthetic_dataset
from m3el_lib.evaluation.metrics import evaluate
from m3el_lib.evaluation.scoring import EmbeddingScorer
from m3el_lib.models import encoders
from m3el_lib.models.encoders import encode_images, encode_texts, entity_text, mention_text, picture_path
from m3el_lib.models.loading import SAMPLE_MODEL, TINY_MODEL, load_model
from m3el_lib.training.config import TrainConfig
from m3el_lib.training.suffix_encoder import SuffixEncoder, evaluation_encoder


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("suffix") / "data"
    write_synthetic_dataset(root, n=40, image_every=2)
    return load_dataset(root)


def cut(**changes) -> TrainConfig:
    base = dict(profile="sample", model=TINY_MODEL, trainable="last", unlocked_blocks=1, unlocked_text_blocks=0,
                precompute_frozen=True, device="cpu", progress=False)
    return TrainConfig(**{**base, **changes})


def fine_tuned(name: str, config: TrainConfig, seed: int):
    """`name` with its trainable parts changed as training would change them (and nothing else)."""
    from m3el_lib.models.loading import weights_hash
    from m3el_lib.training.towers import set_trainable

    loaded = load_model(name)
    set_trainable(loaded.model, config.trainable, config.unlocked_blocks, config.unlocked_text_blocks)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in loaded.model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn(param.shape, generator=generator))
    loaded.weights_id = weights_hash(loaded.model)
    return loaded


def inputs(dataset):
    texts = sorted({mention_text(i) for i in dataset.instances} | {entity_text(c) for i in dataset.instances for c in i.candidates})
    refs = [i.image for i in dataset.instances if i.image] + [c.image for i in dataset.instances for c in i.candidates if c.image]
    return texts, [picture_path(dataset, ref) for ref in refs] + [None]


@pytest.mark.parametrize("name", [TINY_MODEL, SAMPLE_MODEL])
def test_suffix_on_stored_prefixes_equals_the_whole_towers(tmp_path, synthetic, name):
    """The sample's towers (EfficientNet-Lite0 channels-last, MiniLM) and the tiny ViT."""
    config = cut(model=name)
    whole = fine_tuned(name, config, seed=1)
    texts, pictures = inputs(synthetic)
    suffix = SuffixEncoder(whole, config, store_root=tmp_path)
    assert torch.allclose(encode_texts(suffix, texts), encode_texts(whole, texts), atol=1e-5)
    ours, our_missing = encode_images(suffix, pictures)
    theirs, their_missing = encode_images(whole, pictures)
    assert torch.equal(our_missing, their_missing) and bool(our_missing[-1])
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_evaluation_on_stored_prefixes_gives_the_whole_towers_scores(tmp_path, synthetic):
    config = cut()
    whole = fine_tuned(TINY_MODEL, config, seed=2)
    results = [evaluate(EmbeddingScorer(lm, "m", lm.weights_id, persist_cache=False), synthetic, split="test", n_bootstrap=0)
               for lm in (whole, SuffixEncoder(whole, config, store_root=tmp_path))]
    pairs = list(zip(results[0].groups, results[1].groups))
    assert pairs
    for a, b in pairs:
        assert (a.task, a.mode, a.topic) == (b.task, b.mode, b.topic)
        for metric, value in a.metrics.items():
            assert b.metrics[metric] == pytest.approx(value, abs=1e-9), (a.task, metric)


def test_checkpoints_cut_alike_share_one_store_and_decode_each_picture_once(tmp_path, synthetic, monkeypatch):
    config = cut()
    texts, pictures = inputs(synthetic)
    first = SuffixEncoder(fine_tuned(TINY_MODEL, config, seed=3), config, store_root=tmp_path)
    encode_images(first, pictures)
    encode_texts(first, texts)

    def no_decoding(path):
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(encoders, "load_image", no_decoding)
    second = SuffixEncoder(fine_tuned(TINY_MODEL, config, seed=4), config, store_root=tmp_path)
    assert second.weights_id != first.weights_id
    assert second.image_table.path == first.image_table.path and len(second.image_table.keys) == len(set(pictures))
    encode_images(second, pictures)
    other_cut = SuffixEncoder(fine_tuned(TINY_MODEL, cut(unlocked_blocks=2), seed=5), cut(unlocked_blocks=2), store_root=tmp_path)
    assert other_cut.image_table.path != first.image_table.path


def test_a_changed_frozen_weight_gets_its_own_store(tmp_path):
    config = cut()
    loaded = fine_tuned(TINY_MODEL, config, seed=6)
    before = SuffixEncoder(loaded, config, store_root=tmp_path).image_table.path
    with torch.no_grad():
        next(p for p in loaded.model.visual.parameters() if not p.requires_grad).add_(1.0)
    assert SuffixEncoder(loaded, config, store_root=tmp_path).image_table.path != before


def test_runs_that_train_everything_are_evaluated_whole():
    loaded = load_model(TINY_MODEL)
    assert evaluation_encoder(loaded, None) is loaded
    assert evaluation_encoder(loaded, cut(trainable="all")) is loaded
    assert evaluation_encoder(loaded, cut(precompute_frozen=False)) is loaded
    assert isinstance(evaluation_encoder(loaded, cut()), SuffixEncoder)


def test_a_training_run_hands_its_picture_prefixes_to_the_evaluation_of_its_checkpoints(tmp_path, synthetic, monkeypatch):
    """Pictures the run stored are not decoded again when its checkpoint is evaluated, and the
    scores still equal the whole towers'."""
    from m3el_lib.training.data import instance_pictures
    from m3el_lib.training.engine import Trainer

    config = cut(epochs=1, batch_size=4, lr=1e-3, warmup_steps=1, output_dir=str(tmp_path / "run"), early_stopping_patience=0)
    result = Trainer(config, loaded=load_model(TINY_MODEL), dataset=synthetic).fit()
    stored = {str(p) for p in instance_pictures(synthetic, synthetic.split("train") + synthetic.split("val"))}
    decoded: list[str] = []
    real_load = encoders.load_image
    monkeypatch.setattr(encoders, "load_image", lambda path: decoded.append(str(path)) or real_load(path))
    checkpoint = load_model(TINY_MODEL, checkpoint=result.best_path)
    suffix = SuffixEncoder(checkpoint, config)
    assert stored and set(stored) <= {key.split("|")[0] for key in suffix.image_table.keys}
    _, pictures = inputs(synthetic)
    ours, _ = encode_images(suffix, pictures)
    assert decoded and not set(decoded) & stored
    monkeypatch.setattr(encoders, "load_image", real_load)
    theirs, _ = encode_images(checkpoint, pictures)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_the_efficientnet_baseline_fills_the_store_the_sample_model_and_its_fine_tuned_checkpoints_read(synthetic, monkeypatch):
    """Chapter 4's EfficientNet-Lite0 baseline runs each picture through the ImageNet trunk once;
    the sample model (its trunk is that network) and a checkpoint fine-tuned at the sample preset's
    cut then decode nothing, and still score as their whole towers."""
    from m3el_lib.evaluation.baselines import EfficientNetEncoder
    from m3el_lib.training.config import preset

    _, pictures = inputs(synthetic)
    baseline = EfficientNetEncoder()
    features, _ = encode_images(baseline, pictures)
    real_load = encoders.load_image

    def no_decoding(path):
        raise AssertionError(f"{path} decoded again")

    config = preset("sample", progress=False)
    tuned = fine_tuned(SAMPLE_MODEL, config, seed=7)
    monkeypatch.setattr(encoders, "load_image", no_decoding)
    suffix = SuffixEncoder(tuned, config)
    assert suffix.image_table.path == baseline.pictures.table.path
    ours, _ = encode_images(suffix, pictures)
    monkeypatch.setattr(encoders, "load_image", real_load)
    theirs, _ = encode_images(tuned, pictures)
    assert torch.allclose(ours, theirs, atol=1e-5)
    whole = torch.nn.functional.normalize(baseline.encode_image_batch(
        torch.stack([baseline.preprocess(encoders.load_image(pictures[0]))])), dim=-1)
    assert torch.allclose(features[0], whole[0], atol=1e-5)


def test_a_training_run_reads_the_texts_and_pictures_evaluation_stored(tmp_path, synthetic, monkeypatch):
    """What an evaluation at the same cut stored (chapter 4's test split) is not run again by
    training: here every text and picture was stored first, so training decodes nothing."""
    from m3el_lib.training.data import instance_pictures
    from m3el_lib.training.engine import Trainer

    config = cut(epochs=1, batch_size=4, lr=1e-3, warmup_steps=1, output_dir=str(tmp_path / "run"), early_stopping_patience=0)
    loaded = load_model(TINY_MODEL)
    texts, pictures = inputs(synthetic)
    evaluation = SuffixEncoder(loaded, config)
    encode_texts(evaluation, texts)
    encode_images(evaluation, pictures)

    def no_decoding(path):
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(encoders, "load_image", no_decoding)
    trainer = Trainer(config, loaded=loaded, dataset=synthetic)
    report = trainer.data_report
    used = {str(p) for p in instance_pictures(synthetic, synthetic.split("train") + synthetic.split("val"))}
    assert report["shared_store"] and report["pictures_from_shared_store"] == len(used) == report["distinct_pictures"]
    assert report["texts_from_shared_store"] == report["distinct_texts"] and report["stores_from_disk_cache"]
    trainer.fit()


@pytest.mark.parametrize("blocks", [0, 1, 3])
def test_the_folded_frozen_trunk_gives_the_trunks_own_outputs(blocks):
    """The frozen part of the sample's EfficientNet-Lite0 trunk runs with its batch norms folded
    into the convolutions: same outputs as the trunk itself, and the trunk is left untouched."""
    from m3el_lib.models.loading import weights_hash
    from m3el_lib.training.towers import TrunkCut

    trunk = load_model(SAMPLE_MODEL).model.visual.trunk.eval()
    before = weights_hash(trunk)
    cut = TrunkCut(trunk, blocks)
    pixels = torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(blocks))
    with torch.no_grad():
        folded = cut.features(cut.prefix(pixels))
        plain = trunk(pixels)
    assert folded.shape == plain.shape == (3, 1280)
    assert torch.allclose(folded, plain, atol=1e-4, rtol=1e-4)
    assert weights_hash(trunk) == before
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in cut.frozen_part().modules()) == 0
