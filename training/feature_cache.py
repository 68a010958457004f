# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Frozen-encoder feature caching: encode each clip once, then train the head for many epochs on the cache.

A clip's cached entry is its per-layer pooled features (`GenSERForAudioClassification.pooled_layer_features`),
which are all the head needs: pooling and the learnable layer sum commute. The cache is keyed by the audio alone:
per encoder, a store (a folder under `HF_DATASETS_CACHE/gen-ser-pooled-features` by default) holds every clip that
encoder has encoded (at each `encoder_precision`), keyed by the clip's bytes or its file's path, size and
modification time (`clip_keys`), in memory-mapped Arrow parts (`part-*.arrow`, one per encoding run, not one file
per clip). A dataset of known clips, whatever its label columns, label mapping or tasks, reads them (gathered into
`rows-*.arrow`, which its next run reads directly); only new or changed clips are encoded. The store's name hashes the
encoder (config, weights, feature extractor settings, pooling, padding trim), the audio column's decoding and the crop
length, so another encoder never reads a stale entry.

With the encoder's top N layers trainable (`trainable_encoder_layers`), the frozen part is cached instead: each
clip's frames entering the first trainable layer (`lower_layer_frames`, `(num_frames, hidden_size)`, variable
length) and its pooled lower layers (`lower_pooled_layer_features`); every epoch then runs only the top layers.
`collate_cached_features` batches either kind.

With domain normalisation (`GenSERConfig.domain_normalization`), `with_domains` gives each clip its domain (a corpus,
a speaker) and the table of the domains' statistics, which the collator hands the model with each batch.
"""

import hashlib
import json
import os
from pathlib import Path

import datasets
import numpy as np
import torch
from datasets import Array2D, Audio, Dataset, Features, Value, concatenate_datasets
from torch.nn.utils.rnn import pad_sequence

from modeling_genser.domain_normalization import (
    domain_moments,
    domain_statistics,
    domain_statistics_from_moments,
    shrunk_moments,
)

from pipelines.audio_input import batches_by_length, encoder_autocast, speech_encoder_inputs

from .data import check_unreadable_audio_option, decode_audio, report_unreadable_audio

POOLED_FEATURES_COLUMN = "pooled_layer_features"
FRAMES_COLUMN = "lower_layer_frames"
LOWER_POOLED_COLUMN = "lower_pooled_layer_features"
DOMAIN_COLUMN = "domain"
# A clip's row in the table of statistics where it is not its domain's (`folds.train_and_predict`'s other statistics).
STATISTICS_ROW_COLUMN = "statistics_row"
AUDIO_ERROR_COLUMN = "audio_error"
CLIP_KEY_COLUMN = "clip_key"
# The store's layout: clips by `clip_keys`, in parts. It is part of the store's name, so a store of another layout is
# never read.
CACHE_FORMAT = "clip-keyed-parts-1"
CACHED_COLUMNS = (POOLED_FEATURES_COLUMN, FRAMES_COLUMN, LOWER_POOLED_COLUMN, DOMAIN_COLUMN, STATISTICS_ROW_COLUMN)


def encoder_key(model, feature_extractor) -> str:
    """Hash of everything that decides a clip's pooled features on the encoder's side."""
    digest = hashlib.sha256()
    digest.update(model.config.encoder_config.to_json_string(use_diff=False).encode())
    digest.update(json.dumps(feature_extractor.to_dict(), sort_keys=True, default=str).encode())
    config = model.config
    digest.update(f"{config.pooling} trim_padding={config.trim_padding}".encode())
    if config.trainable_encoder_layers:  # absent when 0, so a wholly frozen encoder's key does not depend on it
        digest.update(f"trainable_encoder_layers={config.trainable_encoder_layers}".encode())
    for name, tensor in sorted(model.encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def clip_keys(dataset: Dataset, audio_column_name: str) -> list[str]:
    """Each clip's identity, row by row: the hash of its bytes where they are embedded in the dataset, else of its
    file's path, size and modification time (a file rewritten in place keeps its path, not its size and time)."""
    raw = dataset.select_columns([audio_column_name]).cast_column(audio_column_name, Audio(decode=False))
    keys = []
    for batch in raw.iter(batch_size=1000):  # in batches: embedded audio bytes are never all in memory
        for value in batch[audio_column_name]:
            path = value.get("path") or ""
            if value.get("bytes") is not None:
                identity = b"bytes:" + value["bytes"]
            elif os.path.exists(path):
                stat = os.stat(path)
                identity = f"file:{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode()
            else:  # cannot be decoded: keyed by its name, so that its error is reported once per run
                identity = f"missing:{path}".encode()
            keys.append(hashlib.sha256(identity).hexdigest()[:32])
    return keys


