# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""The data a training run names (`arguments.DataTrainingArguments`): its splits, read with unreadable clips handled
(`load_training_data`), and for cross-validation the whole corpus encoded once into the feature cache
(`cached_corpus`); for the benchmarks, named corpora encoded once (`encoded_corpora`)."""

import logging
from pathlib import Path

from datasets import concatenate_datasets
from transformers import AutoFeatureExtractor, TrainingArguments, set_seed

from modeling_genser import GenSERConfig, GenSERForAudioClassification
from training.arguments import DataTrainingArguments, ModelArguments
from training.data import (
    CORPUS_COLUMN,
    cast_audio,
    dimension_values,
    dimensional_value_range,
    drop_unreadable_audio,
    encode_labels,
    encode_values,
    label_names,
    load_audio_dataset,
    load_corpora,
    speaker_groups,
    task_label_sets,
    with_arousal,
)
from training.feature_cache import POOLED_FEATURES_COLUMN, add_encoder_features
from training.model_construction import build_model, continued_label_space, parse_config_overrides
from training.sources import (
    AROUSAL_COLUMN,
    AROUSAL_LEVELS,
    CORPORA,
    EMOTION_COLUMN,
    ENCODERS,
    CorpusSource,
    resolve_corpora,
    resolve_corpus,
    resolve_encoder,
)
from training.synthetic_corpus import generate_corpus

logger = logging.getLogger(__name__)


def load_training_data(
    data_args: DataTrainingArguments,
    training_args: TrainingArguments,
    corpora: dict | None = None,
    check_audio: bool = True,
):
    """The training split and the evaluation split (None when speakers are held out of the training split); several
    `corpora` are read as one (`load_corpora`). With `check_audio`, unreadable clips are handled as `--unreadable_audio`
    says; without, the caller does (the feature cache checks each clip as it encodes it)."""
    if corpora:
        dataset = load_corpora(corpora, data_args.audio_column_name, data_args.train_split_name, data_args.arousal_task)
        if check_audio:
            dataset = drop_unreadable_audio(dataset, data_args.audio_column_name, data_args.unreadable_audio)
        return dataset, None
    dataset_name = data_args.dataset_name
    if dataset_name is None:
        dataset_name = str(Path(training_args.output_dir) / "synthetic_corpus")
        if not (Path(dataset_name) / "metadata.csv").exists():
            logger.info("No dataset given: generating the synthetic corpus in %s", dataset_name)
            generate_corpus(dataset_name, seed=training_args.seed)
    dataset = load_audio_dataset(dataset_name, data_args.dataset_config_name, data_args.audio_column_name)
    splits = [data_args.train_split_name] + ([data_args.eval_split_name] if data_args.eval_split_name else [])
    for split in splits:
        if split not in dataset:
            raise ValueError(f"Split {split!r} not found; available: {list(dataset)}.")
    if check_audio:
        dataset = {
            split: drop_unreadable_audio(dataset[split], data_args.audio_column_name, data_args.unreadable_audio)
            for split in splits
        }
    return dataset[splits[0]], dataset[splits[1]] if len(splits) > 1 else None


def cached_corpus(
    model_args: ModelArguments, data_args: DataTrainingArguments, corpus: CorpusSource | dict | None, seed: int
):
    """The corpus encoded once by the frozen encoder (`feature_cache.py`): its cached features (with `labels`, one
    per task with `--task_columns`, the values of `--value_columns` for a dimensional head), the label names (the
    dimensions), every clip's speaker, and every task's labels (None for one task). The arguments and `corpus` as
    `arguments.resolve_sources` returns them."""
    if not model_args.freeze_encoder:
        raise ValueError("Cross-validation trains heads on cached features, which needs --freeze_encoder true.")
    if data_args.dataset_name is None or data_args.group_column_name is None:
        raise ValueError("Cross-validation needs --dataset_name and a --group_column_name (speaker) to fold by.")

    if isinstance(corpus, dict):  # several corpora: `label`, `speaker` (namespaced) and `corpus` columns
        dataset = load_corpora(corpus, data_args.audio_column_name, data_args.train_split_name, data_args.arousal_task)
    else:
        dataset = load_audio_dataset(data_args.dataset_name, data_args.dataset_config_name, data_args.audio_column_name)
        dataset = dataset[data_args.train_split_name]
    dimensions = data_args.dimensions
    labels = dimensions or label_names(dataset, data_args.label_column_name)
    label_sets = task_label_sets(dataset, data_args.label_column_name, data_args.task_columns)
    value_range = None
    if dimensions:
        value_range = dimensional_value_range(dimension_values(dataset, dimensions), data_args.value_range)
    set_seed(seed)
    reference_model, feature_extractor = build_model(model_args, labels, label_sets, value_range=value_range)
    unlabelled_tasks = []
    if model_args.model_name_or_path and not dimensions:  # a saved model keeps its labels and tasks
        labels, label_sets, unlabelled_tasks = continued_label_space(reference_model.config, label_sets)
    dataset = cast_audio(dataset, data_args.audio_column_name, feature_extractor.sampling_rate)
    if dimensions:
        dataset = encode_values(dataset, dimensions)
    else:
        dataset = encode_labels(
            dataset, data_args.label_column_name, reference_model.config.label2id, label_sets, unlabelled_tasks
        )
    features = add_encoder_features(
        dataset,
        reference_model,
        feature_extractor,
        data_args.audio_column_name,
        data_args.feature_cache_dir,
        data_args.max_length_seconds,
        unreadable_audio=data_args.unreadable_audio,
        encoder_precision=data_args.encoder_precision,
    )
    groups = speaker_groups(features, data_args.group_column_name)
    return features, labels, groups, label_sets


def encoded_corpora(
    encoder: str,
    corpora: list[str],
    config_overrides: str | None,
    max_length_seconds: float,
    arousal_corpora: list[str] | None = None,
):
    """Named emotion `corpora` (`training/sources.py`) as one dataset of cached pooled features (label, speaker,
    corpus columns), with a head configuration (`config_overrides`, domain normalisation on) on `encoder` (named or a
    path); and with `arousal_corpora`, the emotion and arousal corpora's features together
    (`emotion_and_arousal_features`) with their two-task configuration (else None)."""
    location = resolve_encoder(encoder) if encoder in ENCODERS else encoder
    if location is None:
        raise OSError(f"Encoder {encoder!r} is not available here: {' nor '.join(ENCODERS[encoder])} was found.")
    dataset = load_corpora(resolve_corpora(corpora))
    labels = label_names(dataset, EMOTION_COLUMN)
    reference = GenSERForAudioClassification.from_encoder(
        location,
        dict(enumerate(labels)),
        **{**parse_config_overrides(config_overrides), "domain_normalization": True},
    )
    extractor = AutoFeatureExtractor.from_pretrained(location)
    extractor.return_attention_mask = True
    dataset = cast_audio(dataset, "audio", extractor.sampling_rate)
    dataset = encode_labels(dataset, EMOTION_COLUMN, reference.config.label2id)
    features = add_encoder_features(dataset, reference, extractor, "audio", max_length_seconds=max_length_seconds)
    joint = None
    if arousal_corpora:
        arousal = load_corpora(arousal_sources(arousal_corpora))
        arousal = add_encoder_features(
            cast_audio(arousal, "audio", extractor.sampling_rate), reference, extractor, "audio",
            max_length_seconds=max_length_seconds,
        )  # fmt: skip
        joint = emotion_and_arousal_features(features, arousal, labels), GenSERConfig.from_dict(
            {**reference.config.to_dict(), "label_sets": {EMOTION_COLUMN: labels, AROUSAL_COLUMN: list(AROUSAL_LEVELS)}}
        )
    return features, labels, reference.config, joint


def arousal_sources(names: list[str]) -> dict:
    """The first available source of each named arousal corpus (`training/sources.py`)."""
    sources = {name: resolve_corpus(name) if name in CORPORA else None for name in names}
    for name, source in sources.items():
        if source is None or source.target != "arousal":
            raise ValueError(
                f"{name!r} is not an available arousal corpus: name one of `training/sources.py`, e.g. baved."
            )
    return sources


def emotion_and_arousal_features(features, arousal_features, labels: list[str]):
    """The emotion corpora's cached features and the arousal corpora's as one dataset, whose `labels` are each clip's
    `[emotion id or MISSING_LABEL, arousal level id]` (an emotion corpus's level derived,
    `training.data.with_arousal`)."""
    columns = [POOLED_FEATURES_COLUMN, EMOTION_COLUMN, "speaker", CORPUS_COLUMN]
    both = concatenate_datasets([features.select_columns(columns), arousal_features.select_columns(columns)])
    both = with_arousal(both, set(arousal_features[CORPUS_COLUMN]))
    return encode_labels(both, EMOTION_COLUMN, {}, {EMOTION_COLUMN: labels, AROUSAL_COLUMN: list(AROUSAL_LEVELS)})
