# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Gen-SER across corpora, against linear and MLP heads on the same features, over seeds and encoders.

    python -m benchmarks.evaluate_across_corpora --output_dir outputs/across-corpora

Every corpus (`--dataset_name`, named in `training/sources.py`) is encoded once per encoder (`feature_cache.py`).
Then, for each encoder, seed and head, on the same cached features and with the same optimiser budget:

- **leave one corpus out** (zero-shot): a head trained on the other corpora (drawn balanced over corpus and class)
  scores the held-out corpus on the labels it shares with them and on the core emotions among those, its
  predictions made within those labels; without adaptation (`none`: with the training pool's statistics, as a lone
  clip is) and with each adaptation to it that uses no label (`STATISTICS_VARIANTS`: its own statistics, or each
  of its speakers' shrunk towards them; with `--domain_column speaker` each speaker's own; each then with and without
  a label-shift correction of the scores, `SCORE_CORRECTIONS`);
- **in corpus**: speaker-independent folds over every corpus's namespaced speakers (`--in_corpus_folds`, dealt
  round-robin, so with 10 folds each of EmoDB's 10 speakers is held out once: EmoDB's leave-one-speaker-out); each
  corpus is scored on its own held-out clips, predicted within its own labels (as its users would, with the
  pipeline's `candidate_labels`), by the multi-corpus head and, for Gen-SER, by a head trained on that corpus alone
  with the same folds (`--in_corpus_encoders`); the multi-corpus head also among all the labels.

With `--domain_residuals` (the release's setting), every head's map of the condition has residual weights per
corpus (`config.domain_names`): in corpus each corpus's clips are read with its own, and a held-out corpus, whose
residuals no clip trained, with the shared weights alone.

`--protocols` picks the tables (both by default).

The `genser-arousal` head is an emotion and arousal model: a Gen-SER head of two tasks (concatenated codes), emotions
and arousal levels, trained on the emotion corpora (their arousal derived from their emotions,
`training.sources.EMOTION_AROUSAL`) and on the arousal corpora (`--arousal_corpora`, rated levels, no emotion label),
and scored on the emotion corpora's emotions exactly as the emotion-only heads are: the arousal corpora are never
held out across corpora, and in corpus their speakers are dealt into the same folds on their own, so that the emotion
corpora's folds stay those of the emotion-only run. Its arousal in corpus (UA of the levels; derived ones on the
emotion corpora) is printed too.

Prints the tables as markdown (mean ± sd over seeds of the UA, unweighted accuracy) and writes `results.json`.
"""

import copy
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import evaluate
import numpy as np
from transformers import HfArgumentParser

from modeling_genser.taxonomy_encoding import MISSING_LABEL
from training.arguments import MAIN_JOB, RELEASE_CONFIG_OVERRIDES
from training.data import CORPUS_COLUMN
from training.feature_cache import shrunk_domain_statistics, with_domains
from training.folds import (
    FoldTask,
    benchmark_training_arguments,
    corpus_label_subsets,
    first_task,
    group_folds,
    leave_one_corpus_out,
    run_folds,
)
from training.heads import new_head
from training.label_shift import adjust_to_priors, balancing_offsets, estimate_class_priors
from training.reports import METRICS_PATH
from training.sources import AROUSAL_LEVELS
from training.training_data import encoded_corpora

logger = logging.getLogger(__name__)


@dataclass
class EvaluationArguments:
    output_dir: str = field(default="outputs/across-corpora")
    dataset_name: str = field(
        default="emodb,cremad,ravdess,casia,nemo,ased", metadata={"help": "Named emotion corpora."}
    )
    encoders: str = field(
        default="whisper-tiny.en,whisper-base",
        metadata={"help": "Encoders of the leave-one-corpus-out table: named (training/sources.py) or paths ('' for none)."},
    )
    in_corpus_encoders: str = field(
        default="whisper-tiny.en,whisper-base", metadata={"help": "Encoders of the in-corpus table ('' for none)."}
    )
    heads: str = field(
        default="genser,linear,mlp",
        metadata={"help": "Among genser, genser-prior, genser-detached, linear, mlp and genser-arousal."},
    )
    arousal_corpora: str = field(
        default="baved", metadata={"help": "Arousal corpora the genser-arousal head also trains on."}
    )
    seeds: str = field(default="0,1,2")
    protocols: str = field(default="leave-one-corpus-out,in-corpus")
    in_corpus_folds: int = field(default=10)
    single_corpus: bool = field(
        default=True, metadata={"help": "In corpus, also train Gen-SER on each corpus alone (4x the trainings)."}
    )
    config_overrides: str = field(
        default=RELEASE_CONFIG_OVERRIDES,
        metadata={"help": "GenSERConfig fields of the heads; default: the release model's (main_job.json)."},
    )
    mlp_hidden_size: int = field(default=256)
    mlp_dropout: float = field(default=0.2)
    max_steps: int = field(default=1500, metadata={"help": "Optimiser steps per head, whatever its data's size."})
    batch_size: int = field(default=32)
    learning_rate: float = field(default=1e-3)
    weight_decay: float = field(default=0.05)
    parallel_folds: int = field(default=2)
    max_length_seconds: float = field(default=20.0, metadata={"help": "Clips are encoded from their start up to this."})
    domain_column: str = field(
        default="corpus",
        metadata={"help": "What a domain is, in training and adaptation: each corpus, or each (namespaced) speaker."},
    )
    domain_residuals: bool = field(
        default=MAIN_JOB.get("domain_residuals", False),
        metadata={
            "help": "Each domain gets its own residual weights beside the shared ones (config.domain_names); default: "
            "the release model's."
        },
    )


def speaker_folds(speakers: np.ndarray, scored: np.ndarray, num_folds: int) -> list[np.ndarray]:
    """`num_folds` speaker-independent held-out masks, the `scored` clips' speakers (the emotion corpora's) and the
    others' (the arousal corpora's) each dealt round-robin on their own: the scored clips' folds are then those of a
    run without the others."""
    masks = [np.zeros(len(speakers), dtype=bool) for _ in range(num_folds)]
    for rows in (scored, ~scored):
        if rows.any():
            for mask, part in zip(masks, group_folds(speakers[rows], num_folds)):
                mask[rows] = part
    return masks


def ua(metric, predictions, references, num_labels) -> float:
    return metric.compute(predictions=predictions, references=references, num_labels=num_labels)["unweighted_accuracy"]


# How a held-out corpus is adapted to, no label used: the statistics its clips are standardised with (`none`: the
# training pool's, as a lone clip is; `corpus`: its own, as `genser-annotate --adapt` does; `speaker`: each speaker's
# own shrunk towards the corpus's, as `--adapt_by folder` does with a folder per speaker), then a correction of the
# head's scores over the clips scored (`training/label_shift.py`): none, the class priors estimated by EM, or equal
# class shares forced.
STATISTICS_VARIANTS = {"none": "unadapted", "corpus": None, "speaker": "speaker"}
SCORE_CORRECTIONS = {
    "": lambda logits: logits,
    " + EM priors": lambda logits: adjust_to_priors(logits, estimate_class_priors(logits)),
    " + balanced": lambda logits: logits + balancing_offsets(logits),
}


def corpus_adaptation_scores(features, table, speakers, labels, config, kind, training_args, args, metric) -> dict:
    """`{corpus: {"shared"/"core": {adaptation: UA}}}` for one head and seed (`folds.leave_one_corpus_out`), each
    adaptation of `STATISTICS_VARIANTS` and `SCORE_CORRECTIONS`; `features` and their domains' statistics `table` from
    `feature_cache.with_domains`, and `speakers` (`feature_cache.shrunk_domain_statistics`, or None when the domains
    are speakers already)."""
    targets = first_task(features["labels"])  # the emotions; MISSING_LABEL for an arousal corpus's clips
    steps = config.num_inference_steps if kind.startswith("genser") else None
    statistics = {name: key for name, key in STATISTICS_VARIANTS.items() if name != "speaker" or speakers is not None}
    folds = leave_one_corpus_out(
        partial(new_head, kind, config, args.mlp_hidden_size, args.mlp_dropout), features, labels, training_args,
        [steps], args.parallel_folds, table, {"speaker": speakers} if speakers else None, with_logits=True,
    )  # fmt: skip
    scores = {}
    for fold in folds:
        (corpus,) = fold["groups"]
        held_out = targets[fold["mask"]]
        scores[corpus] = {}
        for subset, label_ids in fold["label_subsets"].items():
            rows = np.isin(held_out, label_ids)
            scores[corpus][subset] = {}
            for name, variant in statistics.items():
                key = (steps, subset, "logits")
                logits = fold["predictions"][key if variant is None else (variant, key)][rows]
                for correction, correct in SCORE_CORRECTIONS.items():
                    predicted = np.asarray(label_ids)[correct(logits).argmax(-1)]
                    scores[corpus][subset][name + correction] = ua(metric, predicted, held_out[rows], len(labels))
    return scores


def in_corpus(features, table, labels, config, kind, training_args, args, metric, single_corpus: bool) -> dict:
    """`{corpus: {"multi-corpus": UA, "multi-corpus, all labels": UA, "single-corpus": UA}}` over
    speaker-independent folds, for one head and seed; each clip standardised with its domain's statistics. An
    emotion and arousal head also gives `{"arousal": {corpus: UA of the levels}}` (derived on emotion corpora)."""
    corpora = np.asarray(features[CORPUS_COLUMN])
    targets = first_task(features["labels"])
    scored = targets != MISSING_LABEL
    subsets = corpus_label_subsets(corpora[scored], targets[scored])
    steps = [config.num_inference_steps if kind.startswith("genser") else None]
    head = partial(new_head, kind, config, args.mlp_hidden_size, args.mlp_dropout)
    masks = speaker_folds(np.asarray(features["speaker"]), scored, args.in_corpus_folds)
    runs = {"multi-corpus": [(mask, ~mask) for mask in masks]}
    if single_corpus:  # the same held-out clips, each corpus's head trained on that corpus alone
        runs["single-corpus"] = [
            (mask & (corpora == corpus), ~mask & (corpora == corpus))
            for corpus in sorted(set(corpora))
            for mask in masks
            if (mask & (corpora == corpus)).any()
        ]
    scores = {}
    for name, folds in runs.items():
        tasks = [FoldTask(head, features, train, test, training_args, steps, subsets, table) for test, train in folds]
        predicted = {key: np.full(len(targets), -1) for key in [steps[0], *((steps[0], c) for c in subsets)]}
        arousal = np.full(len(targets), -1)
        for (test, _), (predictions, _) in zip(folds, run_folds(tasks, args.parallel_folds)):
            for key, values in predicted.items():
                values[test] = first_task(predictions[key])
            if kind == "genser-arousal":
                arousal[test] = predictions[steps[0]][:, 1]
        if kind == "genser-arousal" and name == "multi-corpus":
            levels = np.asarray(features["labels"])[:, 1]
            scores["arousal"] = {
                str(corpus): ua(metric, arousal[corpora == corpus], levels[corpora == corpus], len(AROUSAL_LEVELS))
                for corpus in sorted(set(corpora))
            }
        for corpus in subsets:
            rows = corpora == corpus
            scores.setdefault(corpus, {})[name] = ua(metric, predicted[(steps[0], corpus)][rows], targets[rows], len(labels))
            if name == "multi-corpus":
                scores[corpus]["multi-corpus, all labels"] = ua(metric, predicted[steps[0]][rows], targets[rows], len(labels))
    return scores


def mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def loco_table(results: dict) -> str:
    """Markdown: per encoder, labels (core, then shared) and head, each held-out corpus's UA under each adaptation,
    mean ± sd over seeds, and the mean over corpora."""
    corpora = next(iter(results.values()))["corpora"]
    lines = ["| encoder | labels | head | adaptation | mean | " + " | ".join(corpora) + " |"]
    lines.append("|" + " --- |" * (5 + len(corpora)))
    for encoder, entry in results.items():
        for subset in ("core", "shared"):
            for kind, per_seed in entry.get("leave_one_corpus_out", {}).items():
                for variant in per_seed[0][entry["corpora"][0]][subset]:
                    cells = [[seed[c][subset][variant] for seed in per_seed] for c in entry["corpora"]]
                    means = [float(np.mean([cell[i] for cell in cells])) for i in range(len(per_seed))]
                    row = [encoder, subset, kind, variant, mean_sd(means)]
                    lines.append("| " + " | ".join(row + [mean_sd(cell) for cell in cells]) + " |")
    return "\n".join(lines)


def in_corpus_table(results: dict) -> str:
    lines = ["| encoder | head | model | mean | " + " | ".join(next(iter(results.values()))["corpora"]) + " |"]
    lines.append("|" + " --- |" * (4 + len(next(iter(results.values()))["corpora"])))
    arousal_lines = []
    for encoder, entry in results.items():
        for kind, per_seed in entry.get("in_corpus", {}).items():
            if "arousal" in per_seed[0]:
                for corpus in per_seed[0]["arousal"]:
                    cell = mean_sd([seed["arousal"][corpus] for seed in per_seed])
                    arousal_lines.append(f"| {encoder} | {kind} | {corpus} | {cell} |")
            for model in per_seed[0][entry["corpora"][0]]:
                cells = [[seed[c][model] for seed in per_seed] for c in entry["corpora"]]
                means = [float(np.mean([cell[i] for cell in cells])) for i in range(len(per_seed))]
                lines.append("| " + " | ".join([encoder, kind, model, mean_sd(means)] + [mean_sd(c) for c in cells]) + " |")
    if arousal_lines:
        lines += ["", "Arousal in corpus, UA of the levels (derived from the emotions on emotion corpora):", "",
                  "| encoder | head | corpus | UA |", "| --- | --- | --- | --- |", *arousal_lines]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    started = time.perf_counter()
    (args,) = HfArgumentParser(EvaluationArguments).parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    metric = evaluate.load(METRICS_PATH)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    heads = args.heads.split(",")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    protocols = set(args.protocols.split(","))
    if unknown := protocols - {"leave-one-corpus-out", "in-corpus"}:
        raise ValueError(f"Unknown protocols {sorted(unknown)}: choose among leave-one-corpus-out and in-corpus.")
    loco_encoders = list(filter(None, args.encoders.split(","))) if "leave-one-corpus-out" in protocols else []
    in_corpus_encoders = list(filter(None, args.in_corpus_encoders.split(","))) if "in-corpus" in protocols else []
    if not loco_encoders + in_corpus_encoders:
        raise ValueError("No encoder to evaluate: give --encoders (leave-one-corpus-out) or --in_corpus_encoders.")
    results = {}
    for encoder in dict.fromkeys(loco_encoders + in_corpus_encoders):  # each encoded once, in the order given
        arousal_corpora = args.arousal_corpora.split(",") if "genser-arousal" in heads else None
        features, labels, config, joint = encoded_corpora(
            encoder, args.dataset_name.split(","), args.config_overrides, args.max_length_seconds, arousal_corpora
        )
        entry = results[encoder] = {"corpora": sorted(set(features[CORPUS_COLUMN])), "labels": labels}
        head_data = {"emotion": (features, config), "emotion and arousal": joint}
        for kind in heads:
            features, config = head_data["emotion and arousal" if kind == "genser-arousal" else "emotion"]
            features, table, domain_names = with_domains(features, np.asarray(features[args.domain_column]))
            speakers = None
            if args.domain_column != "speaker":
                speakers = shrunk_domain_statistics(
                    features, features["speaker"], features[CORPUS_COLUMN], config.statistics_prior_windows
                )
            if args.domain_residuals:  # a held-out corpus's residuals get no clip: it is read with the shared weights
                config = copy.deepcopy(config)
                config.domain_names = domain_names
            for seed in seeds:
                training_args = benchmark_training_arguments(
                    str(output_dir / "scratch"), seed, args.max_steps, args.batch_size, args.learning_rate, args.weight_decay
                )
                if encoder in loco_encoders:
                    loco = corpus_adaptation_scores(
                        features, table, speakers, labels, config, kind, training_args, args, metric
                    )
                    entry.setdefault("leave_one_corpus_out", {}).setdefault(kind, []).append(loco)
                    logger.info("%s %s seed %d leave-one-corpus-out: %s", encoder, kind, seed, loco)
                if encoder in in_corpus_encoders:
                    scores = in_corpus(
                        features, table, labels, config, kind, training_args, args, metric,
                        args.single_corpus and kind == "genser",
                    )
                    entry.setdefault("in_corpus", {}).setdefault(kind, []).append(scores)
                    logger.info("%s %s seed %d in corpus: %s", encoder, kind, seed, scores)
                (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    if loco_encoders:
        print("\nLeave-one-corpus-out UA (mean ± sd over seeds %s):\n" % seeds + loco_table(results))
    if any("in_corpus" in entry for entry in results.values()):
        print("\nIn-corpus UA, speaker-independent folds:\n" + in_corpus_table(results))
    print(f"\nwall time {time.perf_counter() - started:.0f} s; results in {output_dir / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
