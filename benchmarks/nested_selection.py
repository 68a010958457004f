# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Nested speaker-independent selection of Gen-SER's configuration, so no choice is made on the speakers it is scored
on.

For each outer leave-one-speaker-out fold, the training speakers are dealt into `--inner_folds` group folds, and
every configuration of a small pre-declared grid (`--grid`, of `GRIDS`, x sampling step counts) is cross-validated on
them: trained on the inner training speakers, scored on the inner validation speakers, predictions pooled. The
configuration with the best inner UA (the first in grid order on a tie) is then trained on all the outer training
speakers and predicts the held-out speaker. The outer predictions, pooled over folds, are the nested figure. The
pre-declared default (`--default`) is trained and scored on the same outer folds beside it, and every outer fold's
choice is reported, so one sees how stable the choice is.

    python -m benchmarks.nested_selection --dataset_name emodb --encoder_name_or_path whisper-tiny.en \
        --output_dir outputs/nested_selection --num_train_epochs 100 --learning_rate 1e-3 --weight_decay 0.05 \
        --lr_scheduler_type cosine --per_device_train_batch_size 32 --optim adamw_torch_fused --parallel_folds 2
"""

import copy
import dataclasses
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import evaluate
import numpy as np
from transformers import HfArgumentParser, TrainingArguments

from training.arguments import DataTrainingArguments, ModelArguments, resolve_sources
from training.folds import group_folds, run_folds
from training.model_construction import format_config_overrides, new_genser_head
from training.reports import METRICS_PATH, scalar_scores
from training.training_data import cached_corpus

logger = logging.getLogger(__name__)

# The EmoDB main job's head, which every candidate shares (BENCHMARKS.md's "Nested selection" uses it). The general
# model's main_job.json adds readout options that these grids do not select: spread codes, the similarity loss, 1 step.
BASE_CONFIG = {"layer_aggregation": "concat", "condition_dropout": 0.3, "head_dropout": 0.3}
PRIOR = {"initial_distribution": "prior", "initial_noise_scale": 0.3, "scheduler_config": {"sampling_noise_scale": 0.0}}
GAUSSIAN = {
    "initial_distribution": "gaussian", "initial_noise_scale": 1.0, "scheduler_config": {"sampling_noise_scale": 1.0}
}
# The grids, each declared before its run; a candidate is (config overrides, fraction of the run's epochs), and
# every candidate is scored at each of STEP_COUNTS.
# - "loss-start": the paper's target matching (MSE) against the cosine loss, each from a Gaussian start and from
#   the cross-entropy-trained prior (sampled without bridge noise); code dimension 256, the run's epochs.
# - "prior-dim-epochs": the prior start, the first grid's usual choice (BENCHMARKS.md, "Nested selection"), with the
#   loss, the code dimension (64 or 256) and the epochs (half or all of the run's). Each grid point costs inner folds
#   x outer folds trainings, so the grids are small.
GRIDS = {
    "loss-start": {
        "mse": (GAUSSIAN, 1.0),
        "cosine": ({**GAUSSIAN, "target_loss": "cosine"}, 1.0),
        "prior-mse": (PRIOR, 1.0),
        "prior-cosine": ({**PRIOR, "target_loss": "cosine"}, 1.0),
    },
    "prior-dim-epochs": {
        f"prior-{loss}-d{dim}-e{fraction}": ({**PRIOR, "encoding_dim": dim, "target_loss": loss}, fraction)
        for loss in ("mse", "cosine")
        for dim in (64, 256)
        for fraction in (0.5, 1.0)
    },
}
STEP_COUNTS = [1, 4]


@dataclass
class NestedArguments:
    inner_folds: int = field(default=3, metadata={"help": "Group folds of the training speakers in each outer fold."})
    grid: str = field(default="loss-start", metadata={"help": f"The pre-declared grid: one of {list(GRIDS)}."})
    default: str = field(
        default="prior-mse@4", metadata={"help": "The pre-declared configuration, candidate@steps (the main job's)."}
    )


def nested_folds(groups: np.ndarray, inner_folds: int) -> list[tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]]:
    """For every outer leave-one-group-out fold: its test mask, and the (train, validation) masks of `inner_folds`
    group folds of the remaining groups. All masks index the whole corpus; no inner mask touches the outer test
    rows, and no group is on both sides of a split."""
    nested = []
    for outer_test in group_folds(groups, 0):
        outer_train = np.flatnonzero(~outer_test)
        inner = []
        for validation in group_folds(groups[outer_train], inner_folds):
            inner_validation = np.zeros(len(groups), dtype=bool)
            inner_validation[outer_train[validation]] = True
            inner.append((~outer_test & ~inner_validation, inner_validation))
        nested.append((outer_test, inner))
    return nested


def candidate_task(
    model_args: ModelArguments, training_args: TrainingArguments, candidate: tuple[str, float], labels: list[str]
):
    """A picklable factory of fresh Gen-SER heads with the candidate's configuration, and its training arguments."""
    overrides, epoch_fraction = candidate
    config = dataclasses.replace(model_args, config_overrides=format_config_overrides({**BASE_CONFIG, **overrides}))
    args = copy.deepcopy(training_args)
    args.num_train_epochs = training_args.num_train_epochs * epoch_fraction
    return partial(new_genser_head, config, labels), args


