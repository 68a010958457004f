# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Loading labelled audio for Gen-SER training: datasets, label sets, speaker-independent splits, batching."""

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Value, concatenate_datasets, load_dataset
from tqdm.auto import tqdm
from torch.utils.data import WeightedRandomSampler
from transformers import FeatureExtractionMixin, Trainer

from modeling_genser.taxonomy_encoding import MISSING_LABEL
from pipelines.audio_input import load_audio, speech_encoder_inputs

logger = logging.getLogger(__name__)


MANIFEST_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json"}


def load_audio_dataset(
    dataset_name: str, dataset_config_name: str | None = None, audio_column_name: str = "audio"
) -> DatasetDict:
    """Labelled audio from one of three sources:

    - a CSV / JSON / JSON-lines manifest with one row per clip, whose audio column holds file paths (relative paths
      are read from the manifest's folder);
    - a Hub dataset id (with an optional configuration), or a local directory laid out like one: an ``audiofolder``
      (labels from ``metadata.csv`` or class sub-folders) or a dataset repository (e.g. Parquet files).
    """
    path = Path(dataset_name)
    if path.suffix in MANIFEST_BUILDERS and path.is_file():
        dataset = load_dataset(MANIFEST_BUILDERS[path.suffix], data_files=str(path))
        for split in dataset.values():
            require_column(split, audio_column_name, "audio_column_name", dataset_name)
        dataset = dataset.map(
            lambda row: {audio_column_name: str((path.parent / row[audio_column_name]).resolve())},
            desc="Resolving manifest paths",
        )
        # Manifests load paths as large_string, which datasets 5.2 cannot cast to Audio directly.
        dataset = dataset.cast_column(audio_column_name, Value("string")).cast_column(audio_column_name, Audio())
    else:
        dataset = load_dataset(dataset_name, dataset_config_name)
    for split in dataset.values():
        require_column(split, audio_column_name, "audio_column_name", dataset_name)
    return dataset


def require_column(dataset: Dataset, column: str, argument: str, source: str) -> None:
    if column not in dataset.column_names:
        raise ValueError(
            f"Column {column!r} not found in {source!r}; its columns are {dataset.column_names}. "
            f"Pass the right one with --{argument}."
        )


def drop_unreadable_audio(dataset: Dataset, audio_column_name: str, on_error: str = "raise") -> Dataset:
    """Decodes every clip once; unreadable ones are reported by file and either raise (`"raise"`) or are dropped
    with a warning naming each of them (`"skip"`). Nothing is dropped silently. For audio decoded on the fly in
    training; the feature cache checks each clip as it encodes it (`feature_cache.add_encoder_features`)."""
    check_unreadable_audio_option(on_error)
    raw = dataset.cast_column(audio_column_name, Audio(decode=False))
    failures = {}
    for index, value in enumerate(tqdm(raw[audio_column_name], desc="Checking audio", unit="clip")):
        try:
            decoder = Audio().decode_example(value)
            if decoder.get_all_samples().data.numel() == 0:
                raise ValueError("no samples")
        except Exception as error:  # noqa: BLE001  (any decoding failure is reported per file)
            failures[index] = (value, f"{type(error).__name__}: {error}")
    if not failures:
        return dataset
    report_unreadable_audio(failures, on_error)
    return dataset.select([i for i in range(len(dataset)) if i not in failures])


def check_unreadable_audio_option(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f'on_error must be "raise" or "skip", got {on_error!r}.')


def report_unreadable_audio(failures: dict[int, tuple[dict, str]], on_error: str) -> None:
    """Names every unreadable clip (`{row: (undecoded audio value, reason)}`, by its file's path) and raises
    (`"raise"`), or warns that they are left out (`"skip"`)."""
    report = "\n".join(f"  {value.get('path') or '<in-memory bytes>'}: {reason}" for value, reason in failures.values())
    if on_error == "raise":
        raise ValueError(
            f"{len(failures)} unreadable audio file(s):\n{report}\nFix or remove them, or pass "
            "--unreadable_audio skip to leave them out."
        )
    logger.warning("Skipping %d unreadable audio file(s):\n%s", len(failures), report)


