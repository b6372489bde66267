"""The embedding cache and the embedding scorer: encode once, reuse, rebuild when stale or broken."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from m3el_lib import config
from m3el_lib.models.embedding_cache import EmbeddingCache, image_key
from m3el_lib.evaluation.metrics import evaluate
from m3el_lib.data.io import load_dataset
from m3el_lib.models.loading import TINY_MODEL, load_model
from m3el_lib.data.schema import TASK_NAMES
from m3el_lib.evaluation.scoring import model_scorer
from m3el_lib.data.synthetic import write_synthetic_dataset


@pytest.fixture(scope="module")
def tiny():
    return load_model(TINY_MODEL)


def test_texts_are_encoded_once_and_stored_on_disk(tiny):
    cache = EmbeddingCache(tiny, tiny.weights_id, "d" * 64)
    first = cache.texts("mention", ["a", "b", "a"])
    assert cache.encoded["T"] == 2 and torch.equal(first[0], first[2])
    stored = config.cache_dir() / "embeddings" / tiny.weights_id[:24] / ("d" * 24) / "mention-T.pt"
    assert stored.exists()
    again = EmbeddingCache(tiny, tiny.weights_id, "d" * 64)
    assert torch.equal(again.texts("mention", ["b", "a"]), first[[1, 0]])
    assert again.encoded["T"] == 0
    again.texts("mention", ["c", "a"])
    assert again.encoded["T"] == 1  # only the new text


def test_keys_differ_by_side_weights_and_data(tiny):
    EmbeddingCache(tiny, tiny.weights_id, "d" * 64).texts("mention", ["a"])
    for cache, side in (
        (EmbeddingCache(tiny, tiny.weights_id, "d" * 64), "entity"),
        (EmbeddingCache(tiny, "f" * 64, "d" * 64), "mention"),
        (EmbeddingCache(tiny, tiny.weights_id, "e" * 64), "mention"),
    ):
        cache.texts(side, ["a"])
        assert cache.encoded["T"] == 1


def test_unreadable_cache_file_is_rebuilt(tiny, caplog):
    cache = EmbeddingCache(tiny, tiny.weights_id, "d" * 64)
    expected = cache.texts("entity", ["x"])
    cache.path("entity", "T").write_bytes(b"not a torch file")
    fresh = EmbeddingCache(tiny, tiny.weights_id, "d" * 64)
    assert torch.allclose(fresh.texts("entity", ["x"]), expected)
    assert fresh.encoded["T"] == 1 and "rebuilt" in caplog.text


def test_replaced_picture_is_encoded_again(tiny, tmp_path):
    path = tmp_path / "p.png"
    Image.new("RGB", (20, 20), (255, 0, 0)).save(path)
    cache = EmbeddingCache(tiny, tiny.weights_id, "d" * 64)
    red, missing = cache.images("entity", [image_key("p.png", path)], [path])
    Image.new("RGB", (24, 24), (0, 0, 255)).save(path)
    blue, _ = cache.images("entity", [image_key("p.png", path)], [path])
    assert cache.encoded["I"] == 2 and not torch.allclose(red, blue) and not missing.any()
    assert image_key("q.png", tmp_path / "absent.png") == "q.png|absent"


def test_no_persist_writes_nothing(tiny):
    cache = EmbeddingCache(tiny, tiny.weights_id, "d" * 64, persist=False)
    cache.texts("mention", ["a"])
    assert not cache.folder.exists()


@pytest.fixture()
def synthetic(tmp_path):
    return load_dataset(write_synthetic_dataset(tmp_path / "syn", n=24, image_every=2))


def test_second_evaluation_reads_everything_from_the_cache(tiny, synthetic):
    first_scorer = model_scorer(tiny)
    first = evaluate(first_scorer, synthetic, split="all", full_kb=True, n_bootstrap=20)
    assert first_scorer.cache.encoded["T"] > 0 and first_scorer.cache.encoded["I"] > 0
    second_scorer = model_scorer(tiny)
    second = evaluate(second_scorer, synthetic, split="all", full_kb=True, n_bootstrap=20)
    assert second_scorer.cache.encoded == {"T": 0, "I": 0}
    assert second.rows() == first.rows()
    assert {g.task for g in first.groups} == set(TASK_NAMES)


def test_embedding_scores_are_cosines_of_the_encoders_outputs(tiny, synthetic):
    from m3el_lib.models.encoders import encode_texts, entity_text, mention_text
    from m3el_lib.data.schema import task_by_name
    from m3el_lib.evaluation.scoring import EntityTable

    instances = synthetic.instances[:3]
    entities = EntityTable.from_instances(instances)
    scorer = model_scorer(tiny, persist_cache=False)
    scorer.prepare(synthetic, instances, entities)
    idx, _, _ = entities.candidate_matrix(instances)
    got = scorer.pair_scores(task_by_name("T-T"), np.arange(3), idx)
    mention = encode_texts(tiny, [mention_text(i) for i in instances])
    expected = [[float(mention[r] @ encode_texts(tiny, [entity_text(c)])[0]) for c in inst.candidates] for r, inst in enumerate(instances)]
    assert np.allclose(got, expected, atol=1e-5)


def test_broken_mention_pictures_are_counted_and_score_chance(tiny, synthetic):
    for inst in synthetic.instances:
        if inst.has_mention_image:
            synthetic.image_path(inst.image).write_bytes(b"broken")
    result = evaluate(model_scorer(tiny), synthetic, split="all", n_bootstrap=20)
    group = result.get("I-I")
    assert group.missing_mention_pictures == group.n > 0
    assert group.metrics["acc@1"] == pytest.approx(group.chance["acc@1"])
    assert result.get("T-T").missing_mention_pictures == 0
    # TI mentions fall back to their text: not chance, but counted
    assert result.get("TI-T").missing_mention_pictures == result.get("TI-T").n


def test_dataset_without_any_picture_scores_the_text_tasks_only(tiny, tmp_path):
    from dataclasses import replace

    from m3el_lib.data.io import write_dataset
    from m3el_lib.data.synthetic import make_instances

    instances, _ = make_instances(9)
    text_only = [replace(i, image=None, mention_image_kind="none",
                         candidates=tuple(replace(c, image=None) for c in i.candidates)) for i in instances]
    write_dataset(text_only, tmp_path / "text")
    result = evaluate(model_scorer(tiny, persist_cache=False), load_dataset(tmp_path / "text"), split=None, n_bootstrap=10)
    assert {g.task for g in result.groups} == {"T-T"}
