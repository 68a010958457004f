# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""What a training or evaluation run leaves behind for people: every task's scores, confusion matrices and the Hub
model card (with its description of the training data)."""

import json
import os
from pathlib import Path

import evaluate
import numpy as np
from huggingface_hub import EvalResult, ModelCard

from modeling_genser.taxonomy_encoding import MISSING_LABEL
from training.arguments import DataTrainingArguments
from training.data import CORPUS_COLUMN, label_names, speaker_groups
from training.sources import AROUSAL_COLUMN, EMOTION_AROUSAL, EMOTION_COLUMN, CorpusSource

METRICS_PATH = str(Path(__file__).parent / "metrics" / "ser_metrics")  # a local `evaluate` module: no Hub needed
# The repository's `model_card.md`, shipped inside this package (a link to it) so an installed copy writes cards too.
MODEL_CARD_TEMPLATE = Path(__file__).with_name("model_card.md")
SYNTHETIC_DATASET_NAME = "gen-ser-synthetic"  # the model card's name for the embedded corpus
CARD_METRICS = {"unweighted_accuracy": "Unweighted accuracy (UA)", "accuracy": "Accuracy (WA)", "macro_f1": "Macro F1"}
DIMENSIONAL_METRICS_PATH = str(Path(__file__).parent / "metrics" / "dimensional_metrics")
DIMENSIONAL_CARD_METRICS = {
    "ccc": "Concordance correlation (CCC)",
    "pearson": "Pearson correlation",
    "mae": "Mean absolute error",
    "level_unweighted_accuracy": "Unweighted accuracy of the nearest level",
}
# A dimension whose values take at most this many levels (e.g. BAVED's arousal 0, 1, 2) is read as an ordinal scale:
# its predictions are also scored as the nearest level, with a confusion matrix.
MAX_ORDINAL_LEVELS = 10


def save_confusion_matrix(matrix: list[list[int]], labels: list[str], stem: Path) -> None:
    """Writes `stem`.json (counts, rows = true class) and `stem`.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem.with_suffix(".json").write_text(json.dumps({"labels": labels, "matrix": matrix}, indent=2))
    counts = np.array(matrix)
    figure, axes = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.8 * len(labels)))
    axes.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        axes.text(j, i, str(value), ha="center", va="center", color="white" if value > counts.max() / 2 else "black")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.tight_layout()
    figure.savefig(stem.with_suffix(".png"), dpi=120)
    plt.close(figure)


def card_task_name(config, task: str) -> str:
    """A task's name in the model card: the first task is emotion; further tasks (e.g. arousal) are named by their
    label column. A dimensional model's tasks are its dimensions (e.g. arousal)."""
    if config.problem_type == "regression":
        return f"{task} regression"
    return f"{task} classification" if task in list(config.label_sets or [])[1:] else "Speech emotion recognition"


def card_labels(config) -> str:
    """The card's list of labels: every task's, named by task, for a multi-task model; else in class-index order."""
    if config.label_sets:
        return "; ".join(f"{task}: {', '.join(labels)}" for task, labels in config.tasks.items())
    return ", ".join(config.id2label[i] for i in range(config.num_labels))


def model_index_entries(
    dataset_name: str | list[str],
    evaluation_protocol: str,
    task_metrics: dict[str, dict[str, float]],
    corpus_metrics: dict[str, dict[str, dict[str, float]]] | None,
) -> list[tuple]:
    """One `(dataset, split, task, scores)` entry per figure set of the card's `model-index`: the model's own data
    under its protocol, or each corpus's figures. The Hub groups model-index results by task type, dataset and split,
    so each task's figures have a split of their own (the task named in it), and so an entry of their own under their
    own task name."""
    if corpus_metrics is None:
        several = len(task_metrics) > 1
        return [
            (dataset_name, f"{evaluation_protocol}, {task}" if several else evaluation_protocol, task, scores)
            for task, scores in task_metrics.items()
        ]
    return [
        (corpus, split, task, scores)
        for corpus, tasks in corpus_metrics.items()
        for task, splits in tasks.items()
        for split, scores in splits.items()
    ]


def eval_results(config, entries: list[tuple], card_metrics: dict[str, str]) -> list[EvalResult]:
    """The card's `model-index` results: every metric of `card_metrics` that each entry (`model_index_entries`)
    has, rounded to 4 decimals."""
    return [
        EvalResult(
            task_type="audio-classification",
            task_name=card_task_name(config, task),
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split=split,
            metric_type=key,
            metric_name=f"{name}, {split}",
            metric_value=round(float(scores[key]), 4),
        )
        for dataset, split, task, scores in entries
        for key, name in card_metrics.items()
        if key in scores
    ]


