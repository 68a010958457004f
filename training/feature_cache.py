# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Frozen-encoder feature caching: encode each clip once, then train the head for many epochs on the cache.

A clip's entry is its per-layer pooled features (`GenSERForAudioClassification.pooled_layer_features`), which
are all the head needs: pooling and the learnable layer sum commute. Entries live in
``cache_dir/<encoder key>/<audio key>.safetensors``, where the encoder key hashes the encoder's config and weights,
the feature extractor's settings, the pooling and the padding trim, and the audio key hashes the decoded samples. A changed
encoder or clip therefore never reads a stale entry, and a second run reads instead of recomputing.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .data import extract_features


def encoder_key(model, feature_extractor) -> str:
    digest = hashlib.sha256()
    digest.update(model.config.encoder_config.to_json_string(use_diff=False).encode())
    digest.update(json.dumps(feature_extractor.to_dict(), sort_keys=True, default=str).encode())
    digest.update(f"{model.config.pooling} trim_padding={model.config.trim_padding}".encode())
    for name, tensor in sorted(model.encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def audio_key(array: np.ndarray, sampling_rate: int) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    digest.update(str(sampling_rate).encode())
    return digest.hexdigest()[:24]


@torch.no_grad()
def cached_pooled_features(
    model, feature_extractor, arrays: list[np.ndarray], cache_dir: str | Path, batch_size: int = 8
) -> torch.Tensor:
    """Per-layer pooled features of every clip, `(num_clips, num_layers, hidden_size)`, encoding only the clips
    missing from the cache."""
    if not model.config.freeze_encoder:
        raise ValueError("Feature caching needs a frozen encoder (freeze_encoder=True): a trained encoder changes them.")
    folder = Path(cache_dir) / encoder_key(model, feature_extractor)
    folder.mkdir(parents=True, exist_ok=True)
    rate = feature_extractor.sampling_rate
    paths = [folder / f"{audio_key(array, rate)}.safetensors" for array in arrays]
    missing = [i for i, path in enumerate(paths) if not path.exists()]
    model.eval()
    for start in tqdm(range(0, len(missing), batch_size), desc="Encoding clips (cache misses)", unit="batch"):
        indices = missing[start : start + batch_size]
        batch = extract_features(feature_extractor, [arrays[i] for i in indices])
        inputs = batch[model.main_input_name].to(model.device)
        pooled = model.pooled_layer_features(inputs, batch["attention_mask"].to(model.device)).cpu()
        for i, features in zip(indices, pooled):
            save_file({"pooled_layer_features": features.contiguous()}, paths[i])
    return torch.stack([load_file(path)["pooled_layer_features"] for path in paths])
