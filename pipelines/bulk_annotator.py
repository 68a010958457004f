# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""`genser-annotate`: labels a large audio collection with the audio-classification pipeline, into a Parquet dataset.

    genser-annotate --model org/gen-ser --folder recordings/ --output_dir labels/
    genser-annotate --model org/gen-ser --dataset org/calls --split test --output_dir labels/   # streamed
    torchrun --nproc_per_node 4 -m pipelines.bulk_annotator --model org/gen-ser --manifest calls.csv --output_dir labels
    accelerate launch --multi_gpu --num_processes 2 -m pipelines.bulk_annotator ...   # under accelerate (CPUs too)

Output (`load_dataset(output_dir, "windows")`, `"files"` or `"errors"` reads it back):

- `windows/shard-NNNNN.parquet`: one row per window (`--chunk_length_s`, `--stride_length_s`, as in the pipeline):
  `source`, `index`, `start`, `end` (seconds), the top `label` and its `score`, every label's score in `scores`, and
  with `--num_samples` > 1 the top label's `agreement` (the share of samples that voted for it); a multi-task model
  (e.g. emotions and arousal) writes its first task there and each further task in `<task>_label`, `<task>_score`
  and `<task>_scores` (`arousal_label`, ...);
- `files/shard-NNNNN.parquet`: one row per file, its windows averaged by duration, with `duration`, `num_windows`;
- `errors/shard-NNNNN.parquet` and, once every shard is done, `errors.csv`: each unreadable input and why.

`datasets` cannot load a table without rows, so once every shard is done the dataset card lists only the tables
that hold some (a run without unreadable inputs has no `"errors"` config; its `errors.csv` holds just the header).

Input items are numbered in input order and cut into shards of `--shard_size` consecutive items. Process `r` of `N`
(from torchrun or accelerate) takes shards `r, r + N, ...`: disjoint shares, on the process's GPU where there is
one. Within a shard, clips go through the pipeline shortest first, so a batch holds clips of similar length and
padding stays small.

