# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Frozen-encoder feature caching: encode each clip once, then train the head for many epochs on the cache.

A clip's cached entry is its per-layer pooled features (`GenSERForAudioClassification.pooled_layer_features`),
which are all the head needs: pooling and the learnable layer sum commute. The cache is a `datasets` cache: one
`Dataset.map` adds a `pooled_layer_features` column and writes it to a memory-mapped Arrow file,
``cache_dir/pooled-<fingerprint>.arrow`` (by default in the `datasets` cache, `HF_DATASETS_CACHE`), so a corpus of
100,000+ clips costs one file, not one per clip.

The map's fingerprint is explicit: it hashes the encoder (config, weights, feature extractor settings, pooling,
padding trim, crop length) and the audio (the dataset's own fingerprint, plus each audio file's path, size and
modification time where the audio lives in files). A changed encoder or clip therefore never reads a stale entry,
and a second run with the same ones reads the cache instead of encoding.
"""

import hashlib
import json
import os
from pathlib import Path

import datasets
import torch
from datasets import Array2D, Audio, Dataset, Features

from .data import decode_audio, extract_features

POOLED_FEATURES_COLUMN = "pooled_layer_features"


def encoder_key(model, feature_extractor) -> str:
    """Hash of everything that decides a clip's pooled features on the encoder's side."""
    digest = hashlib.sha256()
    digest.update(model.config.encoder_config.to_json_string(use_diff=False).encode())
    digest.update(json.dumps(feature_extractor.to_dict(), sort_keys=True, default=str).encode())
    digest.update(f"{model.config.pooling} trim_padding={model.config.trim_padding}".encode())
    for name, tensor in sorted(model.encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def audio_key(dataset: Dataset, audio_column_name: str) -> str:
    """Hash of the clips: the dataset's fingerprint (which covers in-memory audio bytes) and, for audio stored in
    files, each file's path, size and modification time (a file rewritten in place keeps its path)."""
    digest = hashlib.sha256(dataset._fingerprint.encode())
    raw = dataset.select_columns([audio_column_name]).cast_column(audio_column_name, Audio(decode=False))
    for batch in raw.iter(batch_size=1000):  # in batches: embedded audio bytes are never all in memory
        for value in batch[audio_column_name]:
            path = value.get("path")
            if value.get("bytes") is None and path and os.path.exists(path):
                stat = os.stat(path)
                digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def add_pooled_features(
    dataset: Dataset,
    model,
    feature_extractor,
    audio_column_name: str,
    cache_dir: str | Path | None = None,
    max_length_seconds: float | None = None,
    batch_size: int = 8,
) -> Dataset:
    """`dataset` with its audio column replaced by `pooled_layer_features`, `(num_layers, hidden_size)` per clip,
    read from `cache_dir` (default: `HF_DATASETS_CACHE/gen-ser-pooled-features`) when this encoder has already
    encoded these clips.

    The audio column must decode at the feature extractor's sampling rate (`training.data.cast_audio`); clips
    longer than `max_length_seconds` are encoded from their start up to that length.
    """
    if not model.config.freeze_encoder:
        raise ValueError("Feature caching needs a frozen encoder (freeze_encoder=True): a trained encoder changes them.")
    rate = feature_extractor.sampling_rate
    max_length = None if max_length_seconds is None else int(max_length_seconds * rate)
    fingerprint = hashlib.sha256(
        f"{encoder_key(model, feature_extractor)} {audio_key(dataset, audio_column_name)} {max_length}".encode()
    ).hexdigest()[:24]
    num_layers = model.config.encoder_config.num_hidden_layers + 1
    width = model.config.encoder_config.hidden_size * (2 if model.config.pooling == "mean_std" else 1)
    features = Features({name: feature for name, feature in dataset.features.items() if name != audio_column_name})
    features[POOLED_FEATURES_COLUMN] = Array2D((num_layers, width), "float32")
    model.eval()

    @torch.no_grad()
    def encode(batch: dict) -> dict:
        arrays = [decode_audio(value, rate)[:max_length] for value in batch[audio_column_name]]
        inputs = extract_features(feature_extractor, arrays)
        pooled = model.pooled_layer_features(
            inputs[model.main_input_name].to(model.device), inputs["attention_mask"].to(model.device)
        )
        return {POOLED_FEATURES_COLUMN: pooled.float().cpu().numpy()}

    cache_dir = Path(cache_dir or Path(datasets.config.HF_DATASETS_CACHE) / "gen-ser-pooled-features")
    cache_dir.mkdir(parents=True, exist_ok=True)
    return dataset.map(
        encode,
        batched=True,
        batch_size=batch_size,
        remove_columns=[audio_column_name],
        features=features,
        new_fingerprint=fingerprint,
        cache_file_name=str(cache_dir / f"pooled-{fingerprint}.arrow"),
        load_from_cache_file=True,
        desc="Encoding clips with the frozen encoder (cached)",
    )
