"""Arguments of `m3el train` (also `python -m m3el_lib.training`, and the same under torchrun).

    m3el train --profile sample|full [--config FILE] [--resume PATH] [--set KEY=VALUE ...] [--no-tensorboard]

The preset of the profile is the base; `--config` (JSON or YAML) overrides it, `--set` overrides
both (values are JSON when they parse as JSON, strings otherwise). Under torchrun every process
runs this; only rank 0 prints and writes files.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

PROFILES = ("sample", "full")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=PROFILES, default=None, help="preset and data (default: M3EL_PROFILE or sample)")
    parser.add_argument("--config", type=Path, default=None, help="a JSON/YAML file of TrainConfig options")
    parser.add_argument("--resume", type=Path, default=None, help="a last.pt to continue from (same config)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one option, e.g. --set epochs=3 --set pairings='[\"T-T\"]'")
    parser.add_argument("--no-tensorboard", action="store_true",
                        help="write no TensorBoard event files (same as --set tensorboard=false)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    from .. import config as paths

    try:
        return dict(paths.parse_key_value(item) for item in items)
    except ValueError as err:
        raise ValueError(f"--set {err}") from None


def resolve_config(args: argparse.Namespace) -> Any:
    from .. import config as paths
    from .config import from_dict, load_config, preset

    profile = paths.get_profile(args.profile).name
    config = preset(profile)
    if args.config is not None:
        config = load_config(args.config, base=config)
    config = from_dict(parse_overrides(args.overrides), base=config, source="--set")
    return config.replace(tensorboard=False) if getattr(args, "no_tensorboard", False) else config


def run(args: argparse.Namespace) -> int:
    try:
        config = resolve_config(args)
    except (ValueError, OSError) as err:
        print(f"m3el train: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    from .experiments import train_run

    try:
        result = train_run(config, resume=args.resume)
    except (FileNotFoundError, ValueError) as err:
        print(f"m3el train: {err}", file=sys.stderr)
        return 1
    from .distributed import env_world_size

    if os.environ.get("RANK", "0") == "0":
        print(f"{result.stopped} after {result.global_step} steps ({result.epochs_run} epochs, "
              f"{env_world_size()} process(es)); best validation {result.best_metric}")
        print(f"checkpoint for evaluation: {result.best_path}")
        print(f"evaluate with: m3el evaluate --profile {config.profile} --model {result.history['model']} "
              f"--checkpoint {result.best_path} --split test")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="m3el train", description="CLIP_ND modality-augmented fine-tuning")
    add_arguments(parser)
    return run(parser.parse_args(argv))