Resume: a shard's tables are written under temporary names and renamed into place, then its marker
`progress/shard-NNNNN.json` (a digest of the shard's items and its row counts) is written last, the same way; a
shard is finished once its marker exists. A run started again in the same `--output_dir` skips finished shards and
writes the others whole, so a run killed at any moment and resumed ends with exactly the rows of an uninterrupted
one. It refuses, before writing anything, when a finished shard's items are no longer what the input gives there
(files added, removed or renamed: resuming would annotate some inputs twice and others never), and when the model's
content (config and weights, wherever it is loaded from) or an option that changes the rows differs from `run.json`.
A run that failed before finishing any shard leaves nothing to protect: the next command simply replaces `run.json`.
Streamed datasets are read as they come, so their finished shards are checked as the stream reaches them.
The shards, markers, moments and summary are read and written by `annotation_output.py`.

Adaptation (`--adapt`, models trained with domain normalisation): a first pass over the input computes the
collection's statistics (`GenSERAudioClassificationPipeline.collection_moments`; one set for the whole input, one
per folder with `--adapt_by folder`, e.g. a folder per speaker or recording setup, or one per value of a manifest's or
dataset's column, `--adapt_by speaker`), and every clip is then
classified with its collection's (`domain_statistics=`). The first pass is resumable like the second: each shard's
moments go to `adaptation/shard-NNNNN.safetensors` (with its items digest, the model's digest and the options that
shape them, all checked on resume), and the statistics are summed from all of them once every shard is there: the
whole input's shrunk towards the training pool's and each folder's (value's) towards the whole input's, by their
window counts (`config.statistics_prior_windows`); `adaptation/statistics.json` says what each got. A stream is read
once per pass.
The first pass also keeps what it encoded, each window's pooled encoder features
(`adaptation/features-NNNNN.safetensors`, written before the shard's moments), so that the second pass runs the head
alone: the audio is decoded and encoded once. They are removed once every shard is done, unless `--keep_features`.
"""

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import fields
from pathlib import Path

import torch
from transformers import HfArgumentParser, pipeline

from .annotation_arguments import AnnotationArguments
from .annotation_inputs import AnnotationInput, decode
from .annotation_output import (
    TABLES,
    adaptation_path,
    adaptation_statistics,
    check_finished_shard,
    has_finished_work,
    is_finished,
    items_digest,
    marker_path,
    read_encoded_windows,
    read_moments,
    remove_encoded_windows,
    shard_path,
    shards,
    summarise,
    temporary_path,
    write_dataset_card,
    write_encoded_windows,
    write_moments,
    write_whole,
)
from .audio_classification_genser import GenSERAudioClassificationPipeline

# Options that change the rows: a resumed run must use the same ones (the model is compared by content).
# The input is compared item by item (`items_digest`), not by the spelling of its path; the chunks by their length
# and hop (`AnnotationArguments.recorded`).
RUN_OPTIONS = (
    "dataset", "dataset_config", "split", "audio_column", "id_column", "path_column",
    "extensions", "segment_length_s", "segment_hop_s", "num_inference_steps", "seed", "num_samples", "shard_size",
    "adapt", "adapt_by", "encoder_precision",
)  # fmt: skip
# Of those, what shapes the adaptation pass's moments: each shard's moments carry them with the model's digest.
MOMENT_OPTIONS = ("segment_length_s", "segment_hop_s", "adapt_by", "encoder_precision")
# `run.json`'s layout. A record without a version (format 1) predates some options, `adapt` among them: an option a
# record lacks was not there to set, so its run used what is now that option's default.
RUN_FORMAT = 2


def domain_of(item: AnnotationInput, adapt_by: str) -> str:
    """The collection whose statistics `item` is classified with: the whole input (""), its file's folder, or its
    value of the column `adapt_by` names (`item.group`)."""
    if adapt_by == "collection":
        return ""
    if adapt_by == "folder":
        return os.path.dirname(item.audio if isinstance(item.audio, str) else item.source)
    return item.group


def without_private_keys(value):
    """A config dict without the keys that say where it was loaded from or by which version (`_name_or_path`...)."""
    if isinstance(value, dict):
        return {
            key: without_private_keys(item)
            for key, item in value.items()
            if not str(key).startswith("_") and key not in ("transformers_version", "custom_pipelines")
        }
    return value


def model_digest(classifier) -> str:
    """The identity of the pipeline's model by content: its config, feature extractor and every weight. A model
    replaced at the same path is told apart; the same model reached by another path (`./model`, `model`) is not."""
    digest = hashlib.sha256()
    for config in (classifier.model.config.to_dict(), classifier.feature_extractor.to_dict()):
        digest.update(json.dumps(without_private_keys(config), sort_keys=True, default=str).encode())
    for name, tensor in classifier.model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class ShardAnnotator:
    """Decodes a shard's items, runs them through the pipeline shortest first, and writes the shard's tables."""

    def __init__(self, classifier, args: AnnotationArguments):
        from datasets import Features, Value

        self.classifier, self.args = classifier, args
        self.sampling_rate = classifier.feature_extractor.sampling_rate
        self.tasks = classifier.model.config.tasks
        # Each task's column prefix: none for the first task (`label`, `score`, `scores`), its name for the others.
        self.prefixes = {task: f"{task}_" if index else "" for index, task in enumerate(self.tasks)}
        prediction = {}
        for task, labels in self.tasks.items():
            prefix = self.prefixes[task]
            prediction[f"{prefix}label"] = Value("string")
            prediction[f"{prefix}score"] = Value("float32")
            prediction[f"{prefix}scores"] = {label: Value("float32") for label in labels}
            if args.num_samples > 1 and not prefix:  # the pipeline's agreement is the first task's
                prediction["agreement"] = Value("float32")
        item = {"source": Value("string"), "index": Value("int64")}
        self.features = {
            "windows": Features({**item, "start": Value("float64"), "end": Value("float64"), **prediction}),
            "files": Features({**item, "duration": Value("float64"), "num_windows": Value("int32"), **prediction}),
            "errors": Features({**item, "error": Value("string")}),
        }

    def call_options(self) -> dict:
        """The pipeline options of every call: every label's score of every task, per window, with the run's window
        and sampling options."""
        tasks = {"return_tasks": True} if len(self.tasks) > 1 else {}
        top_k = max(len(labels) for labels in self.tasks.values())
        return {"top_k": top_k, "return_segments": True, **tasks, **self.args.pipeline_options()}

    def _prediction(self, scores: list[dict] | dict[str, list[dict]]) -> dict:
        """A row's prediction columns from the pipeline's scores (`{task: scores}` for a multi-task model)."""
        by_task = scores if isinstance(scores, dict) else {next(iter(self.tasks)): scores}
        prediction = {}
        for task, task_scores in by_task.items():
            prefix = self.prefixes[task]
            top = task_scores[0]  # the pipeline sorts by score
            prediction[f"{prefix}label"], prediction[f"{prefix}score"] = top["label"], top["score"]
            prediction[f"{prefix}scores"] = {s["label"]: s["score"] for s in task_scores}
            if self.args.num_samples > 1 and not prefix:
                prediction["agreement"] = top["agreement"]
        return prediction

    def encode(self, items: list[AnnotationInput]) -> dict[int, dict]:
        """The adaptation pass over a shard: every readable item's windows through the encoder
        (`GenSERAudioClassificationPipeline.encode_windows`), with its duration, by item index (the others become
        error rows in the second pass)."""
        readable = {}
        for item in items:
            if item.error is not None:
                continue
            try:
                readable[item.index] = decode(item.audio, self.sampling_rate)
            except (OSError, ValueError, TypeError):
                continue
        clips = [{"array": audio, "sampling_rate": self.sampling_rate} for audio in readable.values()]
        encoded = self.classifier.encode_windows(
            clips,
            batch_size=self.args.batch_size,
            encoder_precision=self.args.encoder_precision,
            **self.args.chunking(),
        )
        return {
            index: {**clip, "duration": audio.shape[0] / self.sampling_rate}
            for (index, audio), clip in zip(readable.items(), encoded)
        }

    def moments(self, items: list[AnnotationInput], encoded: dict[int, dict]) -> dict[str, tuple]:
        """Each domain's moments over the shard's `encoded` items."""
        clips = {}
        for item in items:
            if item.index in encoded:
                clips.setdefault(domain_of(item, self.args.adapt_by), []).append(encoded[item.index])
        return {domain: self.classifier.collection_moments(domain_clips) for domain, domain_clips in clips.items()}

    def annotate(
        self, items: list[AnnotationInput], statistics: dict | None = None, encoded: dict[int, dict] | None = None
    ) -> dict[str, list[dict]]:
        """The rows of every table for `items`, in input order; with `statistics` (`adaptation_statistics`) each clip
        is classified with its domain's, and an item of `encoded` (`encode`) by the head alone on its features."""
        rows = {table: [] for table in TABLES}
        inputs, results = [], []
        for item in items:
            if item.error is not None:
                rows["errors"].append({"source": item.source, "index": item.index, "error": item.error})
                continue
            if encoded is not None and item.index in encoded:
                inputs.append((item, encoded[item.index], encoded[item.index]["duration"]))
                continue
            try:
                audio = decode(item.audio, self.sampling_rate)
            except (OSError, ValueError, TypeError) as error:
                rows["errors"].append({"source": item.source, "index": item.index, "error": str(error)})
                continue
            clip = {"array": audio, "sampling_rate": self.sampling_rate}
            inputs.append((item, clip, audio.shape[0] / self.sampling_rate))
        inputs.sort(key=lambda triple: triple[2])
        domains = {}
        for triple in inputs:  # one pipeline call per domain, each shortest first
            domains.setdefault(domain_of(triple[0], self.args.adapt_by) if statistics else None, []).append(triple)
        for domain, triples in domains.items():
            options = self.call_options() | ({"domain_statistics": statistics[domain]} if statistics else {})
            clips = [clip for _, clip, _ in triples]
            results.extend(zip(triples, self.classifier(clips, batch_size=self.args.batch_size, **options)))
        for (item, _, duration), result in sorted(results, key=lambda pair: pair[0][0].index):
            key = {"source": item.source, "index": item.index}
            for segment in result["segments"]:
                rows["windows"].append(
                    {**key, "start": segment["start"], "end": segment["end"], **self._prediction(segment["scores"])}
                )
            rows["files"].append(
                {
                    **key,
                    "duration": duration,
                    "num_windows": len(result["segments"]),
                    **self._prediction(result["scores"]),
                }
            )
        return rows

    def write(self, output_dir: Path, shard: int, items: list[AnnotationInput], rows: dict[str, list[dict]]) -> None:
        """Writes the shard's tables, then its marker: a kill at any point leaves the shard unfinished, and the
        resumed run writes it again whole."""
        import pyarrow
        import pyarrow.parquet as parquet

        for table in TABLES:
            path = shard_path(output_dir, table, shard)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = temporary_path(path)
            # The features' schema carries the `datasets` metadata, so load_dataset reads the struct of scores back.
            schema = self.features[table].arrow_schema
            with parquet.ParquetWriter(temporary, schema) as writer:
                if rows[table]:  # no rows, no row group: datasets' Parquet reader fails on an empty one
                    writer.write_table(pyarrow.Table.from_pylist(rows[table], schema=schema))
            os.replace(temporary, path)
        marker = {"items": items_digest(items), "rows": {table: len(rows[table]) for table in TABLES}}
        marker_path(output_dir, shard).parent.mkdir(parents=True, exist_ok=True)
        write_whole(marker_path(output_dir, shard), json.dumps(marker))


def check_run_options(output_dir: Path, args: AnnotationArguments, model_sha256: str) -> None:
    """Records what shapes the rows (the options and the model's content) in `run.json`, or refuses to resume a run
    made otherwise. A run without finished shards or moments has nothing to protect: its record is replaced."""
    options = {**args.recorded(RUN_OPTIONS), "model_sha256": model_sha256}
    record = output_dir / "run.json"
    if record.exists():
        previous = json.loads(record.read_text())
        if previous.get("format", 1) > RUN_FORMAT:
            raise ValueError(
                f"{output_dir} holds a run of a newer genser-annotate (run.json format {previous['format']}, this one "
                f"writes {RUN_FORMAT}): resume it with that version, or pass another --output_dir."
            )
        defaults = {option.name: option.default for option in fields(AnnotationArguments)}
        previous = {name: previous.get(name, defaults.get(name)) for name in options}
        changed = {name: (previous[name], value) for name, value in options.items() if previous[name] != value}
        if not changed:
            return
        if has_finished_work(output_dir):
            changes = ", ".join(
                (
                    "the model's config or weights (model_sha256)"
                    if name == "model_sha256"
                    else f"{name}: {old!r} -> {new!r}"
                )
                for name, (old, new) in changed.items()
            )
            raise ValueError(
                f"{output_dir} holds a run made with another model or other options ({changes}); resume it with the "
                "same model and options, or pass another --output_dir."
            )
    output_dir.mkdir(parents=True, exist_ok=True)
    write_whole(record, json.dumps({"format": RUN_FORMAT, "model": args.model, **options}, indent=2))


class ProcessShare:
    """One process's share of a run over both passes: its shards of the input (shard `r` of every `N`), the new shards
    it may still start (`--max_shards`, both passes together), and what each pass did."""

    def __init__(self, args: AnnotationArguments, state, output_dir: Path, inputs: Iterable[AnnotationInput]):
        self.args, self.state, self.output_dir = args, state, output_dir
        self.inputs = inputs if isinstance(inputs, list) else None  # a stream is read again by each pass
        self.own_items = None  # a stream's length is unknown until it ends
        if self.inputs is not None:
            self.own_items = sum(self.is_own(item.index // args.shard_size) for item in self.inputs)
        self.num_shards = 0  # the input's, once a pass has read it to its end
        self.new_shards = {"adaptation": 0, "classification": 0}
        self.seconds = {"adaptation": 0.0, "classification": 0.0}
        self.audio_seconds = 0.0  # classified in this run

    def is_own(self, shard: int) -> bool:
        return shard % self.state.num_processes == self.state.process_index

    def shards(self, description: str) -> Iterator[tuple[int, list[AnnotationInput]]]:
        """This process's shards of the input (a stream opened anew: a first pass has read it to its end)."""
        from tqdm.auto import tqdm

        progress = tqdm(total=self.own_items, unit="file", position=self.state.process_index, desc=description)
        for shard, items in shards(self.args.inputs() if self.inputs is None else self.inputs, self.args.shard_size):
            self.num_shards = shard + 1
            if self.is_own(shard):
                yield shard, items
                progress.update(len(items))
                if self.audio_seconds:
                    hours = self.seconds["classification"] / 3600 or float("inf")
                    progress.set_postfix_str(f"{self.audio_seconds / 3600 / hours:.0f} audio h/h")
        progress.close()

    def may_start(self) -> bool:
        return self.args.max_shards is None or sum(self.new_shards.values()) < self.args.max_shards

    def adaptation_pass(self, annotator: "ShardAnnotator", shaped_by: dict) -> None:
        """Writes the moments of this process's shards that have none yet (and checks those that have)."""
        started = time.perf_counter()
        shape = tuple(annotator.classifier.model.conditioner.domain_statistics.shape[1:])
        for shard, items in self.shards("adaptation pass"):
            if adaptation_path(self.output_dir, shard).exists():
                check_finished_shard(self.output_dir, shard, items, read_moments(self.output_dir, shard, shaped_by)[0])
            elif self.may_start():
                encoded = annotator.encode(items)
                # The features first: the moments mark the shard as done.
                write_encoded_windows(self.output_dir, shard, items, encoded, shaped_by)
                write_moments(self.output_dir, shard, items, annotator.moments(items, encoded), shape, shaped_by)
                self.new_shards["adaptation"] += 1
        self.seconds["adaptation"] = time.perf_counter() - started

    def classification_pass(self, annotator: "ShardAnnotator", statistics: dict | None, shaped_by: dict | None) -> None:
        """Annotates and writes this process's unfinished shards (each clip with its domain's `statistics`, from the
        encoder features the adaptation pass kept where it did, `shaped_by` as it recorded them)."""
        started = time.perf_counter()
        for shard, items in self.shards(f"process {self.state.process_index}"):
            if is_finished(self.output_dir, shard):
                if self.inputs is None:  # a list's finished shards were checked before anything was written
                    check_finished_shard(self.output_dir, shard, items)
            elif self.may_start():
                encoded = None if shaped_by is None else read_encoded_windows(self.output_dir, shard, items, shaped_by)
                rows = annotator.annotate(items, statistics, encoded)
                annotator.write(self.output_dir, shard, items, rows)
                self.new_shards["classification"] += 1
                self.audio_seconds += sum(row["duration"] for row in rows["files"])
                self.seconds["classification"] = time.perf_counter() - started


def annotate(args: AnnotationArguments) -> dict:
    """Runs this process's share of the annotation and prints the closing summary; returns it (to every process)."""
    state = process_state()
    output_dir = Path(args.output_dir)
    classifier = pipeline(
        "audio-classification", model=args.model, device=state.device, pipeline_class=GenSERAudioClassificationPipeline
    )
    annotator = ShardAnnotator(classifier, args)
    # Nothing is written before the options, the model and the input are known to be usable: the pipeline checks
    # the options as every call of it would.
    classifier._sanitize_parameters(**annotator.call_options())
    inputs = args.inputs()
    model_sha256 = start_run(output_dir, args, classifier, inputs)
    share, started = ProcessShare(args, state, output_dir, inputs), time.perf_counter()
    statistics, shaped_by = None, None
    if args.adapt:  # the first pass: every shard's moments, then the statistics summed from all of them
        shaped_by = {"model_sha256": model_sha256, **args.recorded(MOMENT_OPTIONS)}
        share.adaptation_pass(annotator, shaped_by)
        state.wait_for_everyone()
        missing = [shard for shard in range(share.num_shards) if not adaptation_path(output_dir, shard).exists()]
        if missing:
            done = share.num_shards - len(missing)
            if state.is_main_process:
                print(
                    f"{output_dir}: adaptation pass, {done}/{share.num_shards} shards; run again to go on.",
                    file=sys.stderr,
                )
            end_processes(state)
            return {"adaptation_shards": done, "num_shards": share.num_shards, "finished_shards": 0}
        statistics = adaptation_statistics(output_dir, share.num_shards, classifier.model, shaped_by)
    share.classification_pass(annotator, statistics, shaped_by)
    summary = run_summary(share, started)
    if state.is_main_process:
        if summary["finished_shards"] == summary["num_shards"] and not args.keep_features:
            remove_encoded_windows(output_dir)
        print(closing_summary(output_dir, summary, state.device.type, args.adapt), file=sys.stderr)
    end_processes(state)
    return summary


def process_state():
    """This process's `accelerate` state, its process group started when a launcher started several processes."""
    from accelerate import PartialState

    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not torch.distributed.is_initialized():
        # The processes exchange a few Python objects at the end, through gloo: accelerate's default on GPUs, NCCL,
        # refuses two processes on one GPU (it stopped a run of 2 processes on a 1-GPU machine at its summary).
        torch.distributed.init_process_group("gloo")
    # Without an accelerator, accelerate sets up processes started by a launcher only when told it runs on CPU.
    return PartialState(cpu=not torch.accelerator.is_available())


def end_processes(state) -> None:
    # Processes leaving with the process group alive can abort at exit ("terminate called without an active
    # exception") while its communication threads are torn down; every process leaves through an explicit teardown.
    state.wait_for_everyone()
    state.destroy_process_group()


def start_run(output_dir: Path, args: AnnotationArguments, classifier, inputs: Iterable[AnnotationInput]) -> str:
    """Checks, before anything is written, that the input and the model are usable and that a run already in
    `output_dir` is this one; then records the run (`check_run_options`) and writes the dataset card. Returns the
    model's digest."""
    if isinstance(inputs, list) and not inputs:
        raise ValueError("The input holds no files to annotate; check --folder/--manifest (and --extensions).")
    if args.adapt and not getattr(classifier.model.config, "domain_normalization", False):
        raise ValueError(
            f"--adapt needs a Gen-SER model trained with domain normalisation; {args.model!r} was not (its config has "
            "no domain_normalization=True). Annotate without --adapt."
        )
    model_sha256 = model_digest(classifier)
    check_run_options(output_dir, args, model_sha256)
    if isinstance(inputs, list):  # a stream's finished shards are checked as the stream reaches them
        for shard, items in shards(inputs, args.shard_size):
            if is_finished(output_dir, shard):
                check_finished_shard(output_dir, shard, items)
    write_dataset_card(output_dir)
    return model_sha256


def run_summary(share: ProcessShare, started: float) -> dict:
    """The output's totals (`summarise`) and what every process did in this run, handed to every process."""
    from accelerate.utils import broadcast_object_list, gather_object

    this_run = gather_object([(share.audio_seconds, share.new_shards, share.seconds)])  # also waits for every process
    elapsed = time.perf_counter() - started
    # Read the shards and write errors.csv once, then hand the totals to every process.
    main = share.state.is_main_process
    (summary,) = broadcast_object_list([summarise(share.output_dir, share.num_shards) if main else None])
    # The processes work at once: a pass takes as long as its slowest process.
    classified = max(seconds["classification"] for _, _, seconds in this_run)
    run_audio_seconds = sum(audio for audio, _, _ in this_run)
    summary.update(
        processes=share.state.num_processes,
        new_shards=sum(counts["classification"] for _, counts, _ in this_run),
        new_adaptation_shards=sum(counts["adaptation"] for _, counts, _ in this_run),
        seconds=elapsed,
        adaptation_seconds=max(seconds["adaptation"] for _, _, seconds in this_run),
        # The classification pass's rate, the annotator's throughput; `seconds` includes the adaptation pass.
        audio_hours_per_hour=run_audio_seconds / classified if classified > 0 else 0.0,
    )
    return summary


def closing_summary(output_dir: Path, summary: dict, device: str, adapt: bool) -> str:
    """The line a finished run prints: what the output holds, and what this run did, pass by pass."""
    done = "all shards done" if summary["finished_shards"] == summary["num_shards"] else "run again to finish"
    errors = " (errors.csv)" if summary["errors"] and done == "all shards done" else ""
    passes = (
        f"adaptation pass {summary['new_adaptation_shards']} shards in {summary['adaptation_seconds']:.1f} s, "
        f"classification pass {summary['new_shards']} shards"
        if adapt
        else f"{summary['new_shards']} shards"
    )
    return (
        f"{output_dir}: {summary['files']} files annotated ({summary['windows']} windows, "
        f"{summary['audio_hours']:.2f} h of audio), {summary['errors']} unreadable{errors}; "
        f"{summary['finished_shards']}/{summary['num_shards']} shards, {done}. This run: {passes} by "
        f"{summary['processes']} process(es) on {device} in {summary['seconds']:.1f} s, "
        f"{summary['audio_hours_per_hour']:.0f} audio h/h classified."
    )


def main(argv: list[str] | None = None) -> None:
    """The `genser-annotate` console script."""
    (args,) = HfArgumentParser(AnnotationArguments).parse_args_into_dataclasses(args=argv)
    annotate(args)


if __name__ == "__main__":
    main()
