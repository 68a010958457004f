# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Throughput of the bulk annotator (`genser-annotate`) with 1 and 2 processes on this machine.

Generates `--num_clips` synthetic clips (`training/synthetic_corpus.py`, about 2 s each) once, then annotates the
folder from scratch `--runs` times per process count, each run a fresh command (process start and model loading
included, as a user would run it): one process with every core, then `torchrun` with N processes of one core's
share each. Prints the median wall time, audio hours per hour and the speed-up over one process.

    python -m benchmarks.benchmark_annotator --model outputs/gen-ser
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

from training.synthetic_corpus import EMOTIONS, generate_corpus

REPO = Path(__file__).resolve().parents[1]


def corpus_hours(folder: Path) -> float:
    seconds = 0.0
    for path in folder.glob("*.wav"):
        with wave.open(str(path)) as audio:
            seconds += audio.getnframes() / audio.getframerate()
    return seconds / 3600


def annotate_seconds(
    model: str, folder: Path, output_dir: Path, processes: int, threads: int, batch_size: int
) -> float:
    """Wall time of one complete annotation of `folder` from an empty `output_dir`."""
    shutil.rmtree(output_dir, ignore_errors=True)
    launcher = [sys.executable, "-m", "pipelines.bulk_annotator"]
    if processes > 1:
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(processes),
            "-m",
            "pipelines.bulk_annotator",
        ]
    command = [
        *launcher,
        "--model",
        model,
        "--folder",
        str(folder),
        "--extensions",
        "wav",
        "--output_dir",
        str(output_dir),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    completed = subprocess.run([*command, "--batch_size", str(batch_size)], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="outputs/gen-ser", help="A saved Gen-SER model (make main writes this one).")
    parser.add_argument("--num_clips", type=int, default=2000)
    parser.add_argument("--processes", default="1,2", help="Process counts to compare.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=8)
    args = parser.parse_args()
    if not Path(args.model).is_dir():
        raise SystemExit(f"--model {args.model} is not a saved model directory; run `make main` or pass one.")

    work = Path(tempfile.mkdtemp(prefix="benchmark_annotator_"))
    try:
        num_sentences = 10
        speakers = -(-args.num_clips // (num_sentences * len(EMOTIONS)))
        folder = generate_corpus(work / "clips", num_speakers=speakers, num_sentences=num_sentences)
        for extra in sorted(folder.glob("*.wav"))[args.num_clips :]:
            extra.unlink()
        hours = corpus_hours(folder)
        cores = os.cpu_count()
        print(
            f"machine: {platform.processor() or platform.machine()}, {cores} CPU cores; model {args.model}; "
            f"{args.num_clips} clips, {hours * 3600:.0f} s of audio; batch size {args.batch_size}; median of {args.runs} runs"
        )
        print("| processes | threads each | wall s (runs) | audio h/h | speed-up |")
        print("|---|---|---|---|---|")
        baseline = None
        for processes in [int(value) for value in args.processes.split(",")]:
            threads = max(1, cores // processes)
            times = [
                annotate_seconds(args.model, folder, work / "out", processes, threads, args.batch_size)
                for _ in range(args.runs)
            ]
            median = statistics.median(times)
            baseline = baseline or median
            runs = ", ".join(f"{value:.0f}" for value in times)
            print(
                f"| {processes} | {threads} | {median:.1f} ({runs}) | {hours * 3600 / median:.0f} | {baseline / median:.2f}x |",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
