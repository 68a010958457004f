# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""How `run_genser.py`'s job evaluates its model, and the state its steps pass on (`Job`).

- `leave_one_speaker_out` (`cross_validated_evaluation`): each step budget cross-validated over speaker folds
  (a fresh head per fold, predictions pooled), the best budget's figures, each corpus's (in corpus, and with
  `--leave_one_corpus_out` zero-shot) for a model of several corpora; then the release model trained on every clip.
- `held_out_speakers` (`held_out_evaluation`): the model trained, then scored on the held-out speakers.
"""

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from datasets import Dataset
from torch import nn
from transformers import FeatureExtractionMixin, Trainer, TrainingArguments

from modeling_genser import GenSERConfig, GenSERForAudioClassification
from modeling_genser.taxonomy_encoding import MISSING_LABEL
from training.arguments import DataTrainingArguments, ModelArguments
from training.data import AROUSAL_DERIVED_COLUMN, CORPUS_COLUMN, speaker_groups
from training.folds import (
    chosen_budget,
    corpus_label_subsets,
    cross_validate_head,
    first_task,
    held_out_corpus_scores,
    leave_one_corpus_out,
    predict,
    task_logits,
)
from training.heads import new_head
from training.model_construction import new_genser_head
from training.reports import scalar_scores, target_scores
from training.sources import AROUSAL_COLUMN, CorpusSource

logger = logging.getLogger(__name__)


@dataclass
class Job:
    """What the steps of `main` pass on: the arguments (`resolve_sources`'), the data's clips and, with the feature
    cache, their encoder features, the model and its label space (a saved model's, going on from it)."""

    model_args: ModelArguments
    data_args: DataTrainingArguments
    corpus: CorpusSource | dict | None
    encoder_hub_id: str | None
    training_args: TrainingArguments
    train: Dataset | None = None
    evaluation: Dataset | None = None  # None with leave_one_speaker_out
    labels: list[str] | None = None  # the model's (first task's) labels
    data_labels: list[str] | None = None  # the data's
    label_sets: dict[str, list[str]] | None = None
    tasks: dict[str, list[str]] | None = None
    value_range: list[float] | None = None
    dataset_name: str | None = None
    data_domains: list[str] | None = None
    residual_domains: list[str] | None = None
    model: GenSERForAudioClassification | None = None
    feature_extractor: FeatureExtractionMixin | None = None
    saved_config: GenSERConfig | None = None  # the model going on, as it was saved
    train_data: Dataset | None = None  # the feature cache's rows of `train` and `evaluation`
    evaluation_data: Dataset | None = None
    domain_table: torch.Tensor | None = None
    encoding_seconds: float = 0.0

    @property
    def corpora(self) -> dict | None:
        return self.corpus if isinstance(self.corpus, dict) else None

    @property
    def use_feature_cache(self) -> bool:
        return self.model_args.freeze_encoder and self.data_args.use_feature_cache

    @property
    def leave_one_speaker_out(self) -> bool:
        return self.data_args.evaluation_protocol == "leave_one_speaker_out"

    @property
    def steps(self) -> int:
        """The model's sampling steps, which every fold's head predicts with."""
        return self.model.config.num_inference_steps


@dataclass
class Evaluation:
    """What the evaluation measured, for the log, the metrics files and the model card."""

    metrics: dict
    all_scores: dict  # every task's scores, `reports.target_scores`
    protocol: str
    description: str
    train_metrics: dict
    example_clips: Dataset
    example_note: str
    held_out_predictions: np.ndarray | None = None
    corpus_metrics: dict | None = None
    extra_evaluation: str | None = None


def fold_head_factory(job: Job) -> Callable[[], nn.Module]:
    """How each cross-validation fold gets a fresh Gen-SER head like the model. A new model's head on cached features
    reads no encoder weight: it is built from the model's config, which draws the same initial weights as building
    the model (`new_genser_head`) does, without reading the encoder from disk again. Going on from a saved model (its
    weights) or training the encoder's top layers (the pretrained ones), each fold builds the model."""
    if job.model_args.model_name_or_path or job.model.config.trainable_encoder_layers:
        return partial(
            new_genser_head, job.model_args, job.labels, job.label_sets, job.residual_domains, job.value_range
        )
    return partial(new_head, "genser", copy.deepcopy(job.model.config))


def cross_validated_predictions(job: Job, training_args: TrainingArguments, label_subsets=None) -> tuple[dict, int]:
    """Every clip's prediction by a fresh Gen-SER head trained on the other speakers' cached features (with
    `training_args`' budget), at the model's sampling steps, keyed `job.steps` (one class index per task with
    `label_sets`; a dimensional head's values) and, within each of `label_subsets` (name -> label ids), `(steps,
    name)`; and the number of folds."""
    data_args, features = job.data_args, job.train_data
    if data_args.group_column_name:
        groups = speaker_groups(features, data_args.group_column_name)
    else:  # the data names no speaker (`--group_column_name ""`): folds of clips
        groups = np.arange(len(features)).astype(str)
    predictions, folds = cross_validate_head(
        fold_head_factory(job), features, groups, training_args, [job.steps], data_args.num_folds,
        data_args.parallel_folds, domain_table=job.domain_table,
        label_subsets=None if label_subsets is None else lambda held_out: label_subsets,
    )  # fmt: skip
    return predictions, len(folds)


def adaptation_gain(metric, job: Job, held_out_predictions) -> tuple[float, float]:
    """Going on from the saved model `job.source` (the model not yet trained further): the first task's UA on the
    clips of the labels it had, zero-shot (the data's statistics, predictions within its labels) and cross-validated
    after adaptation (`held_out_predictions`, among every label). An adaptation that loses against its start is a
    warning."""
    source, model = job.model_args.model_name_or_path, job.model
    saved = len(next(iter(job.saved_config.tasks.values())))
    targets = first_task(job.train_data["labels"])
    rows = (targets != MISSING_LABEL) & (targets < saved)
    clips = job.train_data.select(np.flatnonzero(rows))
    logits = next(iter(task_logits(model, clips, None, domain_table=job.domain_table).values()))
    before, after = (
        metric.compute(predictions=predicted, references=targets[rows], num_labels=len(model.config.id2label))
        for predicted in (logits[:, :saved].argmax(-1), held_out_predictions[rows])
    )
    before, after = before["unweighted_accuracy"], after["unweighted_accuracy"]
    print(f"\nOn the clips of {source}'s labels: UA {before:.4f} before adaptation, {after:.4f} after (folds)")
    if after < before:
        logger.warning(
            "Adaptation lost against %s on your held-out clips (UA %.4f after, %.4f before): label more clips (more "
            "speakers), or keep %s and classify your collection with its statistics (genser-annotate --adapt).",
            source, after, before, source,
        )
    return before, after


def held_out_corpus_figures(job: Job, metric) -> dict:
    """Each corpus scored zero-shot by a Gen-SER head trained on the others (`folds.leave_one_corpus_out`), on the
    labels it shares with them and on the core emotions among those; with domain normalisation, with its own
    statistics and, as `genser_unadapted`, with the training pool's. A multi-task head is scored on its first task,
    the emotions."""
    folds = leave_one_corpus_out(
        fold_head_factory(job), job.train_data, job.labels, job.training_args, [job.steps],
        job.data_args.parallel_folds, job.domain_table,
    )  # fmt: skip
    targets = first_task(job.train_data["labels"])
    return held_out_corpus_scores(metric, folds, targets, job.labels, {job.steps: "genser"})


def corpus_figures(job: Job, predictions: dict, protocol: str, metric) -> tuple[dict, str]:
    """Each corpus's figures for the model card of a model of several corpora: its own clips' cross-validated
    `predictions` (`cross_validated_predictions` with `folds.corpus_label_subsets`), made within its labels and among
    all of them, and, with `--leave_one_corpus_out`, its zero-shot scores; a multi-task model's further tasks on each
    corpus's clips too, the arousal task marked rated (an arousal corpus) or derived (from the emotions). Returns
    `{corpus: {task: {split: metrics}}}` and their markdown tables."""
    features, label_sets, steps = job.train_data, job.label_sets, job.steps
    corpora, targets = np.asarray(features[CORPUS_COLUMN]), np.asarray(features["labels"]).reshape(len(features), -1)
    classes = predictions[steps].reshape(len(features), -1)
    first = next(iter(label_sets)) if label_sets else job.data_args.label_column_name
    further_tasks = list(label_sets.items())[1:] if label_sets else []
    derived = np.asarray(features[AROUSAL_DERIVED_COLUMN]) if AROUSAL_DERIVED_COLUMN in features.column_names else None
    in_corpus, corpus_metrics, task_rows = {}, {}, []
    for corpus in sorted(set(features[CORPUS_COLUMN])):  # Python strings, for the card's YAML
        rows = corpora == corpus
        corpus_metrics[corpus] = {}
        if (steps, corpus) in predictions:  # a corpus with emotion labels (an arousal corpus has none)
            figures = {}
            for name, predicted in (("its labels", predictions[(steps, corpus)]), ("all labels", classes[:, 0])):
                computed = metric.compute(
                    predictions=predicted[rows], references=targets[rows, 0], num_labels=len(job.labels)
                )
                figures[name] = scalar_scores(computed)
            in_corpus[corpus] = {"clips": int(rows.sum()), **figures}
            corpus_metrics[corpus][first] = {f"{protocol}, {name}": scores for name, scores in figures.items()}
        for t, (task, task_labels) in enumerate(further_tasks, start=1):
            computed = metric.compute(
                predictions=classes[rows, t], references=targets[rows, t], num_labels=len(task_labels)
            )
            named = task
            if task == AROUSAL_COLUMN and derived is not None:
                named = f"{task} ({'derived' if derived[rows].all() else 'rated'})"
            scores = scalar_scores(computed)
            corpus_metrics[corpus][task] = {f"{protocol}, {named}": scores}
            task_rows.append(f"| {corpus} | {named} | {int(rows.sum())} | {scores['unweighted_accuracy']:.4f} |")
    held_out = held_out_corpus_figures(job, metric) if job.data_args.leave_one_corpus_out else None
    statistics_of = {"genser": "own statistics", "genser_unadapted": "training pool's statistics"}
    for corpus, subsets in (held_out or {}).items():
        corpus = str(corpus)
        for subset, entry in subsets.items():
            for variant, statistics in statistics_of.items():
                if variant in entry:
                    split = f"leave-one-corpus-out, {subset} labels, {statistics}"
                    corpus_metrics[corpus].setdefault(first, {})[split] = entry[variant]
    return corpus_metrics, corpus_tables(in_corpus, held_out, task_rows)


def corpus_tables(in_corpus: dict, held_out: dict | None, task_rows: list[str]) -> str:
    """Markdown tables of each corpus's in-corpus figures, its further tasks' (`task_rows`) and, when measured, its
    zero-shot (held-out) ones."""
    lines = [
        "| corpus | clips | in-corpus UA, its labels | WA, its labels | UA, all labels |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {c} | {m['clips']} | {m['its labels']['unweighted_accuracy']:.4f} | {m['its labels']['accuracy']:.4f} | "
        f"{m['all labels']['unweighted_accuracy']:.4f} |"
        for c, m in in_corpus.items()
    ]
    if task_rows:
        lines += ["", "| corpus | task | clips | in-corpus UA |", "| --- | --- | --- | --- |", *task_rows]
    if held_out:
        lines += [
            "",
            "| held-out corpus | labels | clips | UA, own statistics | UA, training pool's |",
            "| --- | --- | --- | --- | --- |",
        ]
        for corpus, subsets in held_out.items():
            for subset, entry in subsets.items():
                unadapted = entry.get("genser_unadapted", {}).get("unweighted_accuracy")
                lines.append(
                    f"| {corpus} | {subset}: {', '.join(entry['labels'])} | {entry['clips']} | "
                    f"{entry['genser']['unweighted_accuracy']:.4f} | {'-' if unadapted is None else f'{unadapted:.4f}'} |"
                )
    return "\n".join(lines)


def cross_validated_budgets(job: Job, metric) -> tuple[dict, int]:
    """Each step budget's cross-validation (`--max_steps_candidates`, else `--max_steps`): `{budget: (fold
    predictions, number of folds, every task's scores)}`, and the budget chosen (`folds.chosen_budget`)."""
    # Each corpus is also predicted within its own (first task's) labels, as its users would with
    # `candidate_labels`; an arousal corpus has no emotion labels to be scored on.
    corpus_subsets = None
    if job.corpora:
        emotions = first_task(job.train_data["labels"])
        scored = emotions != MISSING_LABEL
        corpus_subsets = corpus_label_subsets(np.asarray(job.train_data[CORPUS_COLUMN])[scored], emotions[scored])
    budgets = {}
    references = np.asarray(job.train["labels"])
    for budget in job.data_args.step_budgets or [job.training_args.max_steps]:
        budget_args = copy.copy(job.training_args)
        budget_args.max_steps = budget
        fold_predictions, num_folds = cross_validated_predictions(job, budget_args, corpus_subsets)
        predicted = fold_predictions[job.steps]
        budget_scores = target_scores(metric, predicted, references, job.tasks, job.data_args.dimensions)
        budgets[budget] = fold_predictions, num_folds, budget_scores
    return budgets, chosen_budget({budget: entry[2] for budget, entry in budgets.items()})


def cross_validation_protocol(data_args: DataTrainingArguments, num_folds: int) -> tuple[str, str]:
    """The protocol's name, and its folds described for the model card."""
    if not data_args.group_column_name:
        return f"cross-validation over clips, {num_folds} folds", (
            f"{num_folds} folds of clips, dealt round-robin (the data names no speaker, so a speaker's clips may "
            "be on both sides of a fold and the figures overstate what the model does on new speakers)"
        )
    if data_args.num_folds:
        return f"speaker-independent cross-validation, {num_folds} folds", (
            f"{num_folds} folds of whole speakers, dealt round-robin in sorted order (column "
            f"{data_args.group_column_name!r})"
        )
    return (
        f"leave-one-speaker-out cross-validation, {num_folds} folds",
        f"{num_folds} folds, one per speaker (column {data_args.group_column_name!r})",
    )


def cross_validation_description(job: Job, budgets: dict, chosen: int, num_folds: int, gain) -> str:
    """The model card's evaluation paragraph for cross-validated figures; with several step budgets it names each
    one's UA, which it prints too."""
    folds_described = cross_validation_protocol(job.data_args, num_folds)[1]
    description = (
        f"Cross-validation by `training/run_genser.py`: {folds_described}. Each fold trains a fresh head with this "
        f"model's configuration on the other folds' clips and predicts its own, at {job.steps} sampling step(s); the "
        f"figures pool the predictions of all folds ({len(job.train)} clips). The released model was then trained on "
        "every clip: no figure here was measured on clips the scoring head was trained on."
    )
    if len(budgets) > 1:
        tried = ", ".join(
            f"{budget} steps UA {next(iter(entry[2].values()))['unweighted_accuracy']:.4f}"
            for budget, entry in budgets.items()
        )
        print(f"\nStep budgets on the folds: {tried}; the saved model trains with {chosen} steps")
        description += (
            f" Its step budget, {chosen}, was chosen among --max_steps_candidates by these folds ({tried}), so "
            "they flatter it slightly."
        )
    if gain:
        description += (
            f" On the clips of the labels `{job.model_args.model_name_or_path}` had, it scored UA {gain[0]:.4f} "
            f"before this training (with the data's statistics) and {gain[1]:.4f} after (cross-validated)."
        )
    return description


def cross_validated_evaluation(job: Job, trainer: Trainer, metric) -> Evaluation:
    """`leave_one_speaker_out`: the folds of each step budget, the chosen budget's figures (every corpus's too), then
    the release model trained on every clip with that budget."""
    budgets, chosen = cross_validated_budgets(job, metric)
    job.training_args.max_steps = chosen  # the Trainer's own arguments: the saved model trains with the chosen budget
    fold_predictions, num_folds, all_scores = budgets[chosen]
    held_out_predictions = first_task(fold_predictions[job.steps])
    metrics = {
        f"loso_{key}" if i == 0 else f"loso_{task}_{key}": value
        for i, (task, task_metrics) in enumerate(all_scores.items())
        for key, value in scalar_scores(task_metrics).items()
    }
    gain = None
    if job.model_args.model_name_or_path and not job.data_args.dimensions:
        gain = adaptation_gain(metric, job, held_out_predictions)
        for name, value in zip(("before", "after"), gain):
            metrics[f"loso_{name}_adaptation_unweighted_accuracy"] = value
    trainer.save_metrics("loso", metrics)
    protocol = cross_validation_protocol(job.data_args, num_folds)[0]
    description = cross_validation_description(job, budgets, chosen, num_folds, gain)
    corpus_metrics, extra_evaluation = None, None
    if job.corpora:
        corpus_metrics, extra_evaluation = corpus_figures(job, fold_predictions, protocol, metric)
        print(f"\nEach corpus's figures:\n{extra_evaluation}")
    logger.info("Training the release model on all %d clips of %d folds", len(job.train), num_folds)
    train_metrics = trainer.train(resume_from_checkpoint=job.training_args.resume_from_checkpoint).metrics
    return Evaluation(
        metrics, all_scores, protocol, description, train_metrics, job.train,
        "clips the released model was trained on; each also has a held-out prediction", held_out_predictions,
        corpus_metrics, extra_evaluation,
    )  # fmt: skip


def held_out_evaluation(job: Job, trainer: Trainer, metric) -> Evaluation:
    """`held_out_speakers`: the model trained, then scored on the held-out speakers or the evaluation split."""
    data_args = job.data_args
    train_metrics = trainer.train(resume_from_checkpoint=job.training_args.resume_from_checkpoint).metrics
    prediction = trainer.predict(trainer.eval_dataset, metric_key_prefix="eval")
    trainer.save_metrics("eval", prediction.metrics)
    # Every task's predictions from the cached features (the Trainer keeps only the first task's logits).
    if job.label_sets:
        predicted = predict(job.model, job.evaluation_data, None)
    else:  # a dimensional model's values, or the logits' classes
        predicted = prediction.predictions if data_args.dimensions else prediction.predictions.argmax(-1)
    all_scores = target_scores(metric, predicted, prediction.label_ids, job.tasks, data_args.dimensions)
    protocol = "held-out speakers" if not data_args.eval_split_name else f"{data_args.eval_split_name} split"
    split = (
        f"the {data_args.eval_split_name!r} split"
        if data_args.eval_split_name
        else f"{len(job.evaluation)} clips of held-out speakers (column {data_args.group_column_name!r})"
    )
    return Evaluation(
        prediction.metrics, all_scores, protocol, f"Measured by `training/run_genser.py` on {split}.", train_metrics,
        job.evaluation, "held-out clips",
    )  # fmt: skip
