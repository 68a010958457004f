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


def build_model(
    model_args: ModelArguments,
    labels: list[str],
    label_sets: dict[str, list[str]] | None = None,
    domain_names: list[str] | None = None,
    value_range: list[float] | None = None,
):
    """The Gen-SER model and its feature extractor, with the label set of the data (and with `label_sets`, every
    task's, `labels` being the first's) and, with `--domain_residuals`, residual weights for the data's
    `domain_names` (`feature_cache.with_domains`; none given: a model to encode with). With `value_range`, a
    dimensional head (`problem_type="regression"`) whose `labels` are the dimensions (`--value_columns`)."""
    id2label = dict(enumerate(labels))
    overrides = parse_config_overrides(model_args.config_overrides)
    if label_sets:
        overrides["label_sets"] = label_sets
    if value_range is not None:
        overrides.update(problem_type="regression", value_range=value_range)
    if model_args.domain_residuals and domain_names is not None:
        overrides["domain_names"] = [str(name) for name in domain_names]
    overrides["domain_normalization"] = model_args.domain_normalization
    overrides["freeze_encoder"] = model_args.freeze_encoder
    overrides["trainable_encoder_layers"] = model_args.trainable_encoder_layers
    if model_args.model_name_or_path:
        model = GenSERForAudioClassification.from_pretrained(model_args.model_name_or_path, **overrides)
        if model.config.id2label != id2label:
            raise ValueError(
                f"The data's labels {labels} differ from the model's {list(model.config.id2label.values())}."
            )
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.model_name_or_path)
    elif model_args.encoder_name_or_path:
        model = GenSERForAudioClassification.from_encoder(model_args.encoder_name_or_path, id2label, **overrides)
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.encoder_name_or_path)
    else:
        config = GenSERConfig(
            encoder_config=embedded_encoder_config(),
            id2label=id2label,
            label2id={label: index for index, label in id2label.items()},
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
