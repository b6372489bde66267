"""Past one machine: 2 processes under torchrun (gloo, CPU) agree with 1 process on the same
global batch.

The 1-process run takes grad_accum=2 micro-batches per step; the 2-process run takes one on each
process (DDP averages the gradients). Same micro-batches, same update: losses, validation and
weights agree to float rounding. Tiny random model, a few steps.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from m3el_lib.data.synthetic import write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, data: Path, name: str, processes: int, grad_accum: int) -> dict:
    options = {
        "profile": "sample", "model": "m3el-tiny-random", "dataset": str(data), "output_dir": str(tmp_path / name),
        "trainable": "all", "precompute_frozen": False, "epochs": 2, "batch_size": 4, "grad_accum": grad_accum,
        "lr": 1e-3, "warmup_steps": 1, "progress": False, "early_stopping_patience": 0, "device": "cpu", "seed": 3,
    }
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps(options))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                "--nproc_per_node", str(processes)] if processes > 1 else [sys.executable]
    done = subprocess.run([*launcher, "-m", "m3el_lib.training", "--config", str(config)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    history = json.loads((tmp_path / name / "history.json").read_text())
    history["weights"] = torch.load(tmp_path / name / "last.pt", weights_only=False)["state_dict"]
    return history


@pytest.mark.slow
def test_two_gloo_processes_agree_with_one_process_on_the_same_global_batch(tmp_path):
    data = write_synthetic_dataset(tmp_path / "data", n=60, image_every=2)
    one = _run(tmp_path, data, "one", processes=1, grad_accum=2)
    two = _run(tmp_path, data, "two", processes=2, grad_accum=1)
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert len(list((tmp_path / "two").glob("events.out.tfevents.*"))) == 1  # TensorBoard: rank 0 only
    assert one["steps_per_epoch"] == two["steps_per_epoch"] >= 2
    assert [r["step"] for r in one["train"]] == [r["step"] for r in two["train"]]
    assert [r["loss"] for r in one["train"]] == pytest.approx([r["loss"] for r in two["train"]], abs=1e-4)
    for a, b in zip(one["val"], two["val"]):
        assert a["acc_all_mean"] == pytest.approx(b["acc_all_mean"], abs=1e-6)
    for key, value in one["weights"].items():
        assert torch.allclose(value, two["weights"][key], atol=1e-4), key
    from m3el_lib.models.loading import load_model

    initial = load_model("m3el-tiny-random").model.state_dict()
    assert any(not torch.allclose(initial[k], v, atol=1e-3) for k, v in two["weights"].items())  # it trained