def metric_tables(
    config, task_metrics: dict[str, dict[str, float]], card_metrics: dict[str, str], evaluation_protocol: str
) -> list[str]:
    """One markdown table of `card_metrics` per task, headed by the task's name where there are several."""
    tables = []
    for task, scores in task_metrics.items():
        rows = "\n".join(f"| {name} | {scores[key]:.4f} |" for key, name in card_metrics.items() if key in scores)
        heading = f"{card_task_name(config, task)} (`{task}`)\n\n" if len(task_metrics) > 1 else ""
        tables.append(f"{heading}| metric ({evaluation_protocol}) | value |\n| --- | --- |\n{rows}")
    return tables


def write_model_card(
    output_dir: str | Path,
    config,
    metrics: dict[str, float],
    dataset_name: str | list[str],
    evaluation_description: str,
    training_data_description: str,
    evaluation_protocol: str,
    training_data_limitations: str | None = None,
    repo_id: str | None = None,
    task_metrics: dict[str, dict[str, float]] | None = None,
    corpus_metrics: dict[str, dict[str, dict[str, float]]] | None = None,
    extra_evaluation: str | None = None,
) -> ModelCard:
    """Fills `model_card.md` for a saved model and writes it as the Hub model card, `output_dir/README.md`.

    `metrics` are the measured figures (keys of `CARD_METRICS`; of `DIMENSIONAL_CARD_METRICS` for a dimensional
    model, whose `task_metrics` are its dimensions', `dimension_scores`); they go into the card's `model-index`,
    labelled with `evaluation_protocol` (e.g. "leave-one-speaker-out cross-validation, 10 folds") as split and metric
    name.
    A multi-task model gives every task's figures as `task_metrics` (`{task: metrics}`, the first task's being
    `metrics`): each task's metrics go into `model-index` with the task in their split, and get a table.
    `training_data_limitations` is a sentence (no final stop) on what the training data rules out, if known.
    A model of several corpora (`dataset_name` a list) gives each corpus's figures as `corpus_metrics`
    (`{corpus: {task: {split: metrics}}}`): `model-index` then holds those, one dataset per corpus; `extra_evaluation`
    (markdown) follows the evaluation's tables. Every `model-index` entry names its own task: speech emotion
    recognition for the first task, classification (or regression, for a dimensional model) of the others.
    """
    output_dir = Path(output_dir)
    # The Hub id the model is pushed to (--hub_model_id); without one the Trainer pushes to the user's namespace.
    repo_id = repo_id or f"<your-namespace>/{output_dir.name}"
    template = ModelCard.load(MODEL_CARD_TEMPLATE)
    data = template.data
    data.model_name = output_dir.name
    data.datasets = [dataset_name] if isinstance(dataset_name, str) else list(dataset_name)
    dimensional = config.problem_type == "regression"
    data.metrics = ["pearsonr", "mae"] if dimensional else ["accuracy", "f1"]
    data.base_model = config.encoder_name_or_path
    card_metrics = DIMENSIONAL_CARD_METRICS if dimensional else CARD_METRICS
    task_metrics = task_metrics or {"": metrics}
    entries = model_index_entries(dataset_name, evaluation_protocol, task_metrics, corpus_metrics)
    data.eval_results = eval_results(config, entries, card_metrics)
    tables = metric_tables(config, task_metrics, card_metrics, evaluation_protocol)
    card = ModelCard.from_template(
        data,
        template_str=f"---\n{{{{ card_data }}}}\n---\n\n{template.text.lstrip()}",
        model_name=output_dir.name,
        encoder=config.encoder_name_or_path or f"{config.encoder_config.model_type} (trained from scratch)",
        labels=card_labels(config),
        tasks=list(config.label_sets or []),
        repo_id=repo_id,
        domain_normalization=config.domain_normalization,
        domain_names=config.domain_names or [],
        value_range=config.value_range if dimensional else None,
        training_data=training_data_description,
        training_data_limitations=training_data_limitations,
        evaluation="\n\n".join([evaluation_description, *tables, *([extra_evaluation] if extra_evaluation else [])]),
    )
    card.save(output_dir / "README.md")
    return card


