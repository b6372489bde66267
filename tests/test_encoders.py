"""Modality encoders: T inputs, batched normalised embeddings, the missing-picture policy."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from m3el_lib.models.encoders import encode_images, encode_texts, entity_text, load_image, mention_text, picture_path
from m3el_lib.data.io import Dataset
from m3el_lib.models.loading import TINY_MODEL, load_model
from m3el_lib.data.schema import Entity, ImageRef, Instance


@pytest.fixture(scope="module")
def tiny():
    return load_model(TINY_MODEL)


@pytest.fixture()
def pictures(tmp_path):
    Image.new("RGB", (40, 30), (200, 20, 20)).save(tmp_path / "red.png")
    Image.new("RGB", (30, 40), (20, 20, 200)).save(tmp_path / "blue.jpg")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "folder.png").mkdir()
    return tmp_path


def test_text_inputs():
    entity = Entity("Q1", "Mercury", "smallest planet of the Solar System")
    inst = Instance("Q1", "Mercury", "", "  Mercury is close to the Sun. ", None, (entity,))
    assert mention_text(inst) == "Mercury is close to the Sun."
    assert entity_text(entity) == "Mercury: smallest planet of the Solar System"
    assert entity_text(Entity("Q2", "Mercury", "")) == "Mercury"
    assert entity_text(Entity("Q3", "", "a planet")) == "a planet"


def test_text_embeddings_are_normalised_ordered_and_batch_independent(tiny):
    texts = ["Mercury the planet", "Freddie Mercury", "mercury the element", "Queen"]
    whole = encode_texts(tiny, texts, batch_size=64)
    assert whole.shape == (4, 64) and whole.dtype == torch.float32
    assert torch.allclose(whole.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(encode_texts(tiny, texts, batch_size=1), whole, atol=1e-5)
    assert torch.allclose(encode_texts(tiny, texts[::-1])[0], whole[3], atol=1e-5)
    with pytest.raises(ValueError):
        encode_texts(tiny, [])


def test_texts_batched_by_length_come_back_in_the_order_given():
    """Batches are formed shortest first (less padding); each row is still its own text's, as
    encoded alone, by a real tokenizer that pads each batch to its longest text (MiniLM)."""
    from m3el_lib.evaluation.baselines import MiniLMEncoder

    encoder = MiniLMEncoder()
    texts = ["A much longer sentence about the planet Mercury, closest to the Sun, and its orbit.", "Queen",
             "Freddie Mercury sang.", "mercury, the element that is liquid at room temperature", "Sun"]
    together = encode_texts(encoder, texts, batch_size=2)
    alone = torch.cat([encode_texts(encoder, [text]) for text in texts])
    assert torch.allclose(together, alone, atol=1e-5)
    assert not torch.allclose(together[0], together[1], atol=1e-2)


def test_unusable_pictures_get_zero_rows_and_are_flagged(tiny, pictures):
    paths = [pictures / "red.png", pictures / "broken.png", None, pictures / "absent.png", pictures / "folder.png", pictures / "blue.jpg"]
    embeddings, missing = encode_images(tiny, paths, batch_size=2)
    assert missing.tolist() == [False, True, True, True, True, False]
    assert embeddings.shape == (6, 64)
    norms = embeddings.norm(dim=1)
    assert torch.allclose(norms[~missing], torch.ones(2), atol=1e-5)
    assert torch.all(norms[missing] == 0)
    single, _ = encode_images(tiny, [pictures / "blue.jpg"])
    assert torch.allclose(single[0], embeddings[5], atol=1e-5)


def test_all_pictures_unusable_still_gives_right_width(tiny, pictures):
    embeddings, missing = encode_images(tiny, [pictures / "broken.png", None])
    assert embeddings.shape == (2, 64) and missing.all() and embeddings.abs().sum() == 0


def test_encoding_gives_the_model_its_training_mode_back(tiny, pictures):
    tiny.model.train()
    try:
        encode_texts(tiny, ["a"])
        encode_images(tiny, [pictures / "red.png"])
        assert tiny.model.training
    finally:
        tiny.model.eval()


def test_load_image_converts_to_rgb(pictures):
    Image.new("L", (8, 8), 128).save(pictures / "grey.png")
    assert load_image(pictures / "grey.png").mode == "RGB"
    assert load_image(pictures / "broken.png") is None and load_image(None) is None


def test_picture_paths_never_leave_the_data_root(tmp_path, caplog):
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "outside.png").write_bytes(b"x")
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    dataset = Dataset(instances=[], root=root, files=[])
    assert picture_path(dataset, ImageRef("a.png", "", "images/a.png")) == root / "images" / "a.png"
    assert picture_path(dataset, ImageRef("x", "", "../outside.png")) is None
    assert picture_path(dataset, ImageRef("x", "", "link.png")) is None
    assert "escapes the data root" in caplog.text


def test_channels_last_encoding_matches_the_plain_layout_and_leaves_the_weights_as_they_were():
    """The CPU fast path for convolutional towers changes speed, not results."""
    from m3el_lib.models.loading import SAMPLE_MODEL, load_model

    lm = load_model(SAMPLE_MODEL)
    pixels = torch.rand(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = lm.model.encode_image(pixels).float()
        fast = lm.encode_image_batch(pixels)
    cosine = torch.nn.functional.cosine_similarity(plain, fast, dim=-1)
    assert torch.allclose(cosine, torch.ones(4), atol=1e-6)
    assert all(p.is_contiguous() for p in lm.model.parameters())
    from m3el_lib.evaluation.baselines import EfficientNetEncoder

    baseline = EfficientNetEncoder()
    with torch.no_grad():
        plain = baseline.model(pixels).float()
        fast = baseline.encode_image_batch(pixels)
    assert torch.allclose(torch.nn.functional.cosine_similarity(plain, fast, dim=-1), torch.ones(4), atol=1e-6)
    assert all(p.is_contiguous() for p in baseline.model.parameters())


def test_pictures_decoded_in_workers_are_the_pictures_decoded_here(tiny, pictures):
    """Decoding ahead in DataLoader workers changes speed, not pixels: the snapshot's real JPEGs and
    PNGs, plus broken and missing files, in order and flagged alike."""
    from m3el_lib.config import SNAPSHOT_DIR
    from m3el_lib.models.encoders import decoded_batches

    files = sorted((SNAPSHOT_DIR / "images").iterdir())[:37]
    files += [pictures / "broken.png", None, pictures / "folder.png", pictures / "red.png"]
    here = list(decoded_batches(files, tiny.preprocess, 8, workers=0))
    ahead = list(decoded_batches(files, tiny.preprocess, 8, workers=2))
    assert len(here) == len(ahead) == 6
    for (pos_a, pix_a, bad_a), (pos_b, pix_b, bad_b) in zip(here, ahead):
        assert pos_a == pos_b and bad_a == bad_b
        assert torch.equal(pix_a, pix_b)
    assert [i for _, _, bad in here for i in bad] == [37, 38, 39]
