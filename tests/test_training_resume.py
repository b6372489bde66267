"""Kill-and-resume: a run SIGKILLed mid-step and resumed from its last checkpoint ends exactly
where the uninterrupted run ends (same losses step by step, same weights).

Each run is its own `python -m m3el_lib.training` process (the real entry point), on the tiny
random model and a small synthetic dataset.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from m3el_lib.data.synthetic import write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, data: Path, out: str, **changes) -> Path:
    options = {
        "profile": "sample", "model": "m3el-tiny-random", "dataset": str(data), "output_dir": str(tmp_path / out),
        "trainable": "last", "unlocked_blocks": 1, "precompute_frozen": True, "epochs": 3, "batch_size": 4,
        "grad_accum": 2, "lr": 1e-3, "warmup_steps": 2, "checkpoint_every": 1, "progress": False,
        "early_stopping_patience": 0, "device": "cpu", "seed": 7,
    }
    options.update(changes)
    path = tmp_path / f"{out}.json"
    path.write_text(json.dumps(options))
    return path


def _train(config: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "m3el_lib.training", "--config", str(config), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _curve(run: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    return [(e.step, round(e.value, 5)) for e in events.Scalars(tag)]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path):
    data = write_synthetic_dataset(tmp_path / "data", n=60, image_every=2)
    whole = _train(_config(tmp_path, data, "whole"))
    assert whole.returncode == 0, whole.stderr

    killed_config = _config(tmp_path, data, "killed", kill_at_step=4)  # dies inside step 4 (mid-epoch 1)
    killed = _train(killed_config)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    last = tmp_path / "killed" / "last.pt"
    saved = torch.load(last, weights_only=False)
    assert saved["resume"]["state"]["global_step"] == 3  # the checkpoint of the last finished step
    assert not list((tmp_path / "killed").glob(".*.tmp"))  # no half-written checkpoint left behind

    resumed = _train(killed_config, "--resume", str(last), "--set", "kill_at_step=0")
    assert resumed.returncode == 0, resumed.stderr

    a = json.loads((tmp_path / "whole" / "history.json").read_text())
    b = json.loads((tmp_path / "killed" / "history.json").read_text())
    assert [r["step"] for r in a["train"]] == [r["step"] for r in b["train"]]  # no duplicated or lost rows
    assert [r["loss"] for r in a["train"]] == [r["loss"] for r in b["train"]]
    assert a["val"] == b["val"]
    # TensorBoard's curves of the killed-and-resumed run (two event files) are the uninterrupted run's.
    assert _curve(tmp_path / "killed", "train/loss") == _curve(tmp_path / "whole", "train/loss")
    assert _curve(tmp_path / "killed", "val/acc_selected_mean") == _curve(tmp_path / "whole", "val/acc_selected_mean")
    wa = torch.load(tmp_path / "whole" / "best.pt", weights_only=True)["state_dict"]
    wb = torch.load(tmp_path / "killed" / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_a_changed_config(tmp_path):
    from m3el_lib.data.io import load_dataset
    from m3el_lib.models.loading import load_model
    from m3el_lib.training.config import load_config
    from m3el_lib.training.engine import Trainer

    data = write_synthetic_dataset(tmp_path / "data", n=30, image_every=2)
    dataset = load_dataset(data)
    first = load_config(_config(tmp_path, data, "first", epochs=1, grad_accum=1))
    result = Trainer(first, loaded=load_model("m3el-tiny-random"), dataset=dataset).fit()
    changed = first.replace(lr=0.5)
    trainer = Trainer(changed, loaded=load_model("m3el-tiny-random"), dataset=dataset)
    with pytest.raises(ValueError, match="lr"):
        trainer.resume_from(result.last_path)
    with pytest.raises(ValueError, match="not a resumable"):
        trainer.resume_from(result.best_path)
