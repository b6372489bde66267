"""Benchmark: scoring all 9 tasks from the embedding cache vs encoding afresh, and encoding throughput.

Target (issue 5): evaluating the sample's test split (M³EL-mini, the sample dual encoder, all 9
tasks, candidate ranking) from the embedding cache is at least 10x faster than the same
evaluation with a cold cache, which has to encode every mention and candidate. It also prints the
encoding throughput (items/s) for each modality: T (texts, mention sentences and entity
"name: description" together), I (pictures, decoding and preprocessing included) and TI (a text
and a picture each, plus the fusion: 1 / (1/T + 1/I) before the fusion's own, negligible, time).

Issue 17's target: the pictures per second of that cold encoding, decoding included, at least 80%
of the image tower's bare forward pass on already-decoded pictures (the limit this CPU allows:
the same batch, threads, channels-last layout, `inference_mode`); texts likewise against the text
tower's bare forward pass on already-tokenised texts (printed, not a target).

It also prints the rate of the path the book's chapter 4 takes for pictures (the trunk's frozen
part with its batch norms folded, run once per picture into the shared prefix store) against
that same bare forward pass.

Both runs use `n_bootstrap=0` so that they time encoding and scoring, not the intervals; the
bootstrap time is printed on its own. The cold run gets a fresh, empty cache folder.

    python benchmarks/bench_evaluation.py [--synthetic N] [--model NAME] [--limit N]

`--synthetic N` uses an N-instance synthetic stand-in instead of the sample; `--limit N`
evaluates only the first N test instances (quicker, for a smoke run).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 10.0
ENCODING_TARGET = 0.8


def _dataset(args: argparse.Namespace, workdir: Path):
    from m3el_lib.data.io import Dataset, load_dataset

    if args.synthetic:
        from m3el_lib.data.synthetic import write_synthetic_dataset

        dataset = load_dataset(write_synthetic_dataset(workdir / "synthetic", n=args.synthetic, image_every=2))
        label = f"synthetic stand-in ({args.synthetic} instances)"
    else:
        from m3el_lib.data.datasets import open_dataset

        dataset = open_dataset(profile="sample")
        label = "M³EL-mini (the sample)"
    if args.limit:
        test = dataset.split("test")[: args.limit]
        dataset = Dataset(instances=test, root=dataset.root, files=dataset.files, checksum=dataset.checksum + f"-first{args.limit}")
        label += f", first {args.limit} test instances"
    return dataset, label


def bare_forward_rates(lm, dataset, items: int = 256) -> dict[str, float]:
    """Items/s of each tower's forward pass alone, on inputs decoded/tokenised beforehand."""
    import torch

    from m3el_lib.models.encoders import DEFAULT_BATCH_SIZE, entity_text, load_image, picture_path
    from m3el_lib.models.loading import channels_last, is_convolutional

    instances = dataset.split("test")
    texts = [entity_text(c) for inst in instances for c in inst.candidates][:items]
    files = [picture_path(dataset, c.image) for inst in instances for c in inst.candidates if c.image]
    pictures = [p for p in (load_image(f) for f in files[: items * 2]) if p is not None][:items]
    pixels = torch.stack([lm.preprocess(p) for p in pictures])
    tokens = lm.tokenizer(texts)
    batches = range(0, items, DEFAULT_BATCH_SIZE)
    visual = lm.model.visual
    layout = channels_last(visual) if is_convolutional(visual) else __import__("contextlib").nullcontext()
    rates = {}
    with torch.inference_mode(), layout:
        pixels = pixels.contiguous(memory_format=torch.channels_last) if is_convolutional(visual) else pixels
        for name, run, count in (("I", lambda i: lm.model.encode_image(pixels[i : i + DEFAULT_BATCH_SIZE]), len(pixels)),
                                 ("T", lambda i: lm.model.encode_text(tokens[i : i + DEFAULT_BATCH_SIZE]), len(texts))):
            run(0)  # warm-up
            start = time.perf_counter()
            for i in batches:
                run(i)
            rates[name] = count / (time.perf_counter() - start)
    return rates


