# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Throughput of the bulk annotator (`genser-annotate`) on this machine: with 1 and 2 processes, or plain against
`--adapt` on clips of given lengths.

Generates `--num_clips` synthetic clips (`training/synthetic_corpus.py`, about 2 s each) once, then annotates the
folder from scratch `--runs` times per process count, each run a fresh command (process start and model loading
included, as a user would run it): one process with every core, then `torchrun` with N processes of one core's
share each. Prints the median wall time, audio hours per hour and the speed-up over one process.

With `--clip_seconds 2,10`, the synthetic speech is instead joined and cut into clips of exactly those lengths
(`--audio_seconds` of audio for each length), and one process annotates each folder plain and with `--adapt`
(the model must have domain normalisation), alternately, `--runs` times: the median wall times and their ratio.

    python -m benchmarks.benchmark_annotator --model outputs/gen-ser
    python -m benchmarks.benchmark_annotator --model outputs/gen-ser --clip_seconds 2,10
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


def fixed_length_corpus(source: Path, folder: Path, seconds: float, audio_seconds: float) -> Path:
    """`folder` of clips of exactly `seconds`, cut from the clips of `source` joined end to end (repeated as needed),
    `audio_seconds` of audio in all."""
    import numpy as np

    from training.synthetic_corpus import SAMPLING_RATE, write_wav

    joined = []
    for path in sorted(source.glob("*.wav")):
        with wave.open(str(path)) as audio:
            samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype=np.int16)
            joined.append(samples.astype(np.float32) / 32768)
    joined = np.concatenate(joined)
    length, count = int(seconds * SAMPLING_RATE), int(audio_seconds // seconds)
    joined = np.tile(joined, -(-length * count // len(joined)))
    folder.mkdir(parents=True)
    for clip in range(count):
        write_wav(folder / f"clip{clip:05d}.wav", joined[clip * length : (clip + 1) * length])
    return folder


def annotate_seconds(
    model: str, folder: Path, output_dir: Path, processes: int, threads: int, batch_size: int, adapt: bool = False
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
    command += ["--batch_size", str(batch_size), *(["--adapt", "true"] if adapt else [])]
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
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
    parser.add_argument("--clip_seconds", default=None, help="Compare plain and --adapt on clips of these lengths.")
    parser.add_argument("--audio_seconds", type=float, default=2000.0, help="Audio per clip length (--clip_seconds).")
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
        if args.clip_seconds:
            compare_adapt(args, folder, work)
            return
        hours = corpus_hours(folder)
        cores = os.cpu_count()
        print(
            f"machine: {platform.processor() or platform.machine()}, {cores} CPU cores; model {args.model}; "
            f"{args.num_clips} clips, {hours * 3600:.0f} s of audio; batch size {args.batch_size}; "
            f"median of {args.runs} runs"
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
                f"| {processes} | {threads} | {median:.1f} ({runs}) | {hours * 3600 / median:.0f} | "
                f"{baseline / median:.2f}x |",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare_adapt(args, source: Path, work: Path) -> None:
    """One process, plain against `--adapt`, on clips of each of `args.clip_seconds`."""
    print(
        f"model {args.model}; {os.cpu_count()} CPU cores, one process; batch size {args.batch_size}; "
        f"median of {args.runs} runs"
    )
    print("| clips | audio s | plain wall s (runs) | plain audio h/h | --adapt wall s (runs) | --adapt / plain |")
    print("|---|---|---|---|---|---|")
    for seconds in [float(value) for value in args.clip_seconds.split(",")]:
        folder = fixed_length_corpus(source, work / f"clips-{seconds:g}s", seconds, args.audio_seconds)
        audio = corpus_hours(folder) * 3600
        times = {False: [], True: []}
        for _ in range(args.runs):  # alternately, so that a slow spell of the machine hits both
            for adapt in (False, True):
                seconds_taken = annotate_seconds(
                    args.model, folder, work / "out", 1, os.cpu_count(), args.batch_size, adapt
                )
                times[adapt].append(seconds_taken)
        plain, adapted = statistics.median(times[False]), statistics.median(times[True])
        runs = {adapt: ", ".join(f"{value:.0f}" for value in values) for adapt, values in times.items()}
        print(
            f"| {len(list(folder.glob('*.wav')))} x {seconds:g} s | {audio:.0f} | {plain:.1f} ({runs[False]}) | "
            f"{audio / plain:.0f} | {adapted:.1f} ({runs[True]}) | {adapted / plain:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
