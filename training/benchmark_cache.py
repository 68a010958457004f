# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Per-epoch training time of `run_genser` with the feature cache versus re-encoding every clip, as a ratio.

Both runs are `training/run_genser.py` with the frozen encoder, the same data, split, head and batches; one passes
`--use_feature_cache false`, so every epoch decodes each clip and runs the encoder before the head's step, while
the other trains the head on the cached pooled features (encoded once before training, which is not part of any
epoch). A Trainer callback times every epoch; the figures are medians over the epochs of each run.

    python -m training.benchmark_cache          # EmoDB and whisper-tiny.en (../shared, else the Hub)
"""

import argparse
import statistics
import time

from transformers import TrainerCallback

from training.run_genser import main as run_genser


class EpochTimer(TrainerCallback):
    def __init__(self):
        self.seconds = []

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self.started)


def epoch_seconds(args, use_feature_cache: bool) -> list[float]:
    timer = EpochTimer()
    run_genser(
        [
            "--dataset_name", args.dataset,
            "--encoder_name_or_path", args.encoder,
            "--use_feature_cache", str(use_feature_cache),
            "--output_dir", f"{args.output_dir}/{'cached' if use_feature_cache else 're-encoding'}",
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
        ],
        callbacks=[timer],
    )
    return timer.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="emodb", help="Named corpus, audiofolder directory or Hub dataset id.")
    parser.add_argument("--encoder", default="whisper-tiny.en", help="Named encoder, directory or Hub id.")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--output_dir", default="outputs/benchmark_cache")
    args = parser.parse_args()

    medians = {}
    for use_feature_cache, name in [(False, "re-encoding"), (True, "cached")]:
        seconds = epoch_seconds(args, use_feature_cache)
        medians[name] = statistics.median(seconds)
        runs = ", ".join(f"{s:.3f}" for s in seconds)
        print(f"{name:>12} run_genser epoch: median {medians[name]:.3f} s of {len(seconds)} epochs ({runs})")
    print(f"feature cache speed-up per epoch: {medians['re-encoding'] / medians['cached']:.0f}x (target >= 20x)")


if __name__ == "__main__":
    main()