def label_names(dataset: Dataset, label_column_name: str) -> list[str]:
    """The sorted label set of a column of strings (rows without a label left out), or the names of a `ClassLabel`
    column."""
    require_column(dataset, label_column_name, "label_column_name", "the dataset")
    feature = dataset.features[label_column_name]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    return sorted({str(label) for label in dataset[label_column_name] if label is not None})


def label_values(dataset: Dataset, label_column_name: str) -> list[str]:
    """Each row's label as a string (a `ClassLabel` column's names, else the values); None where a row has none."""
    require_column(dataset, label_column_name, "label_column_name", "the dataset")
    feature = dataset.features[label_column_name]
    names = feature.names if isinstance(feature, ClassLabel) else None
    return [None if v is None else names[v] if names else str(v) for v in dataset[label_column_name]]


def with_mapped_labels(dataset: Dataset, label_column_name: str, mapping: dict[str, str]) -> Dataset:
    """`dataset` whose label column holds each label's name under `mapping` (e.g. a corpus's names onto the
    project's vocabulary, `--label_mapping`); a label the mapping does not name is an error."""
    from .sources import map_labels

    mapped = map_labels(label_values(dataset, label_column_name), mapping)
    return dataset.remove_columns(label_column_name).add_column(label_column_name, mapped)


def label_indices(
    dataset: Dataset, label_column_name: str, label2id: dict[str, int], allow_missing: bool = False
) -> list[int]:
    """Each row's class index in `label2id`, and with `allow_missing` `MISSING_LABEL` for a row without a label (a
    multi-task model's clip that lacks this task's); a label outside that label set, or a missing one otherwise, is
    an error."""
    values = label_values(dataset, label_column_name)
    unknown = sorted(set(values) - set(label2id) - {None})
    if unknown:
        raise ValueError(
            f"Labels {unknown} are not in the model's label set {sorted(label2id)} (column {label_column_name!r})."
        )
    if not allow_missing and None in values:
        missing = [row for row, value in enumerate(values) if value is None]
        raise ValueError(
            f"{len(missing)} row(s) have no label in column {label_column_name!r} (rows {missing[:10]}"
            f"{', ...' if len(missing) > 10 else ''}): label them or drop them."
        )
    return [MISSING_LABEL if v is None else label2id[v] for v in values]


def encode_labels(
    dataset: Dataset,
    label_column_name: str,
    label2id: dict[str, int],
    label_sets: dict[str, list[str]] | None = None,
    unlabelled_tasks: list[str] | tuple = (),
) -> Dataset:
    """Adds a `labels` column: each row's class index in `label2id`, or for a multi-task model (`label_sets`: task ->
    its label names) one class index per task, `MISSING_LABEL` for a task a row has no label for (a row must have at
    least one). The first task's labels are read from `label_column_name`, each further task's from its own column,
    but for `unlabelled_tasks` (a saved model's tasks that new data does not label), missing in every row."""
    if not label_sets:
        return dataset.add_column("labels", label_indices(dataset, label_column_name, label2id))
    columns = [
        [MISSING_LABEL] * len(dataset)
        if column in unlabelled_tasks
        else label_indices(dataset, column, {label: index for index, label in enumerate(labels)}, allow_missing=True)
        for column, labels in zip([label_column_name, *list(label_sets)[1:]], label_sets.values())
    ]
    rows = [list(row) for row in zip(*columns)]
    unlabelled = [index for index, row in enumerate(rows) if all(label == MISSING_LABEL for label in row)]
    if unlabelled:
        raise ValueError(
            f"{len(unlabelled)} row(s) have no label in any of the columns {list(label_sets)} (rows {unlabelled[:10]}"
            f"{', ...' if len(unlabelled) > 10 else ''}): label them or drop them."
        )
    return dataset.add_column("labels", rows)


