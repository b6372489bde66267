"""Paths and profiles come from one module, under a root that M3EL_HOME overrides."""
from __future__ import annotations

import pytest

from m3el_lib import config


def test_home_override_moves_every_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("M3EL_HOME", str(tmp_path))
    assert config.data_dir() == tmp_path / "data"
    assert config.cache_dir() == tmp_path / "cache"
    assert config.results_dir("full") == tmp_path / "results" / "full"
    assert config.dataset_dir(config.get_profile().dataset) == tmp_path / "data" / "m3el-mini"


def test_default_home_is_inside_the_checkout(monkeypatch):
    monkeypatch.delenv("M3EL_HOME")
    assert config.home() == config.PROJECT_ROOT / ".m3el"


def test_profiles(monkeypatch):
    assert config.get_profile().name == "sample"
    monkeypatch.setenv("M3EL_PROFILE", "full")
    full = config.get_profile()
    assert (full.model, full.pretrained, full.dataset) == ("ViT-B-32", "openai", "m3el-release")
    assert config.resolve_device(profile="sample") == "cpu"
    assert config.resolve_device("cuda:1", "sample") == "cuda:1"  # an explicit device wins
    assert config.model_choice("full") == ("ViT-B-32", "openai")
    assert config.model_choice("full", "ViT-B-16") == ("ViT-B-16", None)  # the tag goes with the profile's model
    assert config.model_choice("sample", pretrained="") == ("m3el-mini-dual", None)
    with pytest.raises(ValueError, match="expected one of sample, full"):
        config.get_profile("laptop")
