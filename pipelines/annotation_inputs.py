# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""What the bulk annotator reads: a folder of audio files, a CSV/JSON manifest of paths, or a `datasets` dataset (a
Hub id or a local folder) read in streaming mode, as one numbered sequence of `AnnotationInput`s.

The numbering is the input's own order (sorted paths for a folder, row order otherwise), so every process and every
resumed run agrees on which items make up which shard. Audio is decoded only when an item is annotated, one item at
a time, and a file that cannot be decoded is reported as that item's error instead of stopping the run.
"""

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio_input import decode_audio_file


@dataclass(frozen=True)
class AnnotationInput:
    """One recording to annotate.

    Args:
        index (`int`): position in the input order (which shard it belongs to follows from it).
        source (`str`): what the output rows name it by: the path relative to the folder, the manifest's path or id,
            or the dataset's id column (else its audio path, else the row number).
        audio (`str` or `bytes`): a file path, or an undecoded file's contents (streamed datasets); None for an
            input that is known to be bad before decoding (`error` says why).
        error (`str`, *optional*): why the input cannot be annotated (a manifest row without a path): it becomes
            that item's error row, like an unreadable file.
        group (`str`, *optional*): its value of the manifest's or dataset's column that `--adapt_by` names (e.g. its
            speaker): the items of one value are adapted to together.
    """

    index: int
    source: str
    audio: str | bytes | None
    error: str | None = None
    group: str | None = None


def folder_inputs(folder: str | os.PathLike, extensions: list[str] | None = None) -> list[AnnotationInput]:
    """Every file under `folder` (recursively, hidden files and folders left out), in sorted path order; with
    `extensions` (e.g. `["wav", "flac"]`), only files ending in one of them."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"--folder {str(folder)!r} is not a directory; pass the folder that holds the audio.")
    suffixes = None if not extensions else {"." + extension.lower().lstrip(".") for extension in extensions}
    paths = sorted(
        path.relative_to(root)
        for path in root.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and (suffixes is None or path.suffix.lower() in suffixes)
    )
    return [AnnotationInput(index, path.as_posix(), str(root / path)) for index, path in enumerate(paths)]


def manifest_inputs(
    manifest: str | os.PathLike,
    path_column: str = "path",
    id_column: str | None = None,
    group_column: str | None = None,
) -> list[AnnotationInput]:
    """The rows of a CSV, JSON (a list of objects) or JSON Lines manifest; relative paths are taken from the
    manifest's folder. Rows are named by `id_column` when given, else by the path as written; `group_column` gives
    each its `group`."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"--manifest {str(manifest)!r} is not a file; pass a .csv, .json or .jsonl manifest.")
    with open(manifest, encoding="utf-8", newline="") as handle:
        if manifest.suffix.lower() == ".csv":
            rows = list(csv.DictReader(handle))
        elif manifest.suffix.lower() == ".jsonl":
            rows = [json.loads(line) for line in handle if line.strip()]
        elif manifest.suffix.lower() == ".json":
            rows = json.load(handle)
        else:
            raise ValueError(f"--manifest must end in .csv, .json or .jsonl, got {manifest.name!r}.")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"The manifest {manifest.name} must hold one object (row) per file, e.g. {{\"path\": ...}}.")
    for column in [path_column] + [name for name in (id_column, group_column) if name]:
        if rows and not any(column in row for row in rows):
            raise ValueError(
                f"The manifest {manifest.name} has no column {column!r} (its columns: {sorted(rows[0])}); pass the "
                "right --path_column / --id_column / --adapt_by."
            )
    return [
        manifest_input(index, row, manifest.parent, path_column, id_column, group_column)
        for index, row in enumerate(rows)
    ]


def manifest_input(
    index: int, row: dict, folder: Path, path_column: str, id_column: str | None, group_column: str | None = None
) -> AnnotationInput:
    """One manifest row; a row without a usable path, or without a value in `group_column`, is an input with an
    `error`, so it becomes an error row."""
    path, identifier = row.get(path_column), row.get(id_column) if id_column else None
    has_path = isinstance(path, str) and path != ""
    source = identifier if identifier not in (None, "") else path if has_path else f"row {index + 1}"
    if not has_path:
        reason = f"manifest row {index + 1} has no path in column {path_column!r} (got {path!r}); give it a file path"
        return AnnotationInput(index, str(source), None, reason)
    group, error = row_group(row, group_column, f"manifest row {index + 1}")
    return AnnotationInput(index, str(source), None if error else str(folder / path), error, group)


def row_group(row: dict, group_column: str | None, name: str) -> tuple[str | None, str | None]:
    """A row's value of `group_column` as its group, or, where it has none, why it cannot be adapted to (its error):
    a clip is never silently standardised with statistics other than those asked for."""
    if group_column is None:
        return None, None
    value = row.get(group_column)
    if value is None or str(value) == "":
        return None, (
            f"{name} has no value in column {group_column!r}, which --adapt_by names; give it one, or adapt by "
            "collection"
        )
    return str(value), None


def dataset_inputs(
    name_or_path: str,
    config_name: str | None = None,
    split: str = "train",
    audio_column: str | None = None,
    id_column: str | None = None,
    group_column: str | None = None,
) -> Iterator[AnnotationInput]:
    """A `datasets` dataset read in streaming mode, so nothing is downloaded whole: a Hub id or a local folder in
    any layout `load_dataset` reads (Parquet shards, audiofolder, ...). Audio is kept undecoded (the bytes or path
    of each file) and decoded per item, so a corrupted row becomes that row's error, not the end of the stream.
    `group_column` gives each item its `group` (a row without a value becomes an error row)."""
    from datasets import Audio, load_dataset

    dataset = load_dataset(name_or_path, config_name, split=split, streaming=True)
    features = dataset.features or {}
    if audio_column is None:
        audio_column = next((column for column, feature in features.items() if isinstance(feature, Audio)), None)
        if audio_column is None:
            raise ValueError(
                f"Found no audio column in {name_or_path!r} (columns: {sorted(features)}); pass --audio_column."
            )
    elif audio_column not in features:
        raise ValueError(f"{name_or_path!r} has no column {audio_column!r} (columns: {sorted(features)}).")
    if group_column is not None and group_column not in features:
        raise ValueError(
            f"{name_or_path!r} has no column {group_column!r} for --adapt_by (columns: {sorted(features)}); name one "
            "of them, or adapt by collection."
        )
    dataset = dataset.cast_column(audio_column, Audio(decode=False))
    for index, row in enumerate(dataset):
        audio = row[audio_column]
        source = row[id_column] if id_column else audio.get("path") or str(index)
        group, error = row_group(row, group_column, f"dataset row {index + 1}")
        audio = None if error else audio.get("bytes") or audio["path"]
        yield AnnotationInput(index, str(source), audio, error, group)


def decode(audio: str | bytes, sampling_rate: int) -> np.ndarray:
    """A file (path or contents) as a mono float32 waveform at `sampling_rate`, decoded in-process as the pipeline and
    the training data decode it (`audio_input.decode_audio_file`), which spares the ffmpeg process per path; a
    failure becomes the item's error row."""
    try:
        return decode_audio_file(audio, sampling_rate)
    except ValueError as error:
        raise ValueError(f"could not decode audio: {error}") from None
