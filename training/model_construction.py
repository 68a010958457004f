# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""A Gen-SER model for the training scripts' arguments: from a saved model, from a pretrained speech encoder, or on
the embedded small encoder; with `--config_overrides` applied to its `GenSERConfig`."""

import dataclasses
import json
import re

from transformers import AutoFeatureExtractor, Wav2Vec2Config, Wav2Vec2FeatureExtractor

from modeling_genser import GenSERConfig, GenSERForAudioClassification
from training.arguments import ModelArguments


def embedded_encoder_config() -> Wav2Vec2Config:
    """A small wav2vec2 encoder (about 0.4 M parameters) trained from scratch when no pretrained encoder is given."""
    return Wav2Vec2Config(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(64, 64, 64, 64, 64),
        conv_stride=(5, 4, 2, 2, 2),
        conv_kernel=(10, 8, 4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        apply_spec_augment=False,
        layerdrop=0.0,
        vocab_size=None,
    )


def parse_config_overrides(overrides: str | None) -> dict:
    """'a=1,b=x,c={"d":1,"e":2}' -> {'a': 1, 'b': 'x', 'c': {'d': 1, 'e': 2}}; values are read as JSON when they
    parse, else kept as strings."""
    result = {}
    # Split only at commas that start a new `key=`, so JSON values may contain commas.
    for item in filter(None, re.split(r",(?=\s*[A-Za-z_]\w*=)", overrides or "")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"config_overrides entries must look like key=value, got {item!r}.")
        try:
            result[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            result[key.strip()] = value.strip()
    unknown = set(result) - {field.name for field in dataclasses.fields(GenSERConfig)}
    if unknown:
        raise ValueError(f"Unknown GenSERConfig fields in config_overrides: {sorted(unknown)}.")
    return result


def format_config_overrides(overrides: dict) -> str:
    """{'a': 1, 'c': {'d': 1}} -> 'a=1,c={"d":1}': the `--config_overrides` string that `parse_config_overrides`
    reads back, for scripts that declare configurations as dicts."""
    return ",".join(f"{key}={json.dumps(value, separators=(',', ':'))}" for key, value in overrides.items())


def residual_domain_names(model_args: ModelArguments, data_domains: list[str]) -> list[str] | None:
    """The domains that get residual weights (`config.domain_names`) in a model trained on data of `data_domains`
    (`feature_cache.sorted_domain_names`): none without `--domain_residuals`; the data's; or, going on from a saved
    model with residuals, its domains and then the data's new ones (a new corpus becomes a domain of its own). The
    order of `build_model`'s model, and so of the statistics table (`feature_cache.with_domains`)."""
    if not model_args.domain_residuals:
        return None
    saved = []
    if model_args.model_name_or_path:
        saved = list(GenSERConfig.from_pretrained(model_args.model_name_or_path).domain_names or [])
    return saved + [str(name) for name in data_domains if str(name) not in saved]


def continued_label_space(config, data_label_sets: dict[str, list[str]] | None) -> tuple[list, dict | None, list]:
    """What data is encoded with to go on training a saved model (`config`): its labels (its first task's), every
    task's (None for one task), and its further tasks that the data does not label (`data_label_sets`), whose labels
    are then missing (`data.encode_labels`' `unlabelled_tasks`), as an arousal corpus's emotions are."""
    unlabelled = [task for task in list(config.label_sets or [])[1:] if task not in (data_label_sets or {})]
    return next(iter(config.tasks.values())), config.label_sets, unlabelled


def labels_outside(config, labels: list[str]) -> list[str]:
    """The data's `labels` that are none of a saved model's (its first task's), in the data's order."""
    return [label for label in labels if label not in next(iter(config.tasks.values()))]


def check_data_fits_saved_model(
    config, source: str, labels: list[str], label_sets: dict[str, list[str]] | None
) -> None:
    """Refuses data a saved model cannot go on training on: labels outside its label set, or tasks it does not have
    (`continued_label_space` reads the rest)."""
    if unknown := labels_outside(config, labels):
        raise ValueError(
            f"The data's labels {unknown} are not among the labels of {source} "
            f"({next(iter(config.tasks.values()))}): map them onto its labels with --label_mapping (e.g. "
            "'joy=happy'), or learn them as new classes with --new_labels."
        )
    for task, task_labels in list((label_sets or {}).items())[1:]:
        if task not in config.tasks:
            raise ValueError(
                f"{source} has no task {task!r} (its tasks: {list(config.tasks)}): leave it out of --task_columns."
            )
        if unknown := sorted(set(task_labels) - set(config.tasks[task])):
            raise ValueError(f"The data's {task} labels {unknown} are not among {source}'s ({config.tasks[task]}).")


