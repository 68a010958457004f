# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""`genser-annotate` killed (SIGKILL) at random moments, then resumed, ends with exactly an uninterrupted run's rows.

    python -m benchmarks.check_annotator_resume --model outputs/gen-ser --adapt --adapt_by folder
    python -m benchmarks.check_annotator_resume --model outputs/gen-ser --input dataset --adapt
    python -m benchmarks.check_annotator_resume --model outputs/gen-ser --input manifest --adapt --adapt_by speaker

Copies `--clips_per_corpus` clips of each of `--corpora` (../shared/data) into a folder per corpus, annotates them
(`--input`: as a folder, as a CSV manifest of their paths and speakers, or as a `datasets` audiofolder with their
speakers, streamed) once without interruption, then starts the same command again and again in a second output
folder, killing each start after a random delay (its start-up, then up to twice an even share of the uninterrupted
run's work), until a start finishes on its own. Prints each kill's moment and where the run stood then, and, per table,
whether it equals the uninterrupted run's row for row.
"""

import argparse
import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as parquet

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]


def rows(output_dir: Path, table: str) -> list[dict]:
    """Every row of one table, in input (and window) order."""
    paths = sorted((output_dir / table).glob("*.parquet"))
    found = [row for path in paths for row in parquet.read_table(path).to_pylist()]
    return sorted(found, key=lambda row: (row["index"], row.get("start", 0.0)))


def progress(output_dir: Path) -> str:
    """Where a run stands: its shards' moments (adaptation pass) and finished shards."""
    moments = len(list((output_dir / "adaptation").glob("shard-*.safetensors")))
    finished = len(list((output_dir / "progress").glob("shard-*.json")))
    return f"{moments} shards' moments, {finished} finished shards"


def copy_clips(corpora: list[str], clips_per_corpus: int, folder: Path) -> dict[str, str]:
    """Copies `clips_per_corpus` clips of each of `corpora` (every 7th of its audio files) into `folder`/corpus;
    returns each copied clip's speaker (`corpus/speaker`, from its corpus's metadata) by its path under `folder`: a
    column to adapt by (--adapt_by speaker)."""
    speakers = {}
    for corpus in corpora:
        clips = sorted((SHARED_DATA / corpus).rglob("*.*"))
        clips = [path for path in clips if path.suffix in (".wav", ".opus")][:: 7][:clips_per_corpus]
        with open(SHARED_DATA / corpus / "metadata.csv", newline="") as handle:
            speaker_of = {row["file_name"]: f"{corpus}/{row['speaker']}" for row in csv.DictReader(handle)}
        (folder / corpus).mkdir(parents=True)
        for path in clips:
            shutil.copy(path, folder / corpus / path.name)
            speakers[f"{corpus}/{path.name}"] = speaker_of[path.relative_to(SHARED_DATA / corpus).as_posix()]
    return speakers


def annotator_source(kind: str, folder: Path, speakers: dict[str, str], work: Path) -> list[str]:
    """The `genser-annotate` options that read the clips in `folder` as `kind` (`--input`), with what that needs
    written: the audiofolder's metadata for a dataset, the CSV manifest of paths and speakers under `work`."""
    source = {"folder": ["--folder", str(folder)], "dataset": ["--dataset", str(folder)]}
    if kind == "dataset":  # the audiofolder's metadata gives the streamed dataset its speaker column
        metadata = "file_name,speaker\n" + "".join(f"{name},{speaker}\n" for name, speaker in speakers.items())
        (folder / "metadata.csv").write_text(metadata)
    manifest = work / "manifest.csv"
    rows_text = "".join(f"{folder / name},{speaker}\n" for name, speaker in sorted(speakers.items()))
    manifest.write_text("path,speaker\n" + rows_text)
    source["manifest"] = ["--manifest", str(manifest)]
    return source[kind]


def uninterrupted_run(command: list[str], output_dir: Path, environment: dict) -> tuple[float, float]:
    """Runs `command` to its end; returns its wall time and its start-up time (until its first shard's moments or
    tables are written, else its whole time)."""
    startup = None
    started = time.perf_counter()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    process = subprocess.Popen(command, env=environment, **quiet)
    while process.poll() is None:
        if startup is None and any(output_dir.glob("*/shard-*")):
            startup = time.perf_counter() - started
        time.sleep(0.05)
    whole = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"the uninterrupted run failed (exit {process.returncode}); run it by hand to see why")
    return whole, startup or whole


def killed_and_resumed(
    command: list[str], output_dir: Path, log: Path, environment: dict, rng, kills: int, whole: float, startup: float
) -> None:
    """Starts `command` again and again, killing each start after `startup` plus a random delay of up to twice an
    even share of the uninterrupted run's work (`whole - startup`), until a start finishes on its own (the
    `kills + 1`-th is never killed); prints each start's fate and where the run stood."""
    for kill in range(kills + 1):
        with open(log, "w") as handle:  # a file, not a pipe: an unread pipe would stall the run once full
            process = subprocess.Popen(command, env=environment, stdout=handle, stderr=subprocess.STDOUT)
        delay = startup + rng.uniform(0, 2 * (whole - startup) / kills)
        try:
            process.wait(timeout=None if kill == kills else delay)
            print(f"start {kill + 1} finished on its own: {progress(output_dir)}")
            break
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            print(f"start {kill + 1} killed after {delay:.1f} s: {progress(output_dir)}")
    if process.returncode:
        raise SystemExit(f"the last start failed:\n{log.read_text()[-3000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="outputs/gen-ser")
    parser.add_argument("--corpora", default="emodb,casia")
    parser.add_argument("--clips_per_corpus", type=int, default=60)
    parser.add_argument("--kills", type=int, default=8, help="Kill at most this many starts, then let one finish.")
    parser.add_argument("--input", choices=("folder", "manifest", "dataset"), default="folder")
    parser.add_argument("--seed", type=int, default=0)
    args, annotator_options = parser.parse_known_args()  # the rest goes to genser-annotate (--adapt, --shard_size...)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="annotator-resume-"))
    folder = work / "recordings"
    speakers = copy_clips(args.corpora.split(","), args.clips_per_corpus, folder)
    source = annotator_source(args.input, folder, speakers, work)

    def command(output_dir: Path) -> list[str]:
        return [sys.executable, "-m", "pipelines.bulk_annotator", "--model", args.model, *source,
                "--output_dir", str(output_dir), "--shard_size", "8", *annotator_options]  # fmt: skip

    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    whole, startup = uninterrupted_run(command(work / "uninterrupted"), work / "uninterrupted", environment)
    clips = len(speakers)
    print(f"{clips} clips as a {args.input}; uninterrupted run {whole:.1f} s ({startup:.1f} s to its first shard)")
    print(f"genser-annotate options: {annotator_options}")
    resumed = work / "resumed"
    killed_and_resumed(command(resumed), resumed, work / "resumed.log", environment, rng, args.kills, whole, startup)
    for table in ("windows", "files", "errors"):
        same = rows(resumed, table) == rows(work / "uninterrupted", table)
        verdict = "equal to" if same else "DIFFERENT from"
        print(f"{table}: {len(rows(resumed, table))} rows, {verdict} the uninterrupted run's")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