def cached_parts(store: Path) -> list[Dataset]:
    """Every part of `store` (memory-mapped), each a dataset of clips with their `clip_key`."""
    return [Dataset.from_file(str(path)) for path in sorted(store.glob("part-*.arrow"))]


def check_cacheable(model, dataset: Dataset, audio_column_name: str) -> Audio:
    """Refuses a model whose encoder trains as a whole or an audio column that is not cast to audio; returns the
    column's `Audio` feature, which decodes the clips."""
    if not model.config.freeze_encoder:
        raise ValueError(
            "Feature caching needs a frozen encoder (freeze_encoder=True, optionally with trainable_encoder_layers): "
            "a fully trained encoder changes its features every step."
        )
    decoder = dataset.features[audio_column_name]
    if not isinstance(decoder, Audio):
        raise ValueError(
            f"Column {audio_column_name!r} holds {decoder}, not audio: cast it with training.data.cast_audio first."
        )
    return decoder


def cached_features(config) -> Features:
    """The columns of a store's parts: each clip's key, what the frozen encoder gives for it (`add_encoder_features`)
    and its decoding error (empty when it decoded)."""
    num_layers, width = config.pooled_features_shape
    trainable = config.trainable_encoder_layers
    features = Features({CLIP_KEY_COLUMN: Value("string")})
    if trainable:
        features[FRAMES_COLUMN] = Array2D((None, config.encoder_config.hidden_size), "float32")
        features[LOWER_POOLED_COLUMN] = Array2D((num_layers - trainable, width), "float32")
    else:
        features[POOLED_FEATURES_COLUMN] = Array2D((num_layers, width), "float32")
    features[AUDIO_ERROR_COLUMN] = Value("string")
    return features


def clip_encoder(
    model, feature_extractor, decoder: Audio, audio_column_name: str, max_length: int | None, batch_size: int,
    encoder_precision: str,
):
    """The `Dataset.map` function that encodes a chunk of undecoded clips (with their `clip_key`) into a store's
    columns (`cached_features`): each clip decoded by `decoder` and cropped to `max_length` samples, the chunk sorted by
    length into batches of `batch_size`. A clip that cannot be decoded keeps its row, with zeros and its error, so
    that one bad file does not stop the map and the caller sees every error."""
    config = model.config
    rate = feature_extractor.sampling_rate
    num_layers, width = config.pooled_features_shape
    hidden_size = config.encoder_config.hidden_size
    trainable = config.trainable_encoder_layers

    def encode_batch(arrays: list[np.ndarray]) -> dict:
        inputs = speech_encoder_inputs(feature_extractor, arrays, whole_window=not config.trim_padding)
        inputs = (inputs[model.main_input_name].to(model.device), inputs["attention_mask"].to(model.device))
        with encoder_autocast(encoder_precision, model.device.type):
            if trainable:
                clips, lower_pooled = model.lower_layer_features(*inputs)
                frames = [clip.float().cpu().numpy() for clip in clips]
                return {FRAMES_COLUMN: frames, LOWER_POOLED_COLUMN: lower_pooled.float().cpu().numpy()}
            return {POOLED_FEATURES_COLUMN: model.pooled_layer_features(*inputs).float().cpu().numpy()}

    @torch.no_grad()
    def encode(batch: dict) -> dict:
        arrays, errors = {}, []
        for i, value in enumerate(batch[audio_column_name]):
            try:
                arrays[i] = decode_audio(decoder.decode_example(value), rate)[:max_length]
                errors.append("")
            except Exception as error:  # noqa: BLE001  (any decoding failure is reported per file)
                errors.append(f"{type(error).__name__}: {error}")
        encoded = (
            {FRAMES_COLUMN: [np.zeros((0, hidden_size), np.float32)] * len(errors),
             LOWER_POOLED_COLUMN: np.zeros((len(errors), num_layers - trainable, width), np.float32)}
            if trainable else {POOLED_FEATURES_COLUMN: np.zeros((len(errors), num_layers, width), np.float32)}
        )  # fmt: skip
        for rows in batches_by_length(arrays, batch_size):
            for name, values in encode_batch([arrays[i] for i in rows]).items():
                for i, value in zip(rows, values):
                    encoded[name][i] = value
        return {CLIP_KEY_COLUMN: batch[CLIP_KEY_COLUMN], **encoded, AUDIO_ERROR_COLUMN: errors}

    return encode