def model_overrides(model_args: ModelArguments, value_range: list[float] | None) -> dict:
    """The `GenSERConfig` settings of `build_model`'s model: `--config_overrides`, a dimensional head's with
    `value_range`, and the `ModelArguments` options that are config fields."""
    overrides = parse_config_overrides(model_args.config_overrides)
    if "domain_names" in overrides:
        raise ValueError(
            "--config_overrides cannot set domain_names: they are the training data's domains (--domain_residuals, "
            "--domain_column_name), which the clips are read with."
        )
    if value_range is not None:
        overrides.update(problem_type="regression", value_range=value_range)
    overrides["domain_normalization"] = model_args.domain_normalization
    overrides["freeze_encoder"] = model_args.freeze_encoder
    overrides["trainable_encoder_layers"] = model_args.trainable_encoder_layers
    return overrides


def continued_model(
    model_args: ModelArguments,
    overrides: dict,
    labels: list[str],
    label_sets: dict[str, list[str]] | None,
    residual_domains: list[str] | None,
    value_range: list[float] | None,
):
    """The saved model (`--model_name_or_path`) to go on training, with `overrides`, and its feature extractor (see
    `build_model`)."""
    source = model_args.model_name_or_path
    if not model_args.domain_residuals:
        overrides = {**overrides, "domain_names": None}  # the saved residuals, if any, dropped
    model = GenSERForAudioClassification.from_pretrained(source, **overrides)
    model.add_domains(residual_domains or [])  # zero residuals for the data's domains the saved model lacks
    if model_args.new_labels:
        if value_range is not None or not (new := labels_outside(model.config, labels)):
            raise ValueError(
                f"--new_labels has nothing to add: every label of the data is one of {source}'s "
                f"({list(model.config.label2id)}), or the data has values, not labels. Drop --new_labels."
            )
        model.add_labels(new)
    if value_range is None:
        check_data_fits_saved_model(model.config, source, labels, label_sets)
    return model, AutoFeatureExtractor.from_pretrained(source)


def build_model(
    model_args: ModelArguments,
    labels: list[str],
    label_sets: dict[str, list[str]] | None = None,
    domain_names: list[str] | None = None,
    value_range: list[float] | None = None,
):
    """The Gen-SER model and its feature extractor, with the label set of the data (and with `label_sets`, every
    task's, `labels` being the first's) and, with `--domain_residuals`, residual weights for `domain_names`
    (`residual_domain_names`; none given: a model to encode with). With `value_range`, a dimensional head
    (`problem_type="regression"`) whose `labels` are the dimensions (`--value_columns`).

    Going on from a saved model (`--model_name_or_path`), the model keeps its labels and tasks (the data's must be
    among them, `check_data_fits_saved_model`, or with `--new_labels` are added to its first task's,
    `add_labels`; encode the data with `continued_label_space`), its residual weights
    (the data's new domains get theirs) and the settings of `ModelArguments` that the user left unset
    (`INHERITED_DEFAULTS`)."""
    id2label = dict(enumerate(labels))
    overrides = model_overrides(model_args, value_range)
    residual_domains = domain_names if model_args.domain_residuals else None
    if model_args.model_name_or_path:
        model, feature_extractor = continued_model(
            model_args, overrides, labels, label_sets, residual_domains, value_range
        )
    elif model_args.encoder_name_or_path:
        model = GenSERForAudioClassification.from_encoder(
            model_args.encoder_name_or_path, id2label, label_sets=label_sets, domain_names=residual_domains, **overrides
        )
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.encoder_name_or_path)
    else:
        config = GenSERConfig(
            encoder_config=embedded_encoder_config(),
            id2label=id2label,
            label2id={label: index for index, label in id2label.items()},
            label_sets=label_sets,
            domain_names=residual_domains,
            **overrides,
        )
        model = GenSERForAudioClassification(config)
        feature_extractor = Wav2Vec2FeatureExtractor(do_normalize=True)
    # Gen-SER pools over real frames only, so the pipeline must pass the padding mask on.
    feature_extractor.return_attention_mask = True
    return model, feature_extractor


def new_genser_head(
    model_args: ModelArguments,
    labels: list[str],
    label_sets: dict[str, list[str]] | None = None,
    domain_names: list[str] | None = None,
    value_range: list[float] | None = None,
):
    """A freshly initialised Gen-SER model, for one cross-validation fold."""
    return build_model(model_args, labels, label_sets, domain_names, value_range)[0]
