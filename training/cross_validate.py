# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Speaker-independent cross-validation of Gen-SER (or a classification-head baseline) on cached encoder features.

Each clip is encoded once by the frozen encoder (see `feature_cache.py`); every fold then trains a fresh head
with the Trainer on the other speakers' cached features and predicts the held-out speaker(s). Reports per-fold
and pooled WA / UA / macro-F1 / weighted-F1 and saves the pooled confusion matrix as JSON and PNG.

    python -m training.cross_validate --dataset_name ../shared/data/emodb \
        --encoder_name_or_path ../shared/models/whisper-tiny.en --output_dir outputs/emodb-loso --head genser

Several named corpora (`--dataset_name emodb,cremad,ravdess,casia`, `training/sources.py`) are read as one dataset
whose labels are mapped onto one vocabulary, with speakers namespaced by corpus and a `corpus` column; heads draw
their training clips balanced over corpus and class. `--group_column_name corpus` folds by corpus
(leave-one-corpus-out).
"""

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import evaluate
import numpy as np
from transformers import HfArgumentParser, TrainingArguments

from training.arguments import DataTrainingArguments, ModelArguments, resolve_sources
from training.data import CORPUS_COLUMN, dimensional_value_range, domain_values
from training.feature_cache import sorted_domain_names, with_domains
from training.folds import cross_validate_head, held_out_corpus_scores, held_out_label_subsets
from training.heads import new_head
from training.model_construction import new_genser_head, residual_domain_names
from training.reports import (
    METRICS_PATH,
    card_dataset_name,
    confusion_labels,
    save_confusion_matrix,
    summary,
    target_scores,
)
from training.training_data import cached_corpus

logger = logging.getLogger(__name__)


@dataclass
class CrossValidationArguments:
    head: str = field(default="genser", metadata={"help": "genser, linear or mlp (classification-head baselines)."})
    mlp_hidden_size: int = field(default=256)
    mlp_dropout: float = field(default=0.2)
    inference_steps: str = field(
        default="1", metadata={"help": "Comma-separated sampling step counts to evaluate Gen-SER with, e.g. '1,2,4'."}
    )


def fold_head(
    kind: str,
    model_args: ModelArguments,
    labels: list[str],
    args: CrossValidationArguments,
    label_sets=None,
    domain_names: list[str] | None = None,
    value_range: list[float] | None = None,
):
    """A fresh head of `kind` for one fold (`heads.new_head`): Gen-SER's (`model_construction.new_genser_head`:
    multi-task with `label_sets`, dimensional with `value_range`, with `--domain_residuals` each of `domain_names`
    with its residual weights), or a baseline on its condition. A baseline's fold builds that Gen-SER model too: a
    baseline training encoder layers copies the pretrained ones from it, and a seed draws the baseline's weights after
    Gen-SER's, so that it reproduces the baselines' figures in BENCHMARKS.md."""
    genser_model = new_genser_head(model_args, labels, label_sets, domain_names, value_range)
    if kind == "genser":
        return genser_model
    return new_head(kind, genser_model.config, args.mlp_hidden_size, args.mlp_dropout, genser_model.encoder)


def main(argv: list[str] | None = None) -> dict:
    started = time.perf_counter()
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, CrossValidationArguments, TrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    model_args, data_args, cv_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    model_args, data_args, corpus, _ = resolve_sources(model_args, data_args)
    features, labels, groups, label_sets = cached_corpus(model_args, data_args, corpus, training_args.seed)
    domain_table, domain_names = None, None
    if model_args.domain_normalization:  # every clip, held-out ones included, by its own domain's statistics
        domains = domain_values(features, data_args.domain_column_name, card_dataset_name(data_args.dataset_name))
        domain_names = residual_domain_names(model_args, sorted_domain_names(domains))
        features, domain_table, _ = with_domains(features, domains, domain_names)
    tasks = label_sets or {data_args.label_column_name: labels}
    targets = np.array(features["labels"])
    dimensional = data_args.dimensions is not None
    value_range = dimensional_value_range(targets, data_args.value_range) if dimensional else None
    step_counts = [int(s) for s in cv_args.inference_steps.split(",")] if cv_args.head == "genser" else [None]

    metric = evaluate.load(METRICS_PATH)

    # With --domain_residuals a held-out corpus's residuals get no training clip: they stay zero, so it is read with
    # the shared weights alone, as any new corpus.
    head = partial(fold_head, cv_args.head, model_args, labels, cv_args, label_sets, domain_names, value_range)
    leave_one_corpus_out = data_args.group_column_name == CORPUS_COLUMN
    if leave_one_corpus_out and label_sets:
        raise ValueError(
            "Folds of whole corpora score a single-task head's emotions: leave out --task_columns, or measure a "
            "multi-task head across corpora with `python -m benchmarks.evaluate_across_corpora --heads genser-arousal`."
        )
    subsets = partial(held_out_label_subsets, targets, labels) if leave_one_corpus_out else None
    predictions, folds = cross_validate_head(
        head, features, groups, training_args, step_counts, data_args.num_folds, data_args.parallel_folds, subsets,
        domain_table,
    )
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    names = {steps: f"steps_{steps}" if steps else "classifier" for steps in step_counts}
    score = partial(first_task_scores, metric, tasks=tasks, dimensions=data_args.dimensions)
    per_fold = [fold_scores(score, fold, predictions, targets, names) for fold in folds]
    by_task = pooled_scores(metric, predictions, targets, tasks, data_args.dimensions, names, output_dir)
    pooled = next(iter(by_task.values()))
    results = {
        "head": cv_args.head,
        "labels": labels,
        **({"value_range": value_range} if dimensional else {}),
        "seed": training_args.seed,
        "pooled": pooled,  # the first task's; per_fold too
        "per_fold": per_fold,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    if len(by_task) > 1:
        results["tasks"] = {
            task: {"labels": tasks.get(task, [task]), "pooled": scores} for task, scores in by_task.items()
        }
    if leave_one_corpus_out:
        results["held_out_corpora"] = held_out_corpus_scores(metric, folds, targets, labels, names)
    (output_dir / "cross_validation.json").write_text(json.dumps(results, indent=2))
    print_results(results, by_task)
    return results


def fold_scores(score, fold: dict, predictions: dict, targets: np.ndarray, names: dict) -> dict:
    """One fold's entry of the results: its groups, training time and `score` of its held-out predictions per step
    count of `names`."""
    held_out = fold["mask"]
    return {
        "fold": fold["fold"], "groups": fold["groups"], "train_seconds": round(fold["train_seconds"], 2),
        **{name: score(predictions[steps][held_out], targets[held_out]) for steps, name in names.items()},
    }  # fmt: skip


def first_task_scores(metric, predicted, references, tasks: dict, dimensions) -> dict:
    """The first task's (dimension's) scores of `predicted`, without its confusion matrix: a fold's figures."""
    scores = next(iter(target_scores(metric, predicted, references, tasks, dimensions).values()))
    return {key: value for key, value in scores.items() if key != "confusion_matrix"}