def task_scores(metric, predictions, references, tasks: dict[str, list[str]]) -> dict[str, dict]:
    """Every task's metrics (`tasks`: name -> labels, in order) from class indices of shape `(num_clips,)` or
    `(num_clips, num_tasks)`, each over the clips that have that task's label (not `MISSING_LABEL`); a task no clip
    has a label for (a saved model's task that new data does not label) has no figures, not zeros."""
    predictions = np.asarray(predictions).reshape(len(predictions), len(tasks))
    references = np.asarray(references).reshape(len(references), len(tasks))
    scores = {}
    for t, (task, labels) in enumerate(tasks.items()):
        rows = references[:, t] != MISSING_LABEL
        if rows.any():
            scores[task] = metric.compute(
                predictions=predictions[rows, t], references=references[rows, t], num_labels=len(labels)
            )
    return scores


def ordinal_levels(values: np.ndarray) -> list[float] | None:
    """The distinct values of a dimension's references when they are few (`MAX_ORDINAL_LEVELS`): the levels of an
    ordinal scale. None for continuous values."""
    levels = np.unique(values)
    return levels.tolist() if len(levels) <= MAX_ORDINAL_LEVELS else None


def nearest_levels(values: np.ndarray, levels: list[float]) -> np.ndarray:
    """The index of the nearest of `levels` for each of `values`, `(num_values,)`."""
    return np.abs(np.asarray(values, dtype=np.float64)[:, None] - np.asarray(levels)[None]).argmin(-1)


def dimension_scores(predictions, references, dimensions: list[str]) -> dict[str, dict]:
    """Every dimension's CCC, Pearson and MAE (`metrics/dimensional_metrics`) from values of shape `(num_clips,)` or
    `(num_clips, num_dimensions)`; where a dimension's references take few values (`ordinal_levels`), also its
    predictions read as the nearest level: the `levels`, their `confusion_matrix` (rows = true level) and
    `level_unweighted_accuracy` (mean per-level recall)."""
    dimensional, levelled = evaluate.load(DIMENSIONAL_METRICS_PATH), evaluate.load(METRICS_PATH)
    predictions = np.asarray(predictions, dtype=np.float64).reshape(len(predictions), len(dimensions))
    references = np.asarray(references, dtype=np.float64).reshape(len(references), len(dimensions))
    scores = {}
    for d, dimension in enumerate(dimensions):
        scores[dimension] = dimensional.compute(predictions=predictions[:, d], references=references[:, d])
        levels = ordinal_levels(references[:, d])
        if levels is not None:
            level_scores = levelled.compute(
                predictions=nearest_levels(predictions[:, d], levels),
                references=nearest_levels(references[:, d], levels),
                num_labels=len(levels),
            )
            scores[dimension].update(
                levels=levels,
                confusion_matrix=level_scores["confusion_matrix"],
                level_unweighted_accuracy=level_scores["unweighted_accuracy"],
            )
    return scores


def confusion_labels(scores: dict, labels: list[str] | None) -> list[str]:
    """The row and column names of a confusion matrix in `scores`: a dimension's levels, else the task's `labels`."""
    return [f"{level:g}" for level in scores["levels"]] if "levels" in scores else labels


def scalar_scores(scores: dict) -> dict:
    """`scores` without its lists (confusion matrix, levels): the figures to log and save as metrics."""
    return {key: value for key, value in scores.items() if not isinstance(value, list)}


def summary(scores: dict) -> str:
    """One task's (dimension's) headline figures as one line of text."""
    if "ccc" in scores:
        level = f"  level UA {scores['level_unweighted_accuracy']:.4f}" if "levels" in scores else ""
        return f"CCC {scores['ccc']:.4f}  Pearson {scores['pearson']:.4f}  MAE {scores['mae']:.4f}{level}"
    return f"UA {scores['unweighted_accuracy']:.4f}  WA {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']:.4f}"


def target_scores(
    metric, predictions, references, tasks: dict[str, list[str]], dimensions: list[str] | None = None
) -> dict[str, dict]:
    """Every task's metrics from class indices (`task_scores`), or with `dimensions` every dimension's from values
    (`dimension_scores`)."""
    if dimensions:
        return dimension_scores(predictions, references, dimensions)
    return task_scores(metric, predictions, references, tasks)


def card_dataset_name(dataset_name: str | None) -> str:
    """The `datasets` entry of the model card: a Hub id as given, a local folder or manifest by its name."""
    if dataset_name is None:
        return SYNTHETIC_DATASET_NAME
    return Path(dataset_name).stem if os.path.exists(dataset_name) else dataset_name