def feature_store(
    model,
    feature_extractor,
    decoder: Audio,
    max_length: int | None,
    encoder_precision: str,
    cache_dir: str | Path | None,
) -> Path:
    """The folder (created) under `cache_dir` that holds every clip the encoder has encoded at `encoder_precision`,
    cropped to `max_length` samples: one store per encoder and crop, named by their hash with the format tag, so that a
    store of another layout is never read."""
    cache_dir = Path(cache_dir or Path(datasets.config.HF_DATASETS_CACHE) / "gen-ser-pooled-features")
    store_key = hashlib.sha256(
        f"{encoder_key(model, feature_extractor)} {decoder} {max_length} {encoder_precision} {CACHE_FORMAT}".encode()
    ).hexdigest()[:24]
    store = cache_dir / f"{'frames' if model.config.trainable_encoder_layers else 'pooled'}-{store_key}"
    store.mkdir(parents=True, exist_ok=True)
    return store


def store_rows(
    dataset: Dataset, audio_column_name: str, store: Path, encode, features: Features, batch_size: int
) -> Dataset:
    """The store's rows for `dataset`'s clips, row for row (without `clip_key`, with `audio_error`): read from the
    `rows-*.arrow` file of an earlier run on the same clips, else gathered from the store's parts after `encode`
    (`clip_encoder`) has written the clips new to the store into a part of their own, and saved as that file."""
    keys = clip_keys(dataset, audio_column_name)
    rows_key = hashlib.sha256(" ".join(keys).encode()).hexdigest()[:24]
    rows_file = store / f"rows-{rows_key}.arrow"  # this dataset's rows, gathered from the parts (memory-mapped)
    if rows_file.exists():
        return Dataset.from_file(str(rows_file))
    parts = cached_parts(store)
    # Each clip's row in the parts concatenated (a clip is in one part only: a part holds clips new to the store).
    position = {key: row for row, key in enumerate(key for part in parts for key in part[CLIP_KEY_COLUMN])}
    first_rows = {}  # each new clip's first row, in row order
    for row, key in enumerate(keys):
        if key not in position:
            first_rows.setdefault(key, row)
    if first_rows:
        new_rows = list(first_rows.values())
        undecoded = dataset.select_columns([audio_column_name]).select(new_rows)
        undecoded = undecoded.add_column(CLIP_KEY_COLUMN, [keys[row] for row in new_rows])
        part_key = hashlib.sha256(" ".join(keys[row] for row in new_rows).encode()).hexdigest()[:24]
        new_part = undecoded.cast_column(audio_column_name, Audio(decode=False)).map(
            encode,
            batched=True,
            batch_size=batch_size * 8,  # a chunk sorted by length into batches of batch_size
            remove_columns=[audio_column_name],
            features=features,
            new_fingerprint=part_key,
            cache_file_name=str(store / f"part-{part_key}.arrow"),
            load_from_cache_file=True,
            desc="Encoding clips with the frozen encoder (cached)",
        )
        parts.append(new_part)
        offset = len(position)
        position.update({key: offset + row for row, key in enumerate(first_rows)})
    clips = concatenate_datasets(parts)
    encoded = clips.select([position[key] for key in keys]).remove_columns(CLIP_KEY_COLUMN)
    return encoded.flatten_indices(cache_file_name=str(rows_file), new_fingerprint=rows_key)


def without_unreadable(
    dataset: Dataset, encoded: Dataset, errors: list[str], audio_column_name: str, unreadable_audio: str
) -> tuple[Dataset, Dataset]:
    """`dataset` and its `encoded` rows without the clips whose decoding `errors` name (empty: decoded), which are
    named and raise (`unreadable_audio="raise"`) or are left out with a warning (`"skip"`)."""
    failures = {i: error for i, error in enumerate(errors) if error}
    if not failures:
        return dataset, encoded
    values = dataset.cast_column(audio_column_name, Audio(decode=False)).select(list(failures))[audio_column_name]
    report_unreadable_audio({i: (value, failures[i]) for i, value in zip(failures, values)}, unreadable_audio)
    if len(failures) == len(dataset):
        raise ValueError(f"None of the {len(dataset)} clips could be decoded (the warning above names each).")
    readable = [i for i in range(len(dataset)) if i not in failures]
    return dataset.select(readable), encoded.select(readable)