def pooled_scores(metric, predictions, targets, tasks: dict, dimensions, names: dict, output_dir: Path) -> dict:
    """Every task's (dimension's) scores of the pooled `predictions`, `{task: {name: metrics}}` per step count of
    `names` (a task without labels in the data has none); each confusion matrix saved in `output_dir` (a dimension's
    only where its values are levels)."""
    by_task = {}
    for steps, name in names.items():
        task_scores = target_scores(metric, predictions[steps], targets, tasks, dimensions)
        for i, (task, scores) in enumerate(task_scores.items()):
            by_task.setdefault(task, {})[name] = scores
            stem = output_dir / (f"confusion_{name}" + ("" if i == 0 else f"_{task}"))
            if "confusion_matrix" in scores:
                save_confusion_matrix(scores["confusion_matrix"], confusion_labels(scores, tasks.get(task)), stem)
    return by_task


def print_results(results: dict, by_task: dict) -> None:
    """Every task's pooled figures, and each held-out corpus's (folds of whole corpora)."""
    for task, task_scores in by_task.items():
        for name, scores in task_scores.items():
            print(f"{results['head']} {name} ({task}): pooled {summary(scores)} over {len(results['per_fold'])} folds")
    for corpus, subsets_scores in results.get("held_out_corpora", {}).items():
        for subset, scores in subsets_scores.items():
            figures = "  ".join(
                f"{name} UA {value['unweighted_accuracy']:.4f}" for name, value in scores.items() if isinstance(value, dict)
            )
            described = f"{subset} labels ({', '.join(scores['labels'])}; {scores['clips']} clips)"
            print(f"held-out {corpus}, {described}: {figures}")


if __name__ == "__main__":
    main()
