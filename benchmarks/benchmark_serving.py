# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""One loaded pipeline served from several threads, as a web server or a Gradio Space with concurrency does.

Classifies `--num_clips` EmoDB clips (every 13th, so of many lengths) one after the other (every task of a
multi-task model, `return_tasks=True`), then maps the same calls over a pool of `--threads` threads, `--rounds`
times. Prints how many threaded calls raised, how many differ from their sequential result, and the wall time of a
threaded round over the sequential one (median over rounds).

    python -m benchmarks.benchmark_serving --model outputs/gen-ser
"""

import argparse
import csv
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from transformers import pipeline

from pipelines import GenSERAudioClassificationPipeline
from pipelines.audio_input import load_audio

EMODB = Path(__file__).resolve().parents[2] / "shared" / "data" / "emodb"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="outputs/gen-ser", help="A saved Gen-SER model (make main writes this one).")
    parser.add_argument("--corpus", default=str(EMODB), help="An audiofolder with metadata.csv (file_name column).")
    parser.add_argument("--num_clips", type=int, default=40)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    corpus = Path(args.corpus)
    if not (corpus / "metadata.csv").is_file():
        raise SystemExit(f"--corpus {corpus} has no metadata.csv; pass an audiofolder (../shared/data/emodb).")

    with open(corpus / "metadata.csv", newline="") as handle:
        names = [row["file_name"] for row in csv.DictReader(handle)][::13][: args.num_clips]
    classifier = pipeline(
        "audio-classification", model=args.model, device="cpu", pipeline_class=GenSERAudioClassificationPipeline
    )
    rate = classifier.feature_extractor.sampling_rate
    clips = [load_audio(str(corpus / name), rate) for name in names]
    lengths = sorted(len(clip) / rate for clip in clips)
    print(f"model {args.model}; {len(clips)} clips of {lengths[0]:.1f} to {lengths[-1]:.1f} s; {args.threads} threads")

    tasks = {"return_tasks": True} if classifier.model.config.label_sets else {}

    def classify(clip):
        try:
            return classifier(clip, top_k=None, **tasks)
        except Exception as error:  # noqa: BLE001  (counted and reported: that is what is measured)
            return error

    started = time.perf_counter()
    expected = [classify(clip) for clip in clips]
    sequential = time.perf_counter() - started
    raised, differed, ratios, errors = 0, 0, [], {}
    for _ in range(args.rounds):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            results = list(pool.map(classify, clips))
        ratios.append((time.perf_counter() - started) / sequential)
        for result, reference in zip(results, expected):
            if isinstance(result, Exception):
                raised += 1
                errors.setdefault(type(result).__name__, []).append(str(result)[:120])
            elif result != reference:
                differed += 1
    calls = args.rounds * len(clips)
    print(f"{raised} of {calls} threaded calls raised; {differed} differed from the sequential result")
    print(f"threaded round / sequential round: {statistics.median(ratios):.2f} (median of {args.rounds})")
    for kind, messages in sorted(errors.items()):
        print(f"  {kind} x{len(messages)}, e.g. {messages[0]}")


if __name__ == "__main__":
    main()
