# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Speaker-independent cross-validation of a head on cached pooled features (`feature_cache.py`).

Each fold trains a fresh head with the Trainer on the other speakers' cached features and predicts the held-out
speakers; predictions are pooled over folds, so every clip is scored by a head that never saw its speaker. Used by
`cross_validate.py` (any head, several step counts) and by `run_genser.py` (the shipped configuration). Leave one
corpus out (`leave_one_corpus_out`) is the main job's and `benchmarks/evaluate_across_corpora.py`'s.
"""

import copy
import logging
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import NamedTuple

import numpy as np
import torch
from datasets import Dataset
from torch import nn
from torch.utils.data import DataLoader
from transformers import TrainingArguments, set_seed
from transformers.trainer_utils import IntervalStrategy

from modeling_genser.domain_normalization import domain_statistics
from modeling_genser.taxonomy_encoding import MISSING_LABEL

from .data import CORPUS_COLUMN, BalancedTrainer, corpus_balancing_weights
from .feature_cache import (
    CACHED_COLUMNS,
    DOMAIN_COLUMN,
    STATISTICS_ROW_COLUMN,
    collate_cached_features,
    pooled_features,
)
from .reports import scalar_scores
from .sources import CORE_EMOTIONS

logger = logging.getLogger(__name__)


def group_folds(groups: np.ndarray, num_folds: int, always_trained: np.ndarray | None = None) -> list[np.ndarray]:
    """Held-out masks: one per group (leave-one-group-out), or `num_folds` folds of whole groups (sorted order,
    dealt round-robin, so the folds are deterministic). No group is ever in two folds. Rows of `always_trained` (a
    boolean mask, e.g. a corpus without the labels scored) are never held out: a fold holding any of them is left
    out."""
    unique = np.unique(groups)
    if len(unique) < 2:
        raise ValueError(
            f"Speaker-independent folds need at least 2 speakers (groups), but the data has {len(unique)}: "
            f"{unique.tolist()}. Check --group_column_name, or add speakers."
        )
    if num_folds == 0:
        assignment = {g: i for i, g in enumerate(unique)}
        num_folds = len(unique)
    else:
        if not 2 <= num_folds <= len(unique):
            raise ValueError(f"num_folds must be between 2 and the number of groups ({len(unique)}), got {num_folds}.")
        assignment = {g: i % num_folds for i, g in enumerate(unique)}
    fold_of = np.array([assignment[g] for g in groups])
    masks = [fold_of == k for k in range(num_folds)]
    if always_trained is not None:
        masks = [mask for mask in masks if not (mask & always_trained).any()]
    return masks


def first_task(values) -> np.ndarray:
    """The first task's column of per-clip class indices (targets or predictions), `(num_clips,)`: the values
    themselves for one task, the first column of `(num_clips, num_tasks)` for several."""
    values = np.asarray(values)
    return values.reshape(len(values), -1)[:, 0]


def head_training_arguments(training_args: TrainingArguments, output_dir: str) -> TrainingArguments:
    """The run's optimiser budget for a head trained on features alone: no evaluation, checkpoints or reports."""
    args = copy.deepcopy(training_args)
    args.output_dir = output_dir
    args.eval_strategy = IntervalStrategy.NO
    args.save_strategy = IntervalStrategy.NO
    args.report_to = []
    return args


def benchmark_training_arguments(
    output_dir: str, seed: int, max_steps: int, batch_size: int, learning_rate: float, weight_decay: float
) -> TrainingArguments:
    """A benchmark's budget for every head it trains on cached features: `max_steps` AdamW steps of `batch_size`
    clips on a cosine schedule, whatever the data's size; no checkpoints, logs or reports."""
    return TrainingArguments(
        output_dir=output_dir, max_steps=max_steps, per_device_train_batch_size=batch_size, learning_rate=learning_rate,
        weight_decay=weight_decay, lr_scheduler_type="cosine", seed=seed, report_to="none", disable_tqdm=True,
        save_strategy="no", logging_strategy="no", dataloader_pin_memory=False,
    )  # fmt: skip


