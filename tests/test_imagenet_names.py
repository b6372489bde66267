"""The sample model's image head keeps the tower's ImageNet classifier and puts a picture's top
classes' names into the text tower's space (m3el_lib.models.imagenet_names, ConSE)."""
from __future__ import annotations

import matplotlib.cbook
import pytest
import torch
from PIL import Image
from torch import nn

from m3el_lib.models import loading
from m3el_lib.models.imagenet_names import ImageNetNamesHead, imagenet_class_names
from m3el_lib.models.loading import SAMPLE_MODEL, load_model
from m3el_lib.training.towers import HFTextSplit


def _head(top=2):
    torch.manual_seed(0)
    classifier = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])  # 3 classes, 2 features
    names = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # 3-d text space
    linear = nn.Linear(2, 4, bias=False)
    return ImageNetNamesHead(linear, classifier, torch.zeros(3), names, torch.randn(4, 3), top=top)


def test_the_class_mixture_is_the_softmax_over_the_top_classes_of_their_names():
    head = _head(top=2)
    mixture = head.class_mixture(torch.tensor([[2.0, 0.0]]))  # logits 2, 0, -2: classes 0 and 1 kept
    weights = torch.softmax(torch.tensor([2.0, 0.0]), dim=0)
    assert torch.allclose(mixture, torch.tensor([[weights[0], weights[1], 0.0]]))
    features = torch.tensor([[0.3, -0.7]])
    assert torch.allclose(head(features), head.linear(features) + head.class_mixture(features) @ head.names.weight.T)


def test_only_the_two_linear_maps_train_and_the_locked_parts_are_saved():
    head = _head()
    assert {name for name, _ in head.named_parameters()} == {"linear.weight", "names.weight"}
    assert {"classifier_weight", "classifier_bias", "name_embeddings"} <= set(head.state_dict())
    with pytest.raises(ValueError, match="does not fit"):
        ImageNetNamesHead(nn.Linear(5, 4), torch.zeros(3, 2), torch.zeros(3), torch.zeros(3, 3), torch.zeros(4, 3))


@pytest.fixture(scope="module")
def sample():
    return load_model(SAMPLE_MODEL)


def test_the_packaged_classifier_reads_a_real_photo_in_the_standard_class_order(sample):
    """matplotlib's sample photo of Grace Hopper in U.S. Navy uniform, through the locked tower."""
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as photo:
        pixels = sample.preprocess(photo.convert("RGB"))[None]
    head = sample.model.visual.head.proj
    with torch.no_grad():
        logits = sample.model.visual.trunk(pixels) @ head.classifier_weight.T + head.classifier_bias
    names = imagenet_class_names()
    assert len(names) == 1000 and names[int(logits.argmax())] == "military uniform"


def test_before_training_a_picture_lands_where_the_text_tower_puts_its_class_names(sample):
    model, head = sample.model, sample.model.visual.head.proj
    assert torch.equal(head.names.weight, model.text.proj.weight)
    tokens = sample.tokenizer(imagenet_class_names()[:3])
    with torch.no_grad():
        assert torch.allclose(head.names(head.name_embeddings[:3]), model.encode_text(tokens), atol=1e-5)


def test_cutting_padding_leaves_the_pooled_text_features_unchanged(sample):
    """The class names are embedded by the text tower's prefix at 0 unlocked blocks, which trims padding."""
    text = sample.model.text
    tokens = sample.tokenizer(["tench", "a much longer caption about a great white shark near the coast"])
    with torch.no_grad():
        full_mask = (tokens != text.config.pad_token_id).long()
        full = text.pooler(text.transformer(input_ids=tokens, attention_mask=full_mask), full_mask)
    assert torch.allclose(HFTextSplit(text, 0).prefix(tokens), full, atol=1e-5)


def test_weights_saved_before_the_names_head_get_one_line_saying_so(sample, tmp_path):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in sample.model.state_dict().items() if not k.startswith("visual.head.proj.")}
    state["visual.head.proj.weight"] = sample.model.visual.head.proj.linear.weight.detach().clone()  # the old layout
    old = tmp_path / "old.safetensors"
    save_file(state, str(old))
    with pytest.raises(loading.ModelUnavailable) as err:
        load_model(SAMPLE_MODEL, checkpoint=old)
    message = str(err.value)
    assert "\n" not in message and str(old) in message and "Missing key(s)" in message
    assert "before the sample model's image head read ImageNet class names" in message
