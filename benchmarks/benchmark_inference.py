# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Inference cost of Gen-SER over its speech encoder on CPU: 1, 8 and 32 clips of 2, 5 and 20 s.

For every batch, one timed call runs the feature extractor and then the whole model (encoder, pooling, condition,
bridge sampling, similarities); hooks on the encoder time the encoder's own forward within that call. The figures
are the median over `--runs` calls after a warm-up:

- `encoder`: the backbone alone, on exactly the input Gen-SER gives it;
- `Gen-SER`: the model's full forward; `ratio` = Gen-SER / encoder (target: at most 1.05 at the default step count);
- `clips/s`: clips per second through feature extraction plus the full forward.

With `--compare_padding`, the same batches also run with `trim_padding=False` (Whisper's 30 s padding encoded),
and the speed-up of trimming is printed. The head is freshly initialised: its cost does not depend on training.

    python -m benchmarks.benchmark_inference --encoder ../shared/models/whisper-tiny.en --compare_padding
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch
from transformers import AutoFeatureExtractor

from modeling_genser import GenSERForAudioClassification

EMOTIONS = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]


def clips(count: int, seconds: float, sampling_rate: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    time_axis = np.arange(int(seconds * sampling_rate)) / sampling_rate
    return [
        (0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * time_axis) + 0.01 * rng.standard_normal(time_axis.size))
        .astype(np.float32)
        for _ in range(count)
    ]


class EncoderTimer:
    """Sums the wall time of every encoder forward while attached (Whisper may run it once per clip length)."""

    def __init__(self, encoder):
        self.total = 0.0
        encoder.register_forward_pre_hook(self._start)
        encoder.register_forward_hook(self._stop)

    def _start(self, module, args):
        self._started = time.perf_counter()

    def _stop(self, module, args, output):
        self.total += time.perf_counter() - self._started


def measure(model, feature_extractor, batch, runs: int, timer: EncoderTimer) -> dict[str, float]:
    def call():
        inputs = feature_extractor(
            batch, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt", return_attention_mask=True
        )
        model_start = time.perf_counter()
        model(**inputs)
        return time.perf_counter() - model_start

    totals, models, encoders = [], [], []
    with torch.inference_mode():
        call()  # warm-up
        for _ in range(runs):
            timer.total = 0.0
            start = time.perf_counter()
            models.append(call())
            totals.append(time.perf_counter() - start)
            encoders.append(timer.total)
    encoder, full = statistics.median(encoders), statistics.median(models)
    ratios = [model_time / encoder_time for model_time, encoder_time in zip(models, encoders)]
    return {
        "encoder": encoder,
        "genser": full,
        "ratio": statistics.median(ratios),
        "clips_per_s": len(batch) / statistics.median(totals),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", required=True, help="Pretrained speech encoder (Hub id or directory).")
    parser.add_argument("--batch_sizes", default="1,8,32")
    parser.add_argument("--durations", default="2,5,20", help="Clip durations in seconds.")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--num_inference_steps", type=int, default=None, help="Default: the config's.")
    parser.add_argument("--compare_padding", action="store_true", help="Also time trim_padding=False.")
    args = parser.parse_args()

    feature_extractor = AutoFeatureExtractor.from_pretrained(args.encoder)
    model = GenSERForAudioClassification.from_encoder(args.encoder, dict(enumerate(EMOTIONS))).eval()
    if args.num_inference_steps is not None:
        model.config.num_inference_steps = args.num_inference_steps
    timer = EncoderTimer(model.encoder)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; encoder {args.encoder}; "
        f"{model.config.num_inference_steps} sampling step(s); median of {args.runs} runs"
    )
    header = "| clips | seconds | encoder s | Gen-SER s | ratio | clips/s |"
    if args.compare_padding:
        header += " clips/s untrimmed | trim speed-up |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for seconds in [float(value) for value in args.durations.split(",")]:
        for count in [int(value) for value in args.batch_sizes.split(",")]:
            batch = clips(count, seconds, feature_extractor.sampling_rate)
            model.config.trim_padding = True
            result = measure(model, feature_extractor, batch, args.runs, timer)
            row = (
                f"| {count} | {seconds:g} | {result['encoder']:.4f} | {result['genser']:.4f} | "
                f"{result['ratio']:.3f} | {result['clips_per_s']:.1f} |"
            )
            if args.compare_padding:
                model.config.trim_padding = False
                padded = measure(model, feature_extractor, batch, args.runs, timer)
                row += f" {padded['clips_per_s']:.1f} | {result['clips_per_s'] / padded['clips_per_s']:.1f}x |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