def head_inputs(features: Dataset, with_labels: bool = True) -> Dataset:
    """The cached columns a head trains on (`feature_cache.CACHED_COLUMNS`, `labels`), as torch tensors; batch
    them with `feature_cache.collate_cached_features`."""
    columns = [name for name in features.column_names if name in CACHED_COLUMNS] + (["labels"] if with_labels else [])
    return features.select_columns(columns).with_format("torch")


def store_pool_statistics(head: nn.Module, features: Dataset) -> None:
    """With domain normalisation, stores in `head` the statistics of its training pool (`features`), which it uses
    for clips that come without their domain's."""
    if head.conditioner.domain_normalization:
        head.conditioner.set_domain_statistics(domain_statistics(pooled_features(features)))


def train_head(
    head: nn.Module, features: Dataset, training_args: TrainingArguments, domain_table: torch.Tensor | None = None
) -> None:
    """Trains `head` with the Trainer on cached features; several corpora are drawn balanced over corpus and class
    (`corpus_balancing_weights`). With domain normalisation each clip is standardised with its domain's statistics
    (`domain_table`, indexed by the `domain` column of `feature_cache.with_domains`), and the head keeps the
    training pool's."""
    store_pool_statistics(head, features)
    # `head_inputs` selects the columns already; the Trainer's own pruning would drop `domain` (not a forward
    # argument: the collator turns it into `domain_statistics`) and silently train on the pool's statistics.
    training_args = copy.copy(training_args)
    training_args.remove_unused_columns = False
    BalancedTrainer(
        model=head,
        args=training_args,
        train_dataset=head_inputs(features),
        data_collator=partial(collate_cached_features, domain_statistics=domain_table),
        sample_weights=corpus_balancing_weights(features),
    ).train()


@torch.no_grad()
def task_logits(
    head: nn.Module,
    features: Dataset,
    num_inference_steps: int | None,
    batch_size: int = 256,
    domain_table: torch.Tensor | None = None,
) -> dict:
    """Every task's logits of `head` (in eval mode) on cached features, `{task: (num_clips, num_task_labels)}` (one
    task, `"label"`, for a single-task head); Gen-SER at `num_inference_steps`. Clips with a `domain` column are
    standardised with their domain's statistics (`domain_table`), others with the head's training pool's."""
    head.eval()
    device = next(head.parameters()).device
    kwargs = {} if num_inference_steps is None else {"num_inference_steps": num_inference_steps}
    collate = partial(collate_cached_features, domain_statistics=domain_table)
    batches = DataLoader(head_inputs(features, with_labels=False), batch_size, collate_fn=collate)
    logits = {}
    for batch in batches:
        batch = {key: value.to(device) for key, value in batch.items()}
        outputs = head(**batch, **kwargs)
        for task, values in (getattr(outputs, "task_logits", None) or {"label": outputs.logits}).items():
            logits.setdefault(task, []).append(values.float().cpu().numpy())
    return {task: np.concatenate(values) for task, values in logits.items()}


def classes_of(logits: dict) -> np.ndarray:
    """Predicted class indices from `task_logits`: `(num_clips,)`, or `(num_clips, num_tasks)` for several tasks."""
    classes = np.stack([values.argmax(-1) for values in logits.values()], -1)
    return classes[:, 0] if len(logits) == 1 else classes


def classes_within(logits: np.ndarray, label_ids: list[int]) -> np.ndarray:
    """The most likely of `label_ids` for each `(num_clips, num_labels)` row of one task's logits (e.g. the labels a
    held-out corpus shares with the training ones), as indices into all the labels."""
    return np.asarray(label_ids)[logits[:, label_ids].argmax(-1)]


def predict(head: nn.Module, features: Dataset, num_inference_steps: int | None, batch_size: int = 256) -> np.ndarray:
    """Predicted class indices of `head` (in eval mode) on cached features, `(num_clips,)`, or for a multi-task
    Gen-SER `(num_clips, num_tasks)`; Gen-SER at `num_inference_steps`."""
    return classes_of(task_logits(head, features, num_inference_steps, batch_size))