def dimension_values(dataset: Dataset, value_columns: list[str]) -> np.ndarray:
    """Each row's values of the numeric `value_columns` (e.g. arousal), `(num_rows, num_columns)`; a column that is not
    numeric, or a row without a value, is an error."""
    columns = []
    for column in value_columns:
        require_column(dataset, column, "value_columns", "the dataset")
        if isinstance(dataset.features[column], ClassLabel):  # its integers are class indices, not values
            raise ValueError(
                f"--value_columns names numeric columns, but {column!r} holds class labels "
                f"({dataset.features[column].names}): train classes from it with --label_column_name instead."
            )
        try:
            values = np.asarray(dataset[column], dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"--value_columns names numeric columns, but {column!r} holds {dataset.features[column]} ({error}): "
                "train classes from it with --label_column_name instead."
            ) from error
        missing = np.flatnonzero(~np.isfinite(values))
        if len(missing):
            raise ValueError(
                f"{len(missing)} row(s) have no numeric value in column {column!r} (rows {missing[:10].tolist()}"
                f"{', ...' if len(missing) > 10 else ''}): fill them in or drop those rows."
            )
        columns.append(values)
    return np.stack(columns, axis=1)


def dimensional_value_range(values: np.ndarray, value_range: str | None = None) -> list[float]:
    """The `[low, high]` range of dimensional targets (`config.value_range`): `value_range` ("low,high",
    `--value_range`) when given, else the lowest and highest of `values`. A value outside a given range is an error:
    it would be read back clipped to the range."""
    if value_range is None:
        return [float(values.min()), float(values.max())]
    try:
        low, high = (float(bound) for bound in value_range.split(","))
    except ValueError as error:
        raise ValueError(f"--value_range takes 'low,high', e.g. '0,2', got {value_range!r}.") from error
    outside = int(((values < low) | (values > high)).sum())
    if outside:
        raise ValueError(
            f"{outside} value(s) lie outside --value_range {value_range!r} (the data spans {values.min():g} to "
            f"{values.max():g}): widen the range, or leave it out to use the data's."
        )
    return [low, high]


def encode_values(dataset: Dataset, value_columns: list[str]) -> Dataset:
    """Adds a `labels` column for a dimensional head: each row's values of `value_columns`, one float per column."""
    return dataset.add_column("labels", dimension_values(dataset, value_columns).tolist())


def task_label_sets(dataset: Dataset, label_column_name: str, task_columns: str | None) -> dict[str, list[str]] | None:
    """The label set of every task, main label column first, for `--task_columns` (None without further tasks)."""
    if not task_columns:
        return None
    columns = [label_column_name] + [column.strip() for column in task_columns.split(",")]
    return {column: label_names(dataset, column) for column in columns}


CORPUS_COLUMN = "corpus"
AROUSAL_DERIVED_COLUMN = "arousal_derived"


def with_arousal(dataset: Dataset, arousal_corpora: set[str]) -> Dataset:
    """Several corpora (`load_corpora`) with the arousal task of an emotion and arousal model: an `arousal` column
    (class labels of `training.sources.AROUSAL_LEVELS`) and `arousal_derived`, which says where the level is not a
    rating of the clip.

    An emotion corpus's levels are derived from its emotions (`training.sources.EMOTION_AROUSAL`); an arousal corpus
    (named in `arousal_corpora`) brings its own levels in its `emotion` column, which then holds no emotion (None)."""
    from .sources import AROUSAL_COLUMN, AROUSAL_LEVELS, EMOTION_AROUSAL, EMOTION_COLUMN

    emotions, levels, derived = [], [], []
    for corpus, label in zip(dataset[CORPUS_COLUMN], dataset[EMOTION_COLUMN]):
        derived.append(corpus not in arousal_corpora)
        if not derived[-1]:
            emotions.append(None)
            levels.append(label)
        elif label in EMOTION_AROUSAL:
            emotions.append(label)
            levels.append(EMOTION_AROUSAL[label])
        else:
            raise ValueError(
                f"Emotion {label!r} of corpus {corpus!r} has no derived arousal level "
                "(training.sources.EMOTION_AROUSAL)."
            )
    unknown = sorted(set(levels) - set(AROUSAL_LEVELS))
    if unknown:
        raise ValueError(
            f"Arousal levels {unknown} are not among {list(AROUSAL_LEVELS)}: map the corpus's level names onto them."
        )
    dataset = dataset.remove_columns(EMOTION_COLUMN).add_column(EMOTION_COLUMN, emotions, feature=Value("string"))
    # Class labels in the levels' order, low to high (not sorted by name), whichever levels the corpora hold.
    levels = [AROUSAL_LEVELS.index(level) for level in levels]
    dataset = dataset.add_column(AROUSAL_COLUMN, levels, feature=ClassLabel(names=list(AROUSAL_LEVELS)))
    return dataset.add_column(AROUSAL_DERIVED_COLUMN, derived)


