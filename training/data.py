# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Loading labelled audio for Gen-SER training: datasets, label sets, speaker-independent splits, batching."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Audio, ClassLabel, Dataset, DatasetDict, load_dataset
from transformers import FeatureExtractionMixin, WhisperFeatureExtractor


def load_audio_dataset(
    dataset_name: str, dataset_config_name: str | None = None, audio_column_name: str = "audio"
) -> DatasetDict:
    """A Hub dataset id, or a local ``audiofolder`` directory (labels from ``metadata.csv`` or class sub-folders)."""
    if Path(dataset_name).is_dir():
        dataset = load_dataset("audiofolder", data_dir=dataset_name)
    else:
        dataset = load_dataset(dataset_name, dataset_config_name)
    for name, split in dataset.items():
        if audio_column_name not in split.column_names:
            raise ValueError(
                f"Audio column {audio_column_name!r} not found in split {name!r} of {dataset_name!r}; "
                f"its columns are {split.column_names}. Pass the right one with --audio_column_name."
            )
    return dataset


def label_names(dataset: Dataset, label_column_name: str) -> list[str]:
    """The sorted label set of a column of strings, or the names of a `ClassLabel` column."""
    if label_column_name not in dataset.column_names:
        raise ValueError(
            f"Label column {label_column_name!r} not found; the columns are {dataset.column_names}. "
            "Pass the right one with --label_column_name."
        )
    feature = dataset.features[label_column_name]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    return sorted({str(label) for label in dataset[label_column_name]})


def encode_labels(dataset: Dataset, label_column_name: str, label2id: dict[str, int]) -> Dataset:
    """Adds a `labels` column of class indices; a label outside the model's label set is an error."""
    feature = dataset.features[label_column_name]
    names = feature.names if isinstance(feature, ClassLabel) else None
    values = [names[v] if names else str(v) for v in dataset[label_column_name]]
    unknown = sorted(set(values) - set(label2id))
    if unknown:
        raise ValueError(f"Labels {unknown} are not in the model's label set {sorted(label2id)}.")
    return dataset.add_column("labels", [label2id[v] for v in values])


def group_train_test_split(
    dataset: Dataset, group_column_name: str | None, test_fraction: float, seed: int
) -> tuple[Dataset, Dataset]:
    """Splits so that no group (speaker) appears on both sides; without a group column, a plain random split."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"The evaluation fraction must be between 0 and 1, got {test_fraction}.")
    if group_column_name is None:
        split = dataset.train_test_split(test_size=test_fraction, seed=seed)
        return split["train"], split["test"]
    if group_column_name not in dataset.column_names:
        raise ValueError(
            f"Group column {group_column_name!r} not found; the columns are {dataset.column_names}. "
            "Pass --group_column_name, or an empty value for a random split."
        )
    groups = np.array([str(g) for g in dataset[group_column_name]])
    unique = np.unique(groups)
    if len(unique) < 2:
        raise ValueError(f"A speaker-independent split needs at least 2 groups in {group_column_name!r}, found {len(unique)}.")
    rng = np.random.default_rng(seed)
    num_test = min(max(1, round(test_fraction * len(unique))), len(unique) - 1)
    test_groups = set(rng.permutation(unique)[:num_test])
    is_test = np.isin(groups, list(test_groups))
    return dataset.select(np.flatnonzero(~is_test)), dataset.select(np.flatnonzero(is_test))


def decode_audio(value, sampling_rate: int) -> np.ndarray:
    """A `datasets` audio value (torchcodec decoder or dict) as a mono float32 array at `sampling_rate`."""
    if isinstance(value, dict):
        array, rate = np.asarray(value["array"], dtype=np.float32), value["sampling_rate"]
    else:
        samples = value.get_all_samples()
        array, rate = samples.data.numpy(), samples.sample_rate
    if array.ndim > 1:
        array = array.mean(axis=0)
    if rate != sampling_rate:
        raise ValueError(f"Audio at {rate} Hz where {sampling_rate} Hz was expected: cast the column with datasets.Audio.")
    return array


def audio_transform(audio_column_name: str, sampling_rate: int, max_length_seconds: float | None = None, random_crop: bool = False):
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


def extract_features(feature_extractor: FeatureExtractionMixin, arrays: list[np.ndarray]):
    """Model inputs plus `attention_mask` for a batch of mono arrays at the extractor's sampling rate."""
    # Whisper pads every clip to its fixed 30 s window itself; waveform encoders pad to the longest clip.
    padding = {} if isinstance(feature_extractor, WhisperFeatureExtractor) else {"padding": True}
    return feature_extractor(
        arrays,
        sampling_rate=feature_extractor.sampling_rate,
        return_attention_mask=True,
        return_tensors="pt",
        **padding,
    )


@dataclass
class AudioClassificationCollator:
    """Feature-extracts a batch of decoded clips (from `audio_transform`) into model inputs plus `labels`."""

    feature_extractor: FeatureExtractionMixin

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = extract_features(self.feature_extractor, [example["audio_array"] for example in examples])
        batch["labels"] = torch.tensor([example["labels"] for example in examples], dtype=torch.long)
        return dict(batch)


def cast_audio(dataset: Dataset, audio_column_name: str, sampling_rate: int) -> Dataset:
    """Resample on decoding, through `datasets.Audio`."""
    return dataset.cast_column(audio_column_name, Audio(sampling_rate=sampling_rate))