def train_and_predict(
    new_head: Callable[[], nn.Module],
    features: Dataset,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    training_args: TrainingArguments,
    step_counts: list[int | None],
    label_subsets: dict[str, list[int]] | None = None,
    domain_table: torch.Tensor | None = None,
    other_statistics: dict[str, tuple[np.ndarray, torch.Tensor]] | None = None,
    with_logits: bool = False,
    num_threads: int | None = None,
) -> tuple[dict, float]:
    """A fresh head from `new_head()` (seeded with `training_args.seed`) trained on the `train_rows` of `features`
    (a boolean mask), and its predictions on the `test_rows` per step count, and with `label_subsets` (name -> label
    ids) per `(step count, name)` within each subset too; also the training time in seconds. `with_logits`: also
    each subset's logits (`predict_subsets`).

    With domain normalisation (`domain_table`, `feature_cache.with_domains`) the test clips are predicted with their
    own domain's statistics (adapted), and again with the training pool's, as a lone clip would be: those
    predictions are keyed `("unadapted", key)`. `other_statistics` (name -> every clip's row in a table of
    statistics, and that table, e.g. `feature_cache.shrunk_domain_statistics`'s per speaker) predicts them again
    with those statistics, their domains unchanged: keyed `(name, key)`."""
    if num_threads:
        torch.set_num_threads(num_threads)
    set_seed(training_args.seed)
    head = new_head()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as fold_dir:
        train_rows = np.flatnonzero(train_rows)
        train_head(head, features.select(train_rows), head_training_arguments(training_args, fold_dir), domain_table)
    seconds = time.perf_counter() - started
    test_rows = np.flatnonzero(test_rows)
    test_features = features.select(test_rows)
    predict = partial(
        predict_subsets, head, step_counts=step_counts, label_subsets=label_subsets, with_logits=with_logits
    )
    predictions = predict(test_features, domain_table=domain_table)
    if domain_table is not None:
        unadapted = predict(test_features.remove_columns(DOMAIN_COLUMN))
        predictions.update({("unadapted", key): value for key, value in unadapted.items()})
    for name, (rows, table) in (other_statistics or {}).items():
        # Appended after the domains' own, so that each clip keeps its domain (its residual weights).
        with_rows = test_features.add_column(STATISTICS_ROW_COLUMN, (len(domain_table) + rows[test_rows]).tolist())
        other = predict(with_rows, domain_table=torch.cat([domain_table, table]))
        predictions.update({(name, key): value for key, value in other.items()})
    return predictions, seconds


def predict_subsets(
    head: nn.Module,
    features: Dataset,
    step_counts: list[int | None],
    label_subsets: dict[str, list[int]] | None = None,
    domain_table: torch.Tensor | None = None,
    with_logits: bool = False,
) -> dict:
    """`head`'s predictions on `features` per step count (a dimensional head's values, `(num_clips,
    num_dimensions)`), and per `(step count, name)` within each of `label_subsets` (labels of the first task, e.g. the
    emotions of an emotion and arousal head): one pass of the head per step count, whose logits the subsets
    restrict. `with_logits`: also those restricted logits, `(num_clips, len(label_ids))`, keyed `(step count, name,
    "logits")`, for corrections made after the head (`training.label_shift`)."""
    predictions = {}
    for steps in step_counts:
        logits = task_logits(head, features, steps, domain_table=domain_table)
        predictions[steps] = logits["label"] if head.config.problem_type == "regression" else classes_of(logits)
        for name, label_ids in (label_subsets or {}).items():
            first = next(iter(logits.values()))
            predictions[(steps, name)] = classes_within(first, label_ids)
            if with_logits:
                predictions[(steps, name, "logits")] = first[:, label_ids]
    return predictions


class FoldTask(NamedTuple):
    """One fold's training and prediction, `train_and_predict`'s arguments (see there); `train_rows` and `test_rows`
    are boolean masks over `features`."""

    new_head: Callable[[], nn.Module]
    features: Dataset
    train_rows: np.ndarray
    test_rows: np.ndarray
    training_args: TrainingArguments
    step_counts: list[int | None]
    label_subsets: dict[str, list[int]] | None = None
    domain_table: torch.Tensor | None = None
    other_statistics: dict[str, tuple[np.ndarray, torch.Tensor]] | None = None
    with_logits: bool = False


