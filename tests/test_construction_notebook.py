"""Notebook 01 (dataset construction) executes with papermill in the sample profile."""
from __future__ import annotations

import pytest

from m3el_lib import config


@pytest.mark.notebooks
@pytest.mark.slow
def test_notebook_01_executes(tmp_path):
    jupytext = pytest.importorskip("jupytext")
    papermill = pytest.importorskip("papermill")
    notebook = jupytext.read(config.NOTEBOOKS_DIR / "01_dataset_construction.py")
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(notebook, str(out), parameters={"profile": "sample"}, kernel_name="python3", progress_bar=False)
    executed = out.read_text(encoding="utf-8")
    assert "M³EL-mini, checksum" in executed and '"output_type": "error"' not in executed
    assert (config.dataset_dir("m3el-mini") / "manifest.json").exists()