def add_encoder_features(
    dataset: Dataset,
    model,
    feature_extractor,
    audio_column_name: str,
    cache_dir: str | Path | None = None,
    max_length_seconds: float | None = None,
    batch_size: int = 8,
    unreadable_audio: str = "raise",
    return_clips: bool = False,
    encoder_precision: str = "float32",
) -> Dataset | tuple[Dataset, Dataset]:
    """`dataset` with its audio column replaced by what the frozen encoder gives: `pooled_layer_features`,
    `(num_layers, width)` per clip; or, with `trainable_encoder_layers` = N > 0, `lower_layer_frames`
    `(num_frames, hidden_size)` and `lower_pooled_layer_features` `(num_layers - N, width)`.

    The cache is keyed by the audio alone: a store per encoder (`encoder_key`, crop length) under `cache_dir`
    (default: `HF_DATASETS_CACHE/gen-ser-pooled-features`) holds every clip it has encoded, by `clip_keys`, so any
    dataset of known clips (new labels, a new label mapping, another task, another mix of corpora) encodes none of
    them again, and a changed clip is encoded anew. Clips to encode are decoded in chunks, sorted by length and encoded
    `batch_size` at a time, so a batch carries little padding.

    The audio column must decode at the feature extractor's sampling rate (`training.data.cast_audio`); clips
    longer than `max_length_seconds` are encoded from their start up to that length, at `encoder_precision`
    (`pipelines.audio_input.ENCODER_PRECISIONS`, part of the store's key). Clips that cannot be decoded
    are named and raise (`unreadable_audio="raise"`) or are left out with a warning (`"skip"`). With `return_clips`,
    returns `(clips, features)`: also the rows of `dataset` that were kept, with their audio, row for row with the
    features.
    """
    check_unreadable_audio_option(unreadable_audio)
    encoder_autocast(encoder_precision, model.device.type)  # checks the name before any work
    decoder = check_cacheable(model, dataset, audio_column_name)
    rate = feature_extractor.sampling_rate
    max_length = None if max_length_seconds is None else int(max_length_seconds * rate)
    model.eval()
    encode = clip_encoder(
        model, feature_extractor, decoder, audio_column_name, max_length, batch_size, encoder_precision
    )
    store = feature_store(model, feature_extractor, decoder, max_length, encoder_precision, cache_dir)
    encoded = store_rows(dataset, audio_column_name, store, encode, cached_features(model.config), batch_size)
    errors = encoded[AUDIO_ERROR_COLUMN]
    rest = dataset.remove_columns(audio_column_name)
    if rest._indices is not None:  # a selection's other columns, in memory: they are small
        rest = rest.flatten_indices(keep_in_memory=True)
    encoded = concatenate_datasets([rest, encoded.remove_columns(AUDIO_ERROR_COLUMN)], axis=1)
    dataset, encoded = without_unreadable(dataset, encoded, errors, audio_column_name, unreadable_audio)
    return (dataset, encoded) if return_clips else encoded


def collate_cached_features(examples: list[dict], domain_statistics: torch.Tensor | None = None) -> dict:
    """A batch of cached features as the model's keyword arguments: fixed-shape columns stacked, `lower_layer_frames`
    padded to the longest clip with its `frame_mask`, and each clip's `domain_statistics` looked up by its `domain`
    column in `domain_statistics` (`(num_domains, 2, num_layers, width)`, from `with_domains`), or by its
    `statistics_row` column where it has one, with the `domain` column itself as `domain_ids` (read by a model with
    those domains' residual weights, `config.domain_names`)."""
    batch = {
        key: torch.stack([torch.as_tensor(example[key]) for example in examples])
        for key in examples[0]
        if key not in (FRAMES_COLUMN, DOMAIN_COLUMN, STATISTICS_ROW_COLUMN)
    }
    if FRAMES_COLUMN in examples[0]:
        frames = [torch.as_tensor(example[FRAMES_COLUMN]) for example in examples]
        batch[FRAMES_COLUMN] = pad_sequence(frames, batch_first=True)
        lengths = torch.tensor([len(clip) for clip in frames])
        batch["frame_mask"] = (torch.arange(batch[FRAMES_COLUMN].shape[1])[None] < lengths[:, None]).long()
    if DOMAIN_COLUMN in examples[0]:
        if domain_statistics is None:
            raise ValueError("Clips with a domain column need the table of domain statistics (`with_domains`).")
        batch["domain_ids"] = torch.as_tensor([example[DOMAIN_COLUMN] for example in examples], dtype=torch.long)
        rows = [example.get(STATISTICS_ROW_COLUMN, example[DOMAIN_COLUMN]) for example in examples]
        batch["domain_statistics"] = domain_statistics[torch.as_tensor(rows, dtype=torch.long)]
    return batch


