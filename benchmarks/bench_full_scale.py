"""Benchmark: the full profile's path at the release's size, on a synthetic release (issue 14).

At each scale (default 10%, 30% and 100% of the release's 79,625 instances) it writes a
synthetic release (`m3el synth-release`), then runs, each stage in its own process:
register, `m3el stats`, `m3el evaluate` (candidates, cold embedding cache), `m3el evaluate
--full-kb` (warm cache), the book's statistics chapter in the full profile (the other chapters
need the real CLIP weights and have no caps yet), a capped number of training steps (full preset, DataLoader workers
decoding the JPEGs), and the data pipeline alone. Per stage it prints time, time per instance
against the first scale's figure, peak memory (the stage's process tree, sampled) and disk used.

Targets: every stage's time per instance at the largest scale within 1.3x of the first scale's
(CPU time, user + system of the stage's processes: on this shared 2-core machine the wall time of
a stage also counts whatever else runs beside it, so a wall-time ratio compares loads, not
algorithms; the wall-time ratio and the load average are printed beside it);
peak memory under 8 GiB; the data pipeline delivers at least 2x the pictures per second that the
training step consumes (both measured here). Full-KB ranking compares every mention with every
knowledge-base entity, so its work grows with instances x entities: its ratio is per
(mention, entity) pair, and says so.

Models (CPU): evaluation and the capped training run use `m3el-tiny-random` (a 3.6M-parameter
open_clip CLIP, random init), so that they finish on a CPU. The pipeline ratio is about what the
full profile's step consumes, so both of its sides use ViT-B/32 (random init: nothing is
downloaded): the pipeline alone, with ViT-B/32's 224-pixel transform, and a few ViT-B/32 steps
at a small batch (measured once, at the first scale: a step's cost does not depend on the
release's size).

    python benchmarks/bench_full_scale.py [--scales 0.1 0.3 1.0] [--keep] [--workdir DIR]

Writes benchmarks/results/full_scale-cpu.json (every figure, with provenance).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

TIME_RATIO_TARGET = 1.3
MEMORY_TARGET_GIB = 8.0
PIPELINE_RATIO_TARGET = 2.0
from common import pipeline_throughput  # noqa: E402
from m3el_lib.paper import RELEASE_INSTANCES  # noqa: E402
EVAL_MODEL = "m3el-tiny-random"
TRAIN_STEPS = 8
TRAIN_BATCH = 32
STEP_MODEL = "ViT-B-32"  # the full profile's architecture
STEP_STEPS = 2  # the first step includes worker start-up and is left out of the rate
STEP_BATCH = 4
WORKERS = 2  # this machine's cores; the GPU check uses 8+
PIPELINE_BATCHES = 12


# ---------------------------------------------------------------- measuring one stage


def _tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and all its descendants (from /proc), in bytes."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            pid = int(entry)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * page
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_stage(command: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    """Run a command; its wall time, CPU time (user + system, of the process and every child it
    waited for: DataLoader workers included), peak tree memory (sampled every 0.25 s), exit code
    and the load average at its end."""
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                peak[0] = max(peak[0], _tree_rss_bytes(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    # ru_maxrss (KiB) covers the largest single process, in case the sampler missed a short peak
    peak_bytes = max(peak[0], usage.ru_maxrss * 1024)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_gib": peak_bytes / 2**30, "exit": process.returncode, "load_average": os.getloadavg()[0]}


def disk_bytes(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


# ---------------------------------------------------------------- the stages


def m3el(*args: str) -> list[str]:
    return [sys.executable, "-m", "m3el_lib", *args]


def registered_release(home: Path) -> str:
    record = home / "cache" / "downloads" / "m3el-release" / "registered.json"
    return json.loads(record.read_text())["path"]


def train_overrides(release: str, out: Path, model: str = EVAL_MODEL, steps: int = TRAIN_STEPS,
                    batch: int = TRAIN_BATCH) -> list[str]:
    settings = {
        "dataset": release, "model": model, "pretrained": "", "device": "cpu",
        # the documented record has no split field: train on the unsplit records, no validation
        "train_split": "", "validate_every_epoch": False, "max_steps": steps, "batch_size": batch,
        "warmup_steps": 1, "num_workers": WORKERS, "checkpoint_every": 0, "progress": False, "output_dir": str(out),
    }
    return [item for key, value in settings.items() for item in ("--set", f"{key}={json.dumps(value)}")]


def pipeline_stage(release: str, out: str) -> int:
    """(In its own process) the training data pipeline alone: pictures per second it delivers."""
    from m3el_lib.training.cli import parse_overrides
    from m3el_lib.training.config import from_dict, preset
    from m3el_lib.training.engine import Trainer

    overrides = parse_overrides(train_overrides(release, Path(out) / "run", model=STEP_MODEL, batch=STEP_BATCH)[1::2])
    config = from_dict(overrides, base=preset("full"))
    pictures, seconds, _ = pipeline_throughput(Trainer(config), PIPELINE_BATCHES)
    Path(out, "pipeline.json").write_text(json.dumps({"pictures": pictures, "seconds": seconds, "workers": WORKERS}))
    return 0


def notebook_stage(release: str, home: str) -> int:
    """(In its own process) the statistics chapter in the full profile, as the book runs it.

    The other chapters need the full profile's model (CLIP ViT-B/32 with OpenAI's weights, not
    available offline) and its training run; they have no parameters yet to cap them."""
    from m3el_lib import config
    from m3el_lib.book.runner import BookJob, execute_all

    job = BookJob(profile="full", notebooks=[config.NOTEBOOKS_DIR / "02_dataset_statistics.py"], home=Path(home),
                  parameters={"dataset_path": release})
    execute_all(job, force=True)
    return 0


def step_consumption(run_dir: Path) -> dict[str, float]:
    """Pictures per second the training step consumes (compute time, data wait excluded)."""
    history = json.loads((run_dir / "history.json").read_text())
    rows = history["train"][1:] or history["train"]  # the first step includes worker start-up
    compute = sum(r["step_seconds"] - r["data_seconds"] for r in rows)
    pictures = sum(r.get("pictures", 0) for r in rows)
    return {"compute_seconds": compute, "steps": len(rows), "pictures": pictures}


def run_scale(scale: float, workdir: Path, keep: bool, step_rate: bool) -> dict[str, dict[str, float]]:
    home = workdir / f"home-{scale:g}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {**os.environ, "M3EL_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    logs = home / "logs"
    logs.mkdir()
    out = home / "synth"
    stages: dict[str, dict[str, float]] = {}

    def stage(name: str, command: list[str]) -> dict[str, float]:
        found = run_stage(command, env, logs / f"{name}.log")
        found["disk_gib"] = disk_bytes(home) / 2**30
        stages[name] = found
        if found["exit"] != 0:
            tail = (logs / f"{name}.log").read_text()[-2000:]
            raise RuntimeError(f"stage {name} at scale {scale:g} failed (exit {found['exit']}):\n{tail}")
        return found

    stage("generate", m3el("synth-release", "--out", str(out), "--scale", str(scale)))
    stage("register", m3el("register", "m3el-release", str(out / "M3EL.zip")))
    release = registered_release(home)
    stage("stats", m3el("stats", release, "--profile", "full"))
    evaluate = ["evaluate", "--profile", "full", "--model", EVAL_MODEL, "--data", release, "--split", "all",
                "--device", "cpu", "--bootstrap", "200"]
    stage("evaluate candidates (cold cache)", m3el(*evaluate))
    stage("evaluate full-KB (warm cache)", m3el(*evaluate, "--full-kb"))
    stage("book: statistics chapter (full profile)",
          [sys.executable, str(Path(__file__).resolve()), "--notebook-stage", release, str(home)])
    stage(f"train {TRAIN_STEPS} steps ({EVAL_MODEL}, {WORKERS} workers)",
          m3el("train", "--profile", "full", *train_overrides(release, home / "train")))
    stage(f"data pipeline alone ({STEP_MODEL} transform)",
          [sys.executable, str(Path(__file__).resolve()), "--pipeline-stage", release, str(home)])
    pipeline = json.loads((home / "pipeline.json").read_text())
    stages["pipeline"] = {"delivered_pictures_per_s": pipeline["pictures"] / pipeline["seconds"]}
    if step_rate:
        run_dir = home / "step"
        stage(f"{STEP_MODEL} steps (batch {STEP_BATCH})", m3el(
            "train", "--profile", "full", *train_overrides(release, run_dir, STEP_MODEL, STEP_STEPS, STEP_BATCH)))
        consumed = step_consumption(run_dir)
        stages["pipeline"]["consumed_pictures_per_s"] = consumed["pictures"] / consumed["compute_seconds"]
        stages["pipeline"]["step_seconds_per_example"] = consumed["compute_seconds"] / (consumed["steps"] * STEP_BATCH)
        shutil.rmtree(run_dir, ignore_errors=True)  # a ViT-B/32 checkpoint with its optimiser: 1.8 GB
    stages["sizes"] = _sizes(home, release)
    if not keep:
        shutil.rmtree(home, ignore_errors=True)
    return stages


def _sizes(home: Path, release: str) -> dict[str, float]:
    """Instances and knowledge-base entities of the registered release (for the per-pair ratio)."""
    record = json.loads((home / "cache" / "downloads" / "m3el-release" / "registered.json").read_text())
    stats = json.loads((home / "results" / "full" / "stats" / "stats.json").read_text())
    return {"instances": record["instances"], "entities": stats["entities"]}


# ---------------------------------------------------------------- report


def _cpu(found: dict[str, float]) -> float:
    return found.get("cpu_seconds", found["seconds"])  # figures recorded before CPU time was: wall time


def _per_unit_ratio(name: str, found: dict, sizes: dict, base: dict, seconds) -> float:
    """A stage's seconds per instance (per mention x entity pair for full-KB) against the base scale's."""
    def unit(s: dict) -> float:
        return s["instances"] * s["entities"] if "full-KB" in name else s["instances"]

    return (seconds(found) / unit(sizes)) / (seconds(base[name]) / unit(base["sizes"]))


def report(results: dict[float, dict], base_scale: float) -> bool:
    from common import verdict

    base = results[base_scale]
    ok = True
    for scale, stages in results.items():
        sizes = stages["sizes"]
        print(f"\n--- scale {scale:g}: {sizes['instances']:,} instances, {sizes['entities']:,} entities")
        print(f"{'stage':<44} {'time s':>8} {'cpu s':>8} {'ms/inst':>8} {'vs base':>8} {'wall vs':>8} {'load':>5} {'peak GiB':>9} {'disk GiB':>9}")
        for name, found in stages.items():
            if name in ("pipeline", "sizes"):
                continue
            per = _cpu(found) / sizes["instances"]
            ratio = _per_unit_ratio(name, found, sizes, base, _cpu)
            wall = _per_unit_ratio(name, found, sizes, base, lambda f: f["seconds"])
            print(f"{name:<44} {found['seconds']:8.1f} {_cpu(found):8.1f} {1000 * per:8.3f} {ratio:7.2f}x {wall:7.2f}x "
                  f"{found.get('load_average', float('nan')):5.1f} {found['peak_gib']:9.2f} {found['disk_gib']:9.2f}"
                  + ("  (per mention x entity pair)" if "full-KB" in name else ""))
        print(f"data pipeline alone: {stages['pipeline']['delivered_pictures_per_s']:.1f} pictures/s ({WORKERS} workers)")
    print()
    largest = results[max(results)]
    for name, found in largest.items():
        if name in ("pipeline", "sizes", "generate") or name not in base:
            continue
        ratio = _per_unit_ratio(name, found, largest["sizes"], base, _cpu)
        unit = "pair" if "full-KB" in name else "instance"
        ok &= verdict(f"{name.split(' (')[0][:22]}: CPU per {unit}, {max(results):g}/{base_scale:g}", ratio, TIME_RATIO_TARGET, "x")
    peak = max(f["peak_gib"] for stages in results.values() for n, f in stages.items() if n not in ("pipeline", "sizes"))
    ok &= verdict("peak memory of any stage", peak, MEMORY_TARGET_GIB, "GiB")
    delivered = largest["pipeline"]["delivered_pictures_per_s"]
    consumed = base["pipeline"]["consumed_pictures_per_s"]
    ratio = delivered / max(consumed, 1e-9)
    print(f"{STEP_MODEL} step consumes {consumed:.2f} pictures/s (batch {STEP_BATCH}, this CPU); the pipeline delivers "
          f"{delivered:.1f} pictures/s at scale {max(results):g}")
    print(f"{'data pipeline / training step (pictures/s)':<44} {ratio:8.2f} x    target >= {PIPELINE_RATIO_TARGET:g} x  "
          f"{'met' if ratio >= PIPELINE_RATIO_TARGET else 'MISSED'}")
    return ok and ratio >= PIPELINE_RATIO_TARGET


def save(results: dict[float, dict]) -> Path:
    from m3el_lib.data.provenance import write_result

    path = HERE / "results" / "full_scale-cpu.json"
    body = {"device": f"cpu ({os.cpu_count()} cores)", "eval_model": EVAL_MODEL, "train_model": EVAL_MODEL,
            "train_batch": TRAIN_BATCH, "step_model": STEP_MODEL, "step_batch": STEP_BATCH, "workers": WORKERS,
            "scales": {f"{scale:g}": stages for scale, stages in results.items()}}
    return write_result(path, body, parameters={"scales": sorted(results), "benchmark": "bench_full_scale"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    parser.add_argument("--workdir", type=Path, default=None, help="where the releases and homes go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep each scale's release and results")
    parser.add_argument("--pipeline-stage", nargs=2, metavar=("RELEASE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--notebook-stage", nargs=2, metavar=("RELEASE", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipeline_stage:
        return pipeline_stage(*args.pipeline_stage)
    if args.notebook_stage:
        return notebook_stage(*args.notebook_stage)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_full_scale_"))
    results = {}
    for scale in args.scales:
        print(f"scale {scale:g} ({round(RELEASE_INSTANCES * scale):,} instances) ...", flush=True)
        results[scale] = run_scale(scale, workdir, args.keep, step_rate=scale == args.scales[0])
        print(f"wrote {save(results)}", flush=True)  # after every scale: a long run keeps what it measured
    return 0 if report(results, args.scales[0]) else 1


if __name__ == "__main__":
    sys.exit(main())