def describe_corpora(train, corpora: dict) -> str:
    """The model card's "Training data" for several corpora: each one's language, clips, speakers and labels (with
    the arousal task, an arousal corpus's rated levels, and the derived levels of the emotion corpora said so)."""
    rows = []
    arousal = AROUSAL_COLUMN in train.column_names
    for name, source in corpora.items():
        part = train.filter(lambda corpus: corpus == name, input_columns=CORPUS_COLUMN)
        if source.target == "arousal":
            labels = "arousal levels (rated): " + ", ".join(label_names(part, AROUSAL_COLUMN))
        else:
            labels = ", ".join(label_names(part, EMOTION_COLUMN)) + ("; arousal derived from them" if arousal else "")
        speakers = len(set(part["speaker"]))
        rows.append(f"| {name} | {source.language} | {len(part)} | {speakers} | {labels} | {source.licence} |")
    descriptions = "\n".join(f"- {name}: {source.description}." for name, source in corpora.items())
    derivation = (
        "\n\nArousal levels of the emotion corpora are derived from their emotions, not rated "
        f"({', '.join(f'{emotion}: {level}' for emotion, level in EMOTION_AROUSAL.items())}): they say what an "
        "emotion usually carries, not how aroused a clip sounds."
        if arousal else ""
    )
    return (
        f"{len(train)} clips of {len(corpora)} corpora, each corpus's labels mapped onto one vocabulary, drawn "
        "balanced over corpus and class in training:\n\n| corpus | language | clips | speakers | labels | licence |\n"
        f"| --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + f"\n\n{descriptions}{derivation}"
    )


def describe_training_data(
    data_args: DataTrainingArguments, train, labels: list[str], seed: int, corpus: CorpusSource | dict | None
) -> str:
    """The model card's "Training data" paragraph."""
    if isinstance(corpus, dict):
        return describe_corpora(train, corpus)
    group = data_args.group_column_name
    has_groups = group and set(group.split("+")) <= set(train.column_names)  # e.g. an eval split without speakers
    speakers = f" from {len(set(speaker_groups(train, group)))} speakers" if has_groups else ""
    targets = "values of" if data_args.dimensions else "labels"  # a dimensional model's labels are its dimensions
    clips = f"{len(train)} clips{speakers}, {targets} {', '.join(labels)}"
    if data_args.dataset_name:
        source = f"{clips}, from `{card_dataset_name(data_args.dataset_name)}` (split {data_args.train_split_name!r})"
        return f"{source}: {corpus.description}." if corpus else f"{source}."
    return (
        f"{clips}, from the project's synthetic corpus (`training/synthetic_corpus.py`, seed {seed}). It is not "
        "speech: source-filter vowel strings with no words and no language, whose prosody (pitch level and range, "
        "tempo, loudness, voice quality) changes with the emotion the way acted speech tends to."
    )


def describe_adaptation(source: str, saved_config, new_labels: list[str], new_domains: list[str]) -> str:
    """The model card's sentence on the saved model a run went on from (`--model_name_or_path`, whose config is
    `saved_config`): what it was, and what the data added to it (labels, `--new_labels`; domains,
    `--domain_residuals`)."""
    tasks = "; ".join(f"{task}: {', '.join(labels)}" for task, labels in saved_config.tasks.items())
    text = f"Adapted from `{source}` (its labels: {tasks}) by training its head further on the data below"
    if new_labels:
        text += f", which taught it the new label(s) {', '.join(new_labels)}"
    if new_domains:
        named = ", ".join(f"`{domain}`" for domain in new_domains)
        text += (
            f". The data is its new domain {named}, with residual weights of its own (the pipeline's `domain=` reads "
            "a clip with them; its default, the shared weights, did better after a few-shot adaptation: "
            "`BENCHMARKS.md`)"
        )
    if saved_config.domain_normalization:
        text += ". A clip classified without statistics of its own is standardised with those of the data below"
    return text + "."


def training_data_limitations(data_args: DataTrainingArguments, corpus: CorpusSource | dict | None) -> str | None:
    """What the training data rules out, for the model card's Limitations (None when nothing is known of it)."""
    if data_args.dataset_name is None:
        return (
            "Trained on the project's synthetic corpus, the model has never heard speech: it is a pipeline "
            "demonstration only"
        )
    if isinstance(corpus, dict):
        languages = ", ".join(sorted({source.language for source in corpus.values()}))
        return (
            f"Trained on {', '.join(corpus)} only ({languages}): speech unlike theirs (other languages, recording "
            "conditions, natural conversation, children's voices) is classified less well; classify a collection with "
            "its own statistics (adaptation) where you can"
        )
    return corpus.limitations if corpus else None