def parse_arguments(argv: list[str] | None) -> tuple:
    """The script's arguments (`ModelArguments`, `DataTrainingArguments`, `NestedArguments`, `TrainingArguments`),
    checked: a grid of `GRIDS`, a default of that grid at one of `STEP_COUNTS`, a single task."""
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, NestedArguments, TrainingArguments))
    model_args, data_args, nested_args, training_args = parser.parse_args_into_dataclasses(
        args=sys.argv[1:] if argv is None else argv
    )
    if nested_args.grid not in GRIDS:
        raise ValueError(f"--grid must be one of {list(GRIDS)}, got {nested_args.grid!r}.")
    candidates = GRIDS[nested_args.grid]
    default_candidate, _, default_steps = nested_args.default.partition("@")
    if default_candidate not in candidates or not default_steps.isdigit() or int(default_steps) not in STEP_COUNTS:
        raise ValueError(
            f"--default must be candidate@steps with a candidate of the {nested_args.grid!r} grid {list(candidates)} "
            f"and steps in {STEP_COUNTS}, got {nested_args.default!r}."
        )
    if data_args.task_columns:
        raise ValueError("Nested selection chooses a single-task configuration: drop --task_columns.")
    return model_args, data_args, nested_args, training_args


def unweighted_accuracy(metric, targets: np.ndarray, num_labels: int, predicted: np.ndarray, rows) -> float:
    """The UA of `predicted` against the `targets` of `rows`."""
    scores = metric.compute(predictions=predicted, references=targets[rows], num_labels=num_labels)
    return scores["unweighted_accuracy"]


def inner_choices(folds, candidates: dict, tasks: dict, features, ua, parallel_folds: int) -> list[tuple[str, dict]]:
    """For every outer fold of `folds` (`nested_folds`), the `candidate@steps` with the best inner UA (the first in
    grid order on a tie) and every one's inner UA, each candidate's `tasks` cross-validated over the inner folds
    (predictions pooled over them)."""
    inner_tasks = [
        (tasks[name][0], features, train, validation, tasks[name][1], STEP_COUNTS)
        for _, inner in folds
        for name in candidates
        for train, validation in inner
    ]
    logger.info("Inner selection: %d trainings", len(inner_tasks))
    inner_results = iter(run_folds(inner_tasks, parallel_folds))
    choices = []
    for outer_test, inner in folds:
        inner_scores = {}
        for candidate in candidates:
            pooled = {steps: np.zeros(len(outer_test), dtype=np.int64) for steps in STEP_COUNTS}
            for _, validation in inner:  # the inner validation folds cover every outer training clip once
                predictions, _ = next(inner_results)
                for steps in STEP_COUNTS:
                    pooled[steps][validation] = predictions[steps]
            for steps in STEP_COUNTS:
                inner_scores[f"{candidate}@{steps}"] = ua(pooled[steps][~outer_test], ~outer_test)
        choices.append((max(inner_scores, key=inner_scores.get), inner_scores))
    return choices


