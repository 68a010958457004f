# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""The frozen encoder's CPU throughput by way of encoding, and each faster candidate's distance to the reference.

Every candidate encodes the same clips of each shared corpus (decoded beforehand, so that decoding, which every
candidate shares, is timed once on its own), `--batch_size` at a time, in one process:

- `30s-each-alone`: the reference, unbatched: each clip's log-mel over Whisper's 30 s window, and each clip of a
  batch through the encoder alone at its own length (clips of different lengths never share an encoder call).
- `float`: the default: clips sorted by length, the batch's log-mel over its longest clip only
  (`pipelines.audio_input.speech_encoder_inputs`), one encoder call per batch with each shorter clip's padding
  masked (`whisper_hidden_states`).
- `float-1-thread`: `float` on one thread instead of the machine's cores.
- `int8`: `float` with the encoder's linear layers dynamically quantised to int8
  (`torch.ao.quantization.quantize_dynamic`).
- `bf16`: `float` under `torch.autocast("cpu", dtype=torch.bfloat16)` (CPUs with bfloat16 instructions).

Per corpus and candidate: clips/s and audio hours per hour (median over `--repeats` runs), the speed-up over
`30s-each-alone`; and against `30s-each-alone`'s features, the median cosine of the pooled features and the share of
clips on which the release model gives the same label (its head with a fixed seed, as the pipeline runs it).

    python -m benchmarks.benchmark_encoder --model outputs/gen-ser
"""

import argparse
import copy
import csv
import random
import statistics
import time
import warnings
from pathlib import Path

import torch
from transformers import AutoFeatureExtractor

from modeling_genser import GenSERForAudioClassification
from pipelines.audio_input import batches_by_length, decode_audio_file, encoder_autocast, speech_encoder_inputs

CORPORA = ["emodb", "cremad", "ravdess", "casia", "nemo", "ased", "baved"]
CANDIDATES = ["30s-each-alone", "float", "float-1-thread", "int8", "bf16"]
# The per-corpus table's header, its columns as wide as `main` prints their values.
HEADER = (
    f"{'corpus':<8} {'candidate':<15} {'clips/s':>8} {'audio h/h':>10} {'speed-up':>9} {'cosine':>8} "
    f"{'same label':>11}"
)


def sample_clips(folder: Path, count: int, seed: int) -> list[Path]:
    with open(folder / "metadata.csv", newline="") as file:
        names = [row["file_name"] for row in csv.DictReader(file)]
    return [folder / name for name in random.Random(seed).sample(names, min(count, len(names)))]


@torch.no_grad()
def encode(model, extractor, arrays: list, candidate: str, batch_size: int) -> torch.Tensor:
    """Pooled features of `arrays`, in their order, `(num_clips, num_layers, width)`."""
    pooled = [None] * len(arrays)
    if candidate == "30s-each-alone":
        for i, array in enumerate(arrays):
            inputs = speech_encoder_inputs(extractor, [array], whole_window=True)
            pooled[i] = model.pooled_layer_features(inputs[model.main_input_name], inputs["attention_mask"])[0]
        return torch.stack(pooled)
    for rows in batches_by_length(arrays, batch_size):
        inputs = speech_encoder_inputs(extractor, [arrays[i] for i in rows])
        with encoder_autocast("bfloat16" if candidate == "bf16" else "float32", "cpu"):
            features = model.pooled_layer_features(inputs[model.main_input_name], inputs["attention_mask"])
        for i, clip_features in zip(rows, features.float()):
            pooled[i] = clip_features
    return torch.stack(pooled)


@torch.no_grad()
def labels_of(model, pooled: torch.Tensor) -> torch.Tensor:
    """The release's first-task labels on `pooled` features, with the pipeline's sampling at a fixed seed."""
    generator = torch.Generator().manual_seed(0)
    return model(pooled_layer_features=pooled, generator=generator).logits.argmax(-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="outputs/gen-ser", help="The release model (its encoder and head).")
    parser.add_argument("--data_dir", default="../shared/data")
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--clips_per_corpus", type=int, default=150)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs of each candidate; the median is reported.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    candidates = args.candidates.split(",")
    if unknown := sorted(set(candidates) - set(CANDIDATES)):
        parser.error(f"unknown candidates {unknown}; choose from {CANDIDATES}")

    model = GenSERForAudioClassification.from_pretrained(args.model).eval()
    extractor = AutoFeatureExtractor.from_pretrained(args.model)
    with warnings.catch_warnings():  # torch.ao's deprecation notice: the module still runs in this torch
        warnings.simplefilter("ignore")
        int8 = copy.deepcopy(model)
        int8.encoder = torch.ao.quantization.quantize_dynamic(int8.encoder, {torch.nn.Linear}, dtype=torch.qint8)
    threads = torch.get_num_threads()
    print(f"{args.model}: {type(model.encoder).__name__}, {threads} threads, batches of {args.batch_size}")
    totals = {candidate: [0.0, 0.0] for candidate in candidates}  # seconds, audio seconds
    for corpus in args.corpora.split(","):
        paths = sample_clips(Path(args.data_dir) / corpus, args.clips_per_corpus, args.seed)
        started = time.perf_counter()
        arrays = [decode_audio_file(path, extractor.sampling_rate) for path in paths]
        decoding = time.perf_counter() - started
        audio_seconds = sum(len(array) for array in arrays) / extractor.sampling_rate
        print(f"\n{corpus}: {len(arrays)} clips, {audio_seconds / len(arrays):.2f} s on average; decoding alone "
              f"{len(arrays) / decoding:.0f} clips/s")
        print(HEADER)
        reference, reference_rate = None, None
        for candidate in candidates:
            runner = int8 if candidate == "int8" else model
            torch.set_num_threads(1 if candidate == "float-1-thread" else threads)
            encode(runner, extractor, arrays[: args.batch_size], candidate, args.batch_size)  # warm-up
            seconds = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                pooled = encode(runner, extractor, arrays, candidate, args.batch_size)
                seconds.append(time.perf_counter() - started)
            torch.set_num_threads(threads)
            median = statistics.median(seconds)
            totals[candidate][0] += median
            totals[candidate][1] += audio_seconds
            rate = len(arrays) / median
            if reference is None:
                reference, reference_rate, reference_labels = pooled, rate, labels_of(model, pooled)
            cosine = torch.nn.functional.cosine_similarity(pooled.flatten(1), reference.flatten(1)).median().item()
            agreement = (labels_of(model, pooled) == reference_labels).float().mean().item()
            print(f"{corpus:<8} {candidate:<15} {rate:8.1f} {audio_seconds / median:10.0f} "
                  f"{rate / reference_rate:8.2f}x {cosine:8.4f} {agreement:10.1%}")
    print("\nAll corpora (median seconds summed):")
    base = totals[candidates[0]][0]
    for candidate, (seconds, audio) in totals.items():
        print(f"  {candidate:<15} audio h/h {audio / seconds:6.0f}   speed-up {base / seconds:.2f}x")


if __name__ == "__main__":
    main()