def load_corpora(
    sources: dict, audio_column_name: str = "audio", split: str = "train", arousal: bool = False
) -> Dataset:
    """Several corpora as one dataset with the columns `audio_column_name`, `emotion` (each corpus's labels mapped onto
    the vocabulary, `CorpusSource.label_mapping`), `speaker` and `corpus`; with `arousal`, also the arousal task's
    columns (`with_arousal`: the arousal corpora's levels, the emotion corpora's derived).

    Speakers are namespaced by corpus (`"cremad/1001"`), so that two corpora's speaker `"01"` stay two speakers in
    speaker-independent folds.

    Args:
        sources (`dict[str, training.sources.CorpusSource]`): corpus name -> where and how to read it.
    """
    from .sources import EMOTION_COLUMN, map_labels

    parts = []
    for name, source in sources.items():
        dataset = load_audio_dataset(source.dataset_name, None, audio_column_name)
        if split not in dataset:
            raise ValueError(f"Corpus {name!r} ({source.dataset_name}) has no split {split!r}; it has {list(dataset)}.")
        dataset = dataset[split]
        labels = map_labels(label_values(dataset, source.label_column_name), source.label_mapping)
        speakers = [f"{name}/{speaker}" for speaker in speaker_groups(dataset, source.group_column_name)]
        part = dataset.select_columns([audio_column_name]).cast_column(audio_column_name, Audio())
        part = part.add_column(EMOTION_COLUMN, labels).add_column("speaker", speakers)
        parts.append(part.add_column(CORPUS_COLUMN, [name] * len(part)))
    dataset = concatenate_datasets(parts)
    if not arousal:
        return dataset
    return with_arousal(dataset, {name for name, source in sources.items() if source.target == "arousal"})


def balanced_sample_weights(corpora: list[str], labels: list) -> np.ndarray:
    """Sampling weights that give every corpus the same share of the draws and, within a corpus, every class the
    same share: `1 / (num_corpora * num_classes_of_the_corpus * count(corpus, class))`, summing to 1. Without them
    a large corpus (CREMA-D's 7,435 clips) would drown a small one (EmoDB's 535) and its majority classes."""
    pairs = list(zip(corpora, map(str, labels)))
    counts = Counter(pairs)
    classes = Counter(corpus for corpus, _ in counts)  # each corpus's number of classes
    return np.array([1.0 / (len(classes) * classes[corpus] * counts[(corpus, label)]) for corpus, label in pairs])


def corpus_balancing_weights(dataset: Dataset) -> np.ndarray | None:
    """`balanced_sample_weights` for a dataset of several corpora (a `corpus` column with more than one), else None:
    one corpus keeps the plain shuffle."""
    if CORPUS_COLUMN not in dataset.column_names or len(set(dataset[CORPUS_COLUMN])) < 2:
        return None
    return balanced_sample_weights(dataset[CORPUS_COLUMN], dataset["labels"])