def outer_predictions(
    folds, choices: list[tuple[str, dict]], tasks: dict, default: str, features, groups: np.ndarray, ua,
    parallel_folds: int,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Every clip's prediction by its outer fold's choice and by the `default` (`candidate@steps`), each trained on
    the fold's training speakers, and per outer fold its held-out groups, choice, inner UA and both outer UAs."""
    default_candidate, _, default_steps = default.partition("@")
    outer_tasks = []
    for (outer_test, _), (choice, _) in zip(folds, choices):
        for candidate in (choice.split("@")[0], default_candidate):
            outer_tasks.append(
                (tasks[candidate][0], features, ~outer_test, outer_test, tasks[candidate][1], STEP_COUNTS)
            )
    logger.info("Outer folds: %d trainings", len(outer_tasks))
    outer_results = run_folds(outer_tasks, parallel_folds)
    nested = np.zeros(len(groups), dtype=np.int64)
    default_predictions = np.zeros(len(groups), dtype=np.int64)
    per_fold = []
    for k, ((outer_test, _), (choice, inner_scores)) in enumerate(zip(folds, choices)):
        (chosen, _), (by_default, _) = outer_results[2 * k], outer_results[2 * k + 1]
        nested[outer_test] = chosen[int(choice.split("@")[1])]
        default_predictions[outer_test] = by_default[int(default_steps)]
        per_fold.append(
            {"held_out": sorted(set(groups[outer_test])), "choice": choice, "inner_ua": inner_scores,
             "outer_ua_choice": ua(nested[outer_test], outer_test),
             "outer_ua_default": ua(default_predictions[outer_test], outer_test)}
        )  # fmt: skip
    return nested, default_predictions, per_fold


def main(argv: list[str] | None = None) -> dict:
    started = time.perf_counter()
    model_args, data_args, nested_args, training_args = parse_arguments(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    candidates = GRIDS[nested_args.grid]
    model_args, data_args, corpus, _ = resolve_sources(model_args, data_args)
    features, labels, groups, _ = cached_corpus(model_args, data_args, corpus, training_args.seed)
    targets = np.array(features["labels"])
    metric = evaluate.load(METRICS_PATH)
    ua = partial(unweighted_accuracy, metric, targets, len(labels))
    folds = nested_folds(groups, nested_args.inner_folds)
    tasks = {
        name: candidate_task(model_args, training_args, candidate, labels) for name, candidate in candidates.items()
    }
    choices = inner_choices(folds, candidates, tasks, features, ua, data_args.parallel_folds)
    nested, default, per_fold = outer_predictions(
        folds, choices, tasks, nested_args.default, features, groups, ua, data_args.parallel_folds
    )
    pooled = {
        name: scalar_scores(metric.compute(predictions=predicted, references=targets, num_labels=len(labels)))
        for name, predicted in (("nested", nested), ("default", default))
    }
    results = {
        "seed": training_args.seed,
        "grid": {"name": nested_args.grid, "candidates": candidates, "base": BASE_CONFIG, "steps": STEP_COUNTS},
        "default": nested_args.default,
        "inner_folds": nested_args.inner_folds,
        "pooled": pooled,
        "choices": dict(Counter(choice for choice, _ in choices)),
        "per_fold": per_fold,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "nested_selection.json").write_text(json.dumps(results, indent=2))
    for name, scores in pooled.items():
        print(f"{name}: pooled UA {scores['unweighted_accuracy']:.4f} WA {scores['accuracy']:.4f} "
              f"macro-F1 {scores['macro_f1']:.4f} over {len(folds)} outer folds")
    print(f"choices over the outer folds: {results['choices']}; wall time {results['wall_seconds']:.0f} s")
    return results


if __name__ == "__main__":
    main()
