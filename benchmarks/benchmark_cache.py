# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Per-epoch training time of `run_genser` with the feature cache versus re-encoding every clip, as a ratio.

Both runs are `training/run_genser.py` with the frozen encoder, the same data, split, head and batches; one passes
`--use_feature_cache false`, so every epoch decodes each clip and runs the encoder before the head's step, while
the other trains the head on the cached pooled features (encoded once before training, which is not part of any
epoch). Each run is the CLI in its own process; its Trainer's `train_runtime` (`train_results.json`) divided by its
epochs is the run's seconds per epoch, and the figures are medians over `--repeats` runs of each.

    python -m benchmarks.benchmark_cache          # EmoDB and whisper-tiny.en (../shared, else the Hub)
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


def seconds_per_epoch(args, use_feature_cache: bool, repeat: int) -> float:
    output_dir = Path(args.output_dir) / f"{'cached' if use_feature_cache else 're-encoding'}-{repeat}"
    argv = [
        "--dataset_name", args.dataset,
        "--encoder_name_or_path", args.encoder,
        "--use_feature_cache", str(use_feature_cache),
        "--output_dir", str(output_dir),
        "--num_train_epochs", str(args.epochs),
        "--per_device_train_batch_size", "32",
        "--learning_rate", "1e-3",
        "--eval_strategy", "no",
        "--save_strategy", "no",
        "--logging_strategy", "no",
        "--report_to", "none",
        "--disable_tqdm", "true",
        "--dataloader_pin_memory", "false",
        "--num_example_predictions", "0",
        "--config_overrides", "layer_aggregation=concat,condition_dropout=0.3,head_dropout=0.3",
    ]  # fmt: skip
    subprocess.run([sys.executable, "-m", "training.run_genser", *argv], check=True)
    return json.loads((output_dir / "train_results.json").read_text())["train_runtime"] / args.epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="emodb", help="Named corpus, audiofolder directory or Hub dataset id.")
    parser.add_argument("--encoder", default="whisper-tiny.en", help="Named encoder, directory or Hub id.")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each kind; the median is reported.")
    parser.add_argument("--output_dir", default="outputs/benchmark_cache")
    args = parser.parse_args()

    medians = {}
    for use_feature_cache, name in [(False, "re-encoding"), (True, "cached")]:
        seconds = [seconds_per_epoch(args, use_feature_cache, repeat) for repeat in range(args.repeats)]
        medians[name] = statistics.median(seconds)
        runs = ", ".join(f"{s:.3f}" for s in seconds)
        print(f"{name:>12} run_genser epoch: median {medians[name]:.3f} s over {len(seconds)} runs ({runs})")
    print(f"feature cache speed-up per epoch: {medians['re-encoding'] / medians['cached']:.0f}x (target >= 20x)")


if __name__ == "__main__":
    main()
