"""Shared test set-up: every test gets its own M3EL_HOME, so nothing touches the user's data."""
from __future__ import annotations

import os

import pytest

# No test may reach a model hub: fail fast instead of retrying for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch, request):
    """A private M3EL_HOME per test, unless the test is marked to use the shared one."""
    if request.node.get_closest_marker("shared_home"):
        return None
    home = tmp_path_factory.mktemp("m3el_home")
    monkeypatch.setenv("M3EL_HOME", str(home))
    monkeypatch.delenv("M3EL_PROFILE", raising=False)
    return home