class BalancedTrainer(Trainer):
    """`Trainer` that draws training examples with `sample_weights` (one per training row, e.g.
    `corpus_balancing_weights`), with replacement, an epoch's worth per epoch; without them, the Trainer's shuffle."""

    def __init__(self, *args, sample_weights: np.ndarray | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sample_weights = sample_weights

    def _get_train_sampler(self, train_dataset=None):
        if self.sample_weights is None:
            return super()._get_train_sampler(train_dataset)
        generator = torch.Generator().manual_seed(self.args.seed)
        weights = torch.as_tensor(self.sample_weights, dtype=torch.double)
        return WeightedRandomSampler(weights, num_samples=len(weights), replacement=True, generator=generator)


def group_train_test_split(
    dataset: Dataset, group_column_name: str | None, test_fraction: float, seed: int
) -> tuple[Dataset, Dataset]:
    """Splits so that no group (speaker) appears on both sides; without a group column, a plain random split."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"The evaluation fraction must be between 0 and 1, got {test_fraction}.")
    if group_column_name is None:
        split = dataset.train_test_split(test_size=test_fraction, seed=seed)
        return split["train"], split["test"]
    groups = speaker_groups(dataset, group_column_name)
    unique = np.unique(groups)
    if len(unique) < 2:
        raise ValueError(
            f"A speaker-independent split needs at least 2 groups in {group_column_name!r}, found {len(unique)}."
        )
    rng = np.random.default_rng(seed)
    num_test = min(max(1, round(test_fraction * len(unique))), len(unique) - 1)
    test_groups = set(rng.permutation(unique)[:num_test])
    is_test = np.isin(groups, list(test_groups))
    return dataset.select(np.flatnonzero(~is_test)), dataset.select(np.flatnonzero(is_test))


def speaker_groups(dataset: Dataset, group_column_name: str, argument: str = "group_column_name") -> np.ndarray:
    """Each row's speaker (or other group), as strings: one column's values, or several columns' joined, for
    `"gender+age"`; `argument` names the option that gave the columns, for the error when one is missing."""
    columns = group_column_name.split("+")
    for column in columns:
        require_column(dataset, column, argument, "the dataset")
    values = [dataset[column] for column in columns]
    return np.array(["+".join(str(value) for value in row) for row in zip(*values)])


def domain_values(dataset: Dataset, domain_column_name: str | None, dataset_name: str) -> np.ndarray:
    """Each clip's domain for domain normalisation: the values of `domain_column_name` (columns joined by '+' as for
    speakers); by default its corpus with several corpora, else one domain for the whole dataset, named
    `dataset_name` (so that a saved model going on with a new dataset names the new domain by it)."""
    if domain_column_name:
        return speaker_groups(dataset, domain_column_name, "domain_column_name")
    if CORPUS_COLUMN in dataset.column_names:
        return np.asarray(dataset[CORPUS_COLUMN])
    return np.full(len(dataset), dataset_name)


def decode_audio(value, sampling_rate: int) -> np.ndarray:
    """A `datasets` audio value (torchcodec decoder or dict) as a mono float32 array at `sampling_rate`.

    A column cast with `cast_audio` has FFmpeg decode and resample each file as the pipeline and the annotator do
    (`pipelines.audio_input.decode_audio_file`), and `load_audio` averages its channels as theirs, so a file gives
    the model one waveform in training and in use."""
    if isinstance(value, dict):
        value = {"array": np.asarray(value["array"]), "sampling_rate": value["sampling_rate"]}
    else:
        samples = value.get_all_samples()
        value = {"array": samples.data, "sampling_rate": samples.sample_rate}
    if value["sampling_rate"] != sampling_rate:
        raise ValueError(
            f"Audio at {value['sampling_rate']} Hz where {sampling_rate} Hz was expected: cast the column with "
            "datasets.Audio."
        )
    return load_audio(value, sampling_rate)


def audio_transform(
    audio_column_name: str, sampling_rate: int, max_length_seconds: float | None = None, random_crop: bool = False
):
    """A `Dataset.with_transform` function: decodes each clip to a mono array, cropped to `max_length_seconds`
    (a random window when `random_crop`, else the start), and keeps the `labels`."""
    max_length = None if max_length_seconds is None else int(max_length_seconds * sampling_rate)

    def crop(array: np.ndarray) -> np.ndarray:
        if max_length is None or len(array) <= max_length:
            return array
        start = np.random.randint(0, len(array) - max_length + 1) if random_crop else 0
        return array[start : start + max_length]

    def transform(batch: dict) -> dict:
        arrays = [crop(decode_audio(value, sampling_rate)) for value in batch[audio_column_name]]
        return {"audio_array": arrays, "labels": batch["labels"]}

    return transform


@dataclass
class AudioClassificationCollator:
    """Feature-extracts a batch of decoded clips (from `audio_transform`) into model inputs plus `labels`."""

    feature_extractor: FeatureExtractionMixin

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        # Whisper's whole 30 s window: the model may encode it (`trim_padding=False`); a trimming model cuts it.
        arrays = [example["audio_array"] for example in examples]
        batch = speech_encoder_inputs(self.feature_extractor, arrays, whole_window=True)
        batch["labels"] = torch.tensor([example["labels"] for example in examples], dtype=torch.long)
        return dict(batch)


def cast_audio(dataset: Dataset, audio_column_name: str, sampling_rate: int) -> Dataset:
    """Resample on decoding, through `datasets.Audio`."""
    return dataset.cast_column(audio_column_name, Audio(sampling_rate=sampling_rate))