def stored_prefix_rate(dataset, items: int = 512) -> float:
    """Pictures/s, decoding included, of the path chapter 4 takes: the EfficientNet trunk's
    folded frozen part and its last stage (`EfficientNetEncoder` with a store kept in memory)."""
    from m3el_lib.evaluation.baselines import EfficientNetEncoder
    from m3el_lib.models.encoders import encode_images, picture_path

    files = sorted({picture_path(dataset, c.image) for inst in dataset.split("test") for c in inst.candidates if c.image})[:items]
    encoder = EfficientNetEncoder(store=False)
    start = time.perf_counter()
    encode_images(encoder, files)
    return len(files) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=0, help="use a synthetic stand-in of N instances")
    parser.add_argument("--model", default="m3el-mini-dual")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench_evaluation_"))
    if args.synthetic:
        os.environ["M3EL_HOME"] = str(workdir / "home")
    from m3el_lib.models import embedding_cache
    from m3el_lib.evaluation.metrics import evaluate
    from m3el_lib.models.loading import load_model
    from m3el_lib.evaluation.scoring import model_scorer

    dataset, label = _dataset(args, workdir)
    lm = load_model(args.model)
    # a private, empty cache folder: the cold run really encodes everything
    embedding_cache.cache_root = lambda: workdir / "embeddings"

    cold = model_scorer(lm)
    start = time.perf_counter()
    cold_result = evaluate(cold, dataset, split="test", n_bootstrap=0)
    cold_seconds = time.perf_counter() - start

    warm = model_scorer(lm)
    start = time.perf_counter()
    warm_result = evaluate(warm, dataset, split="test", n_bootstrap=0)
    warm_seconds = time.perf_counter() - start
    assert warm.cache.encoded == {"T": 0, "I": 0}, "the warm run encoded something"
    assert [g.metrics for g in warm_result.groups] == [g.metrics for g in cold_result.groups]

    start = time.perf_counter()
    evaluate(warm, dataset, split="test", n_bootstrap=1000)
    bootstrap_seconds = time.perf_counter() - start - warm_seconds

    rates = {m: cold.cache.encoded[m] / cold.cache.seconds[m] for m in ("T", "I") if cold.cache.seconds[m] > 0}
    test_n = len(dataset.split("test"))
    print(f"data: {label}; test split {test_n} instances; model {lm.label}; {os.cpu_count()} CPUs, torch threads {__import__('torch').get_num_threads()}")
    for modality in ("T", "I"):
        if modality in rates:
            print(f"encoding throughput {modality:<2}: {rates[modality]:8.1f} items/s  ({cold.cache.encoded[modality]} items in {cold.cache.seconds[modality]:.1f} s)")
    if len(rates) == 2:
        print(f"encoding throughput TI: {1.0 / (1.0 / rates['T'] + 1.0 / rates['I']):8.1f} items/s  (one text + one picture each, then fused)")
    bare = bare_forward_rates(lm, dataset)
    encoding_ok = True
    for modality in ("I", "T"):
        if modality in rates:
            share = rates[modality] / bare[modality]
            target = f" (target >= {ENCODING_TARGET:.0%}): {'met' if share >= ENCODING_TARGET else 'MISSED'}" if modality == "I" else ""
            encoding_ok = encoding_ok and (share >= ENCODING_TARGET or modality == "T")
            print(f"bare forward {modality:<2}: {bare[modality]:8.1f} items/s; the project's encoding reaches {share:.0%} of it{target}")
    if "I" in bare and args.model == "m3el-mini-dual":
        stored_rate = stored_prefix_rate(dataset)
        print(f"the book's picture path (frozen trunk with folded batch norms, prefix stored once, decoding included): "
              f"{stored_rate:8.1f} pictures/s = {stored_rate / bare['I']:.0%} of the plain tower's bare forward")
    ratio = cold_seconds / warm_seconds
    print(f"evaluate, cold cache (encode afresh): {cold_seconds:8.2f} s")
    print(f"evaluate, from the cache            : {warm_seconds:8.2f} s   ({len(warm_result.groups)} task x topic groups)")
    print(f"bootstrap intervals (1000 resamples): {bootstrap_seconds:8.2f} s extra")
    print(f"speed-up from the cache: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x): {'met' if ratio >= TARGET_RATIO else 'MISSED'}")
    return 0 if ratio >= TARGET_RATIO and encoding_ok else 1


if __name__ == "__main__":
    sys.exit(main())
