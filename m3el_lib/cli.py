"""The `m3el` command line: one subcommand per library feature, each a thin call into m3el_lib.

Each subcommand is an `add_<name>(subparsers)` function that declares its arguments and sets
`func` to a runner returning the exit code. Heavy imports happen inside the runners so that
`m3el info` and `m3el validate` start fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from . import config


def add_info(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("info", help="versions, profile and paths")
    parser.add_argument("--profile", choices=config.PROFILE_NAMES, default=None)
    parser.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    from .data.provenance import git_commit, package_versions
    from .data.datasets import resolve_dataset
    from .data.io import DatasetError
    from .data.registrations import local_copy
    from .data.registry import REGISTRY

    profile = config.get_profile(args.profile)
    print(f"m3el_lib {__version__}  (commit {git_commit()})")
    for name, version in package_versions().items():
        print(f"  {name:<16} {version}")
    print(f"profile         {profile.name}: {profile.description}")
    print(f"M3EL_HOME       {config.home()}")
    print(f"data            {config.data_dir()}")
    print(f"cache           {config.cache_dir()}")
    print(f"results         {config.results_dir(profile.name)}")
    try:
        print(f"dataset         {resolve_dataset(profile=profile.name, build=False).path}")
    except DatasetError:
        print(f"dataset         {profile.dataset}  (not built/downloaded yet)")
    print(f"snapshot        {config.SNAPSHOT_DIR}")
    for name in sorted(REGISTRY):
        found = local_copy(name)
        print(f"download {name:<22} {found or 'not here (m3el fetch/register)'}")
    return 0


def add_validate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("validate", help="check a dataset in the release format and summarise it")
    parser.add_argument("path", type=Path, nargs="?", default=None,
                        help="a .json/.jsonl file or a folder of them (default: the profile's dataset)")
    parser.add_argument("--profile", choices=config.PROFILE_NAMES, default=None)
    parser.add_argument("--lenient", action="store_true", help="load the good records, quarantine the bad ones")
    parser.add_argument("--quarantine", type=Path, default=None, help="where the lenient mode's report goes")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from .data.datasets import resolve_dataset
    from .data.io import DatasetError, load_dataset
    from .data.summary import format_summary, summarize

    try:
        path = args.path if args.path is not None else resolve_dataset(profile=args.profile).path
        dataset = load_dataset(path, strict=not args.lenient, quarantine_path=args.quarantine, check_links=True)
    except DatasetError as err:
        print(err, file=sys.stderr)
        return 1
    summary = summarize(dataset)
    print(json.dumps(summary, indent=2, ensure_ascii=False) if args.json else format_summary(summary))
    if dataset.rejected:
        print(dataset.rejection_summary(), file=sys.stderr)
        for rejected in dataset.rejected[:20]:
            for problem in rejected.problems:
                print(f"  {problem}", file=sys.stderr)
        return 2
    return 0


def add_fetch(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("fetch", help="download a registry entry into the cache (resumable, verified)")
    parser.add_argument("name", help="registry entry, e.g. m3el-release or clip-vit-b-32-openai")
    parser.set_defaults(func=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    from .data.registry import ChecksumMismatch, DownloadUnavailable, fetch

    from .fsutil import Busy
    from .data.io import DatasetError

    try:
        print(fetch(args.name))
    except (DownloadUnavailable, ChecksumMismatch, DatasetError, KeyError, ValueError, Busy) as err:
        print(err, file=sys.stderr)
        return 1
    return _print_rejections(args.name)


def add_register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("register", help="adopt a file you downloaded by hand (verified)")
    parser.add_argument("name", help="registry entry")
    parser.add_argument("path", type=Path)
    parser.set_defaults(func=run_register)


def run_register(args: argparse.Namespace) -> int:
    from .fsutil import Busy
    from .data.io import DatasetError
    from .data.registry import ChecksumMismatch, register

    try:
        print(register(args.name, args.path))
    except (ChecksumMismatch, DatasetError, FileNotFoundError, KeyError, ValueError, Busy) as err:
        print(err, file=sys.stderr)
        return 1
    return _print_rejections(args.name)


def _print_rejections(name: str) -> int:
    """After registering the release: what was rejected, and where the report is (the exit code, 0)."""
    from .data.registrations import read_record

    record = read_record(name) or {}
    summary = record.get("rejection_summary")
    if not summary:
        return 0
    print(summary, file=sys.stderr)
    report = Path(record["quarantine"]) if record.get("quarantine") else None
    if report is not None and report.is_file():
        for line in report.read_text(encoding="utf-8").splitlines()[:20]:
            for problem in json.loads(line)["problems"]:
                print(f"  {problem}", file=sys.stderr)
    return 0


def add_stats(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("stats", help="dataset statistics: tables (CSV) and figures (PNG, SVG) with provenance")
    parser.add_argument("path", type=Path, nargs="?", default=None,
                        help="a dataset in the release format (.json/.jsonl file or folder; default: the profile's)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the profile's results/stats)")
    parser.add_argument("--profile", choices=config.PROFILE_NAMES, default=None)
    parser.add_argument("--lenient", action="store_true", help="skip (and quarantine) bad records instead of stopping")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    from .data.io import DatasetError
    from .statistics.pipeline import run_stats as compute_and_write

    try:
        stats, written = compute_and_write(args.path, args.out, profile=args.profile, lenient=args.lenient,
                                           figures=not args.no_figures)
    except DatasetError as err:
        print(err, file=sys.stderr)
        return 1
    overview = stats.overview
    print(f"{overview['instances']:,} instances, {overview['topics']} topics, "
          f"{overview['tasks_with_instances']} tasks with instances (data {stats.checksum[:12]})")
    print(f"wrote {len(written)} files (each with a .provenance.json beside it) to {written[0].parent}")
    if stats.rejection_summary:
        print(stats.rejection_summary, file=sys.stderr)
    return 0


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="score a model on the 9 tasks, per topic: Acc@1 (ACC), Hits@k, MRR, 95%% CIs, chance")
    parser.add_argument("--model", default=None, help="m3el-mini-dual, m3el-tiny-random or an open_clip name (default: the profile's)")
    parser.add_argument("--pretrained", default=None, help="open_clip pretrained tag, e.g. openai (default: the profile's for its model)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a fine-tuned state_dict file to load into the model")
    parser.add_argument("--data", default=None, help="dataset folder/file or name under the data folder (default: the profile's)")
    parser.add_argument("--split", default=None, help="train, val, test or all (default: test when present, else all)")
    parser.add_argument("--full-kb", action="store_true", help="also rank against every entity of the dataset")
    parser.add_argument("--json", action="store_true", help="print one JSON object with per-task and per-topic metrics")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda or auto (default: the profile's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-save", action="store_true", help="do not write results under the results folder")
    parser.add_argument("--profile", choices=config.PROFILE_NAMES, default=None)
    parser.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.metrics import format_result
    from .evaluation.pipeline import run_model_evaluation
    from .data.io import DatasetError
    from .models.loading import ModelUnavailable

    profile = config.get_profile(args.profile)
    model, pretrained = config.model_choice(profile, args.model, args.pretrained)
    device = config.resolve_device(args.device, profile)
    try:
        result, paths = run_model_evaluation(
            model, args.data, pretrained=pretrained, checkpoint=args.checkpoint, split=args.split, full_kb=args.full_kb,
            n_bootstrap=args.bootstrap, seed=args.seed, device=device, batch_size=args.batch_size,
            profile=profile.name, save=not args.no_save,
        )
    except (DatasetError, ModelUnavailable, ValueError) as err:
        print(err, file=sys.stderr)
        return 1
    print(json.dumps(result.to_json(), ensure_ascii=False) if args.json else format_result(result))
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def add_build_dataset(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("build-dataset", help="build a dataset with the construction pipeline (offline snapshot or live Wikimedia)")
    parser.add_argument("--source", choices=("snapshot", "wikimedia"), default="snapshot")
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced atomically when the build finishes)")
    parser.add_argument("--topics", nargs="+", default=None, help="topics to use (default: the source's first five)")
    parser.add_argument("--per-topic", type=int, default=None,
                        help="entities per topic (default: all; for the snapshot, M³EL-mini's pictured or same-name entities)")
    parser.add_argument("--candidates", type=int, default=None, help="negatives per instance (default 3, as in the release)")
    parser.add_argument("--seed", type=int, default=None, help="seed for candidate order, augmentation and splits (default 0)")
    parser.add_argument("--cache", type=Path, default=None, help="HTTP cache folder of the live source (default: M3EL_HOME/cache/http)")
    parser.set_defaults(func=run_build_dataset)


def run_build_dataset(args: argparse.Namespace) -> int:
    import time

    from .construction.build import build_dataset
    from .construction.http import HttpError
    from .fsutil import Busy

    if args.source == "snapshot":
        from .construction.snapshot import SnapshotSource

        source = SnapshotSource()
    else:
        from .construction.wikimedia import WikimediaSource

        source = WikimediaSource(cache_dir=args.cache or config.cache_dir() / "http")
    # With the snapshot and no overrides this is exactly M³EL-mini (same parameters, same checksum).
    params: dict = {"candidates": 3, "seed": 0}
    if args.source == "snapshot":
        from .construction.sample import SAMPLE_PARAMETERS

        params = dict(SAMPLE_PARAMETERS)
    overrides = {"topics": args.topics, "per_topic": args.per_topic, "candidates": args.candidates, "seed": args.seed}
    params.update({key: value for key, value in overrides.items() if value is not None})
    started = time.perf_counter()
    try:
        manifest = build_dataset(source, args.out, progress=True, **params)
    except (ValueError, HttpError, Busy) as err:  # bad parameters or --out, a build already running, a bad live source
        print(err, file=sys.stderr)
        return 1
    counts = manifest["counts"]
    print(f"{counts['instances']:,} instances ({counts['by_split']}) in {time.perf_counter() - started:.1f} s")
    print("test instances per task: " + ", ".join(f"{t} {v['test']}" for t, v in counts["by_task_and_split"].items()))
    test = counts["by_split"]["test"]
    if test:
        kinds = counts["mention_image_kinds_by_split"]["test"]
        pictured = sum(n for kind, n in kinds.items() if kind != "none")
        print(f"test: {counts['with_same_name_negative_by_split']['test'] / test:.1%} of instances have a negative with the gold's "
              f"exact name; {kinds.get('distinct', 0) / pictured if pictured else 0:.1%} of mention pictures are another "
              f"picture of the entity (distinct), {kinds.get('augmented', 0)} augmented copies")
    print(f"manifest: {args.out / 'manifest.json'}  checksum {manifest['checksum']}")
    return 0


def _delegated(name: str, module: str, help_text: str) -> Callable[[argparse._SubParsersAction], None]:
    """A subcommand whose arguments and behaviour live in `module` (its add_arguments and run),
    imported only when the subcommand is used."""
    import importlib

    def add(sub: argparse._SubParsersAction) -> None:
        owner = importlib.import_module(module, __package__)
        parser = sub.add_parser(name, help=help_text)
        owner.add_arguments(parser)
        parser.set_defaults(func=owner.run)

    return add


add_train = _delegated("train", ".training.cli", "CLIP_ND modality-augmented fine-tuning (also under torchrun)")
add_book = _delegated("book", ".book.runner", "execute the notebooks that changed and build the book (what `make book` runs)")


def add_synth_release(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("synth-release", help="write a release-sized SYNTHETIC release (M3EL.zip) for scale and fault tests")
    parser.add_argument("--out", type=Path, required=True, help="folder to write M3EL.zip (and its provenance) into")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the release's 79,625 instances (default 1.0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run_synth_release)


def run_synth_release(args: argparse.Namespace) -> int:
    from .data.synth_release import write_synth_release

    try:
        counts = write_synth_release(args.out, scale=args.scale, seed=args.seed)
    except (ValueError, OSError) as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{counts['instances']:,} synthetic instances, {counts['picture_files']:,} pictures, "
          f"{counts['archive_bytes'] / 2**20:,.0f} MiB in {counts['seconds']} s: {counts['path']}")
    return 0


def add_pretrain(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("pretrain", help="the sample's miniature CLIP: LiT-style image-text pretraining on the committed corpus")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: where the sample profile's model looks)")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: data/pretrain_corpus)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N pairs (quick runs, tests)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--warmup-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cache", action="store_true", help="recompute the locked towers' features")
    parser.set_defaults(func=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> int:
    from .models.pretrain import PretrainConfig, pretrain
    from .models.pretrain_corpus import CorpusError

    changes = {"limit": args.limit, "seed": args.seed, "cache_features": not args.no_cache}
    if args.corpus is not None:
        changes["corpus"] = str(args.corpus)
    for name in ("epochs", "batch_size", "warmup_steps"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    try:
        result = pretrain(args.out, PretrainConfig(**changes))
    except (CorpusError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = result.summary
    final = summary["final"]
    print(f"pretrained on {summary['train_pairs']} pairs ({summary['heldout_pairs']} held out) in {summary['seconds']['total']:.0f} s "
          f"(CPU {summary['cpu_seconds']:.0f} s); held-out R@1 picture->caption {final.get('heldout_i2t_r1', float('nan')):.3f}, "
          f"caption->picture {final.get('heldout_t2i_r1', float('nan')):.3f}")
    print(f"weights: {result.weights_path}\ncorpus:  {result.out_dir / 'corpus.jsonl'}")
    return 0


def add_export(sub: argparse._SubParsersAction) -> None:
    from .data.export import DEFAULT_SHARD_SIZE, FORMATS

    parser = sub.add_parser("export", help="write a dataset as WebDataset shards, Parquet or a Hugging Face dataset, with a dataset card")
    parser.add_argument("--format", choices=FORMATS, required=True, dest="export_format")
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced atomically; only an earlier export is replaced)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--dataset", default=None, help="a dataset path or name (default: the profile's dataset)")
    which.add_argument("--profile", choices=config.PROFILE_NAMES, default=None)
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE,
                        help=f"instances per WebDataset shard or Parquet file (default {DEFAULT_SHARD_SIZE})")
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from .data.export import export_dataset
    from .data.datasets import resolve_dataset
    from .data.io import DatasetError

    try:
        result = export_dataset(resolve_dataset(args.dataset, args.profile).path, args.out, args.export_format, args.shard_size)
    except (DatasetError, ValueError) as err:
        print(f"m3el export: {err}", file=sys.stderr)
        return 1
    for split, info in result.summary["splits"].items():
        print(f"{split}: {info['instances']:,} instances ({info['with_mention_picture']:,} with a mention picture) "
              f"in {len(info['files'])} file(s): {args.out / info['pattern']}")
    print(f"dataset card: {args.out / 'README.md'}")
    return 0


# Subcommands, in help order. Other modules' subcommands are added here as add_<name> functions.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_info, add_validate, add_fetch, add_register, add_stats, add_evaluate, add_build_dataset, add_pretrain, add_train,
    add_book, add_synth_release, add_export,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="m3el", description="The M³EL companion's command line.")
    parser.add_argument("--version", action="version", version=f"m3el_lib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


REPORT_LINE = ("m3el: this is a bug in the M³EL companion, not a problem with your input: please report it "
               "as an issue of the companion's repository, with the command you ran and the traceback above")


def expected_errors() -> tuple[type[BaseException], ...]:
    """Failures that are the input's or the environment's, each reported as one line."""
    from .data.release import ArchiveError
    from .fsutil import Busy
    from .data.io import DatasetError
    from .data.registry import ChecksumMismatch, DownloadUnavailable

    return (DatasetError, ArchiveError, Busy, ChecksumMismatch, DownloadUnavailable, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; an expected failure is one line and exit 1, a bug a traceback and exit 70."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"m3el {args.command}: interrupted; files already written are whole, nothing half-written was kept",
              file=sys.stderr)
        return 130
    except expected_errors() as err:
        print(f"m3el {args.command}: {one_line(err)}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - the last resort: show everything, and say where it goes
        import traceback

        traceback.print_exc()
        print(REPORT_LINE, file=sys.stderr)
        return 70


def one_line(err: BaseException) -> str:
    """An error as one line; an OSError names its file."""
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0] if isinstance(err, OSError) else text


if __name__ == "__main__":
    sys.exit(main())