def run_folds(tasks: list[FoldTask], parallel_folds: int = 1) -> list[tuple[dict, float]]:
    """`train_and_predict(*task)` for every task, in order.

    With `parallel_folds` > 1, that many tasks run at once, each in its own process with an equal share of this
    process' CPU threads: a small head's training step is mostly fixed overhead that a second thread barely speeds
    up, so two folds on two cores take about the time of one. The heads' factories must then be picklable (a
    module-level function or a `functools.partial` of one). Results do not depend on `parallel_folds` beyond float
    rounding.
    """
    if parallel_folds <= 1:
        return [train_and_predict(*task) for task in tasks]
    threads = max(1, torch.get_num_threads() // parallel_folds)
    with ProcessPoolExecutor(parallel_folds, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(partial(train_and_predict, num_threads=threads), *zip(*tasks)))


def run_group_folds(
    new_head: Callable[[], nn.Module],
    features: Dataset,
    groups: np.ndarray,
    training_args: TrainingArguments,
    step_counts: list[int | None],
    num_folds: int = 0,
    parallel_folds: int = 1,
    label_subsets: Callable[[np.ndarray], dict[str, list[int]]] | None = None,
    domain_table: torch.Tensor | None = None,
    always_trained: np.ndarray | None = None,
    other_statistics: dict[str, tuple[np.ndarray, torch.Tensor]] | None = None,
    with_logits: bool = False,
) -> list[dict]:
    """Trains a head from `new_head()` per fold of whole groups (`group_folds`) and predicts the held-out ones
    (`parallel_folds`: `run_folds`). Per fold: its held-out groups, their row mask, its training time, its label
    subsets (`label_subsets(held_out_mask)`, e.g. the labels a held-out corpus shares with the training ones) and its
    own clips' predictions, `train_and_predict`'s (`other_statistics`, `with_logits`: see there)."""
    masks = group_folds(groups, num_folds, always_trained)
    subsets = [label_subsets(mask) if label_subsets else None for mask in masks]
    tasks = [
        FoldTask(new_head, features, ~mask, mask, training_args, step_counts, subset, domain_table, other_statistics,
                 with_logits)
        for mask, subset in zip(masks, subsets)
    ]  # fmt: skip
    folds = []
    for k, (mask, subset, (predictions, seconds)) in enumerate(zip(masks, subsets, run_folds(tasks, parallel_folds))):
        held_out_groups = sorted(set(groups[mask]))
        described = ", ".join(held_out_groups)
        logger.info("fold %d/%d (held out: %s) trained in %.1f s", k + 1, len(masks), described, seconds)
        folds.append({
            "fold": k, "groups": held_out_groups, "mask": mask, "train_seconds": seconds, "label_subsets": subset,
            "predictions": predictions,
        })  # fmt: skip
    return folds


def cross_validate_head(
    new_head: Callable[[], nn.Module],
    features: Dataset,
    groups: np.ndarray,
    training_args: TrainingArguments,
    step_counts: list[int | None],
    num_folds: int = 0,
    parallel_folds: int = 1,
    label_subsets: Callable[[np.ndarray], dict[str, list[int]]] | None = None,
    domain_table: torch.Tensor | None = None,
    always_trained: np.ndarray | None = None,
) -> tuple[dict, list[dict]]:
    """Trains a head from `new_head()` per fold and predicts the held-out groups (`run_group_folds`).

    Returns the pooled predictions, `{step count: (num_clips,) class indices}` (`None` for a classification head;
    `(num_clips, num_tasks)` for a multi-task head; `(num_clips, num_dimensions)` values for a dimensional one; within
    each of the folds' `label_subsets`, keyed `(step count, name)`), and the folds of `run_group_folds`. Rows of
    `always_trained` are never held out (`group_folds`), and their predictions stay zero.
    """
    folds = run_group_folds(
        new_head, features, groups, training_args, step_counts, num_folds, parallel_folds, label_subsets, domain_table,
        always_trained,
    )  # fmt: skip
    predictions = {}
    for fold in folds:
        for key, fold_prediction in fold["predictions"].items():
            if key not in predictions:
                predictions[key] = np.zeros((len(features), *fold_prediction.shape[1:]), dtype=fold_prediction.dtype)
            predictions[key][fold["mask"]] = fold_prediction
    return predictions, folds


def leave_one_corpus_out(
    new_head: Callable[[], nn.Module],
    features: Dataset,
    labels: list[str],
    training_args: TrainingArguments,
    step_counts: list[int | None],
    parallel_folds: int = 1,
    domain_table: torch.Tensor | None = None,
    other_statistics: dict[str, tuple[np.ndarray, torch.Tensor]] | None = None,
    with_logits: bool = False,
) -> list[dict]:
    """One fold per corpus (`CORPUS_COLUMN`): a head trained on the other corpora predicts it within the labels it
    shares with them and within the core emotions among those (`held_out_label_subsets`); the folds of
    `run_group_folds`. Only the first task (the emotions) is scored, so a corpus without it (an arousal corpus) is
    always trained on, never held out. With `--domain_residuals` the held-out corpus's residual weights get no
    training clip and stay zero: it is read with the shared weights, as any new corpus."""
    targets = first_task(features["labels"])
    return run_group_folds(
        new_head, features, np.asarray(features[CORPUS_COLUMN]), training_args, step_counts,
        parallel_folds=parallel_folds, label_subsets=partial(held_out_label_subsets, targets, labels),
        domain_table=domain_table, always_trained=targets == MISSING_LABEL, other_statistics=other_statistics,
        with_logits=with_logits,
    )  # fmt: skip


def chosen_budget(budget_scores: dict[int, dict]) -> int:
    """The step budget whose cross-validated first task's UA is best, the fewest steps on a tie (`budget_scores`: step
    budget -> every task's scores, `reports.target_scores`); a lone budget (a dimensional model's too) is returned."""
    if len(budget_scores) == 1:
        return next(iter(budget_scores))

    def ua(budget: int) -> float:
        return next(iter(budget_scores[budget].values()))["unweighted_accuracy"]

    return min(budget_scores, key=lambda budget: (-ua(budget), budget))


def held_out_label_subsets(targets: np.ndarray, labels: list[str], held_out: np.ndarray) -> dict[str, list[int]]:
    """The label ids a held-out corpus is scored on: those it shares with the training corpora (`"shared"`), and
    of those the core emotions (`"core"`, `CORE_EMOTIONS`)."""
    shared = sorted(set(targets[held_out].tolist()) & set(targets[~held_out].tolist()))
    return {"shared": shared, "core": [i for i in shared if labels[i] in CORE_EMOTIONS]}


def corpus_label_subsets(corpora: np.ndarray, targets: np.ndarray) -> dict[str, list[int]]:
    """Each corpus's own label ids, `{corpus: ids}`: a corpus's clips are scored in corpus on predictions made within
    its labels, as a user who knows them classifies with the pipeline's `candidate_labels`."""
    return {str(corpus): sorted(set(targets[corpora == corpus].tolist())) for corpus in sorted(set(corpora.tolist()))}


def held_out_corpus_scores(metric, folds: list[dict], targets: np.ndarray, labels: list[str], names: dict) -> dict:
    """Per held-out corpus (a fold of one group, `run_group_folds`) and label subset: its clips of those labels,
    scored on the fold's predictions made within them, per step count of `names` (step count -> name)."""
    scores = {}
    for fold in folds:
        (corpus,) = fold["groups"]
        scores[corpus] = {}
        held_out = targets[fold["mask"]]
        for subset, label_ids in fold["label_subsets"].items():
            rows = np.isin(held_out, label_ids)
            entry = {"labels": [labels[i] for i in label_ids], "clips": int(rows.sum())}
            for steps, name in names.items():
                # With domain normalisation, also as lone clips would be predicted: with the training pool's statistics.
                for variant, key in ((name, (steps, subset)), (f"{name}_unadapted", ("unadapted", (steps, subset)))):
                    if key in fold["predictions"]:
                        computed = metric.compute(
                            predictions=fold["predictions"][key][rows], references=held_out[rows], num_labels=len(labels)
                        )
                        entry[variant] = scalar_scores(computed)
            scores[corpus][subset] = entry
    return scores
