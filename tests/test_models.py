"""Model loading: the tiny test model, checkpoints, weights ids, offline errors, the sample model."""
from __future__ import annotations

import time

import pytest
import torch

from m3el_lib.models import loading as models
from m3el_lib.models.loading import SAMPLE_MODEL, TINY_MODEL, ModelUnavailable, load_model, remap_efficientnet_lite0, weights_hash


@pytest.fixture(scope="module")
def tiny():
    return load_model(TINY_MODEL)


def test_tiny_model_is_small_clip_with_tokenizer_and_transforms(tiny):
    params = sum(p.numel() for p in tiny.model.parameters())
    assert 3_000_000 < params < 4_000_000
    tokens = tiny.tokenizer(["a red kangaroo", "Mercury"])
    assert tokens.dtype == torch.long and tokens.shape == (2, 32)
    from PIL import Image

    pixels = tiny.preprocess(Image.new("RGB", (90, 70), (10, 200, 30)))
    assert pixels.shape == (3, 64, 64)
    with torch.no_grad():
        assert tiny.model.encode_image(pixels[None]).shape == (1, 64)
        assert tiny.model.encode_text(tokens).shape == (2, 64)
    assert tiny.embed_dim == 64 and tiny.pretrained == "random" and not tiny.model.training


def test_weights_id_is_stable_and_tracks_the_weights(tiny):
    assert load_model(TINY_MODEL).weights_id == tiny.weights_id
    assert load_model(TINY_MODEL, seed=1).weights_id != tiny.weights_id
    copy = load_model(TINY_MODEL)
    with torch.no_grad():
        copy.model.logit_scale.add_(1e-3)
    assert weights_hash(copy.model) != tiny.weights_id


def test_seeded_build_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_model(TINY_MODEL)
    assert torch.equal(torch.rand(3), expected)


def test_checkpoint_round_trip_with_ddp_prefix(tiny, tmp_path):
    trained = load_model(TINY_MODEL, seed=5)
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.model.state_dict().items()}, "epoch": 3}, path)
    loaded = load_model(TINY_MODEL, checkpoint=path)
    assert loaded.weights_id == trained.weights_id != tiny.weights_id
    assert loaded.pretrained == str(path)


def test_bad_checkpoints_get_clear_errors(tmp_path):
    with pytest.raises(ModelUnavailable, match="no such file"):
        load_model(TINY_MODEL, checkpoint=tmp_path / "absent.pt")
    wrong = tmp_path / "wrong.pt"
    torch.save({"visual.proj": torch.zeros(2, 2)}, wrong)
    with pytest.raises(ModelUnavailable, match="does not fit"):
        load_model(TINY_MODEL, checkpoint=wrong)


def test_unknown_names_and_tags_are_refused():
    with pytest.raises(ModelUnavailable, match="unknown model"):
        load_model("not-a-model")
    with pytest.raises(ModelUnavailable, match="random-init only"):
        load_model(TINY_MODEL, pretrained="openai")


def test_openai_weights_offline_name_the_registry_entry(monkeypatch):
    monkeypatch.setattr(models, "_registered_openai_copy", lambda name: None)
    start = time.perf_counter()
    with pytest.raises(ModelUnavailable) as info:
        load_model("ViT-B-32", pretrained="openai")
    message = str(info.value)
    assert "clip-vit-b-32-openai" in message and "m3el register clip-vit-b-32-openai" in message
    assert "ViT-B-32.pt" in message and "openaipublic" in message
    assert time.perf_counter() - start < 20  # offline hub: no minute of retries


def test_registered_openai_copy_is_loaded_from_its_file(monkeypatch, tmp_path, tiny):
    # An OpenAI-format state dict (open_clip's CLIP keeps OpenAI's key names); a tiny one stands in.
    path = tmp_path / "ViT-B-32.pt"
    torch.save(tiny.model.state_dict(), path)
    monkeypatch.setattr(models, "_registered_openai_copy", lambda name: path if name == "ViT-B-32" else None)
    loaded = load_model("ViT-B-32", pretrained="openai")
    assert loaded.pretrained == "openai"
    # OpenAI's loader builds in fp16 first (their weights are fp16), so compare up to fp16 rounding
    ours, theirs = tiny.model.state_dict(), loaded.model.state_dict()
    assert set(ours) == set(theirs)
    assert all(torch.allclose(ours[k].float(), theirs[k].float(), rtol=1e-3, atol=1e-3) for k in ours)
    assert loaded.preprocess(__import__("PIL.Image").Image.new("RGB", (100, 80))).shape == (3, 64, 64)


def test_efficientnet_key_remap_checks_the_count():
    with pytest.raises(ModelUnavailable, match="tensors"):
        remap_efficientnet_lite0({"a": torch.zeros(1), "_fc.weight": torch.zeros(1)}, ["x", "y"])
    mapped = remap_efficientnet_lite0({"_conv_stem.weight": torch.ones(1), "_fc.bias": torch.zeros(1)}, ["conv_stem.weight"])
    assert list(mapped) == ["conv_stem.weight"] and mapped["conv_stem.weight"].item() == 1.0


def test_sample_model_carries_the_packaged_pretrained_towers():
    from safetensors.torch import load_file

    lm = load_model(SAMPLE_MODEL)
    assert lm.pretrained == "sample-towers" and lm.embed_dim == 256
    package_image = torch.load(models.efficientnet_lite0_file(), map_location="cpu", weights_only=True)
    assert torch.equal(lm.model.visual.trunk.conv_stem.weight, package_image["_conv_stem.weight"])
    assert torch.equal(lm.model.visual.trunk.bn2.running_var, package_image["_bn1.running_var"])
    package_text = load_file(str(models.minilm_dir() / "model.safetensors"))
    word = lm.model.text.transformer.embeddings.word_embeddings.weight
    assert torch.equal(word, package_text["embeddings.word_embeddings.weight"])
    # the projection heads are seeded (same weights id on every load), not trained
    assert load_model(SAMPLE_MODEL).weights_id == lm.weights_id
    tokens = lm.tokenizer(["Mercury is the smallest planet."])
    assert tokens.dtype == torch.long and tokens[0, 0].item() == 101  # BERT's [CLS]