def pooled_features(features: Dataset) -> torch.Tensor:
    """Every clip's cached pooled features, `(num_clips, num_layers, width)`."""
    if POOLED_FEATURES_COLUMN not in features.column_names:
        raise ValueError("Domain normalisation works on pooled features: it needs trainable_encoder_layers=0.")
    return torch.as_tensor(np.asarray(features.with_format("numpy")[POOLED_FEATURES_COLUMN]))


def sorted_domain_names(domains: np.ndarray) -> list[str]:
    """The distinct domains of per-clip `domains`, named in the order of `with_domains`' table (sorted)."""
    return [str(name) for name in np.unique(domains)]


def with_domains(
    features: Dataset, domains: np.ndarray, names: list[str] | None = None
) -> tuple[Dataset, torch.Tensor, list[str]]:
    """`features` with a `domain` column (each clip's index into the returned table, which the collator also hands a
    model with residual weights as its `domain_ids`), the table of every domain's statistics, `(num_domains, 2,
    num_layers, width)`, each over its own clips (a corpus, a speaker), and the domains' names in table order.

    The table's order is `names` when given (a model's `config.domain_names`,
    `model_construction.residual_domain_names`, which must hold every domain of the data; a name without clips gets a
    row of NaN, which no clip reads), else the data's domains, sorted. No label is used, so a held-out domain's own
    statistics are fair to use: adaptation to its recording conditions."""
    names = sorted_domain_names(domains) if names is None else list(names)
    position = {name: k for k, name in enumerate(names)}
    domains = [str(domain) for domain in domains]
    if unknown := sorted(set(domains) - set(position)):
        raise ValueError(f"Domains {unknown} of the data are not among the model's domains {names}.")
    index = np.asarray([position[domain] for domain in domains])
    pooled = pooled_features(features)
    table = torch.stack(
        [
            domain_statistics(pooled[torch.as_tensor(index == k)]) if (index == k).any()
            else torch.full((2, *pooled.shape[1:]), float("nan"))
            for k in range(len(names))
        ]
    )
    return features.add_column(DOMAIN_COLUMN, index.tolist()), table, names


def shrunk_domain_statistics(
    features: Dataset, domains: np.ndarray, parents: np.ndarray, prior_windows: float
) -> tuple[np.ndarray, torch.Tensor]:
    """Each clip's row in a table of its domain's statistics (e.g. its speaker's), `(num_domains, 2, num_layers,
    width)`, each shrunk towards its parent domain's (its corpus's, over all the parent's clips) by `prior_windows`
    pseudo-clips (`domain_normalization.shrunk_moments`, `config.statistics_prior_windows`), as the annotator shrinks
    a folder's towards its collection's (`--adapt_by folder`). Every domain lies within one parent. No label is used."""
    pooled = pooled_features(features)
    names, index = np.unique(np.asarray(domains).astype(str), return_inverse=True)
    parents = np.asarray(parents).astype(str)
    parent_statistics = {p: domain_statistics(pooled[torch.as_tensor(parents == p)]) for p in set(parents)}
    table = []
    for k, name in enumerate(names):
        rows = index == k
        if len(set(parents[rows])) != 1:
            raise ValueError(f"Domain {name!r} lies in several parents {sorted(set(parents[rows]))}: namespace it.")
        parent = parents[rows][0]
        moments = domain_moments(pooled[torch.as_tensor(rows)])
        shrunk = shrunk_moments(*moments, parent_statistics[parent], prior_windows)
        table.append(domain_statistics_from_moments(*shrunk))
    return index, torch.stack(table)
