# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""What `genser-annotate` leaves on disk and how a run is resumed from it: shards of the input, each shard's Parquet
tables and its marker (written last, through temporary files, so a shard is either finished or absent), the
adaptation pass's per-shard moments and encoder features, and the closing summary, `errors.csv` and dataset card.
`bulk_annotator.py` describes the layout; these functions are the only ones that touch it.
"""

import csv
import hashlib
import io
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from .annotation_inputs import AnnotationInput

TABLES = ("windows", "files", "errors")
PROGRESS = "progress"  # a shard's marker, written after its tables: the shard is finished once it exists
# The first pass's per-shard moments, the statistics summed from them, and the shards' encoder features.
ADAPTATION = "adaptation"


def shards(inputs: Iterable[AnnotationInput], shard_size: int) -> Iterator[tuple[int, list[AnnotationInput]]]:
    """`(shard index, items)` for consecutive runs of `shard_size` items of the input order."""
    for shard, items in itertools.groupby(inputs, key=lambda item: item.index // shard_size):
        yield shard, list(items)


def shard_path(output_dir: Path, table: str, shard: int) -> Path:
    return output_dir / table / f"shard-{shard:05d}.parquet"


def marker_path(output_dir: Path, shard: int) -> Path:
    return output_dir / PROGRESS / f"shard-{shard:05d}.json"


def is_finished(output_dir: Path, shard: int) -> bool:
    return marker_path(output_dir, shard).exists()


def has_finished_work(output_dir: Path) -> bool:
    """Whether a run left anything to protect: a finished shard, or a shard's moments from the adaptation pass."""
    finished = any((output_dir / PROGRESS).glob("shard-*.json"))
    return finished or any((output_dir / ADAPTATION).glob("shard-*.safetensors"))


def items_digest(items: list[AnnotationInput]) -> str:
    """What a shard was made from: its items' indices, sources and audio (the real path of a file, so `./calls` and
    `calls` are the same input, or a digest of the bytes)."""
    digest = hashlib.sha256()
    for item in items:
        audio = item.audio  # None for an input known to be bad (`item.error`)
        if isinstance(audio, bytes):
            audio = hashlib.sha256(audio).hexdigest()
        elif audio is not None:
            audio = os.path.realpath(audio)
        # An item's group (`--adapt_by` a column) decides its statistics; one without a group digests as before.
        group = [] if item.group is None else [item.group]
        digest.update(json.dumps([item.index, item.source, audio, *group]).encode())
    return digest.hexdigest()


def check_finished_shard(
    output_dir: Path, shard: int, items: list[AnnotationInput], recorded: str | None = None
) -> None:
    """Refuses to go on when finished `shard` was made from other items than the input now gives for it (its
    marker's items digest, or `recorded`)."""
    recorded = recorded or json.loads(marker_path(output_dir, shard).read_text())["items"]
    if recorded != items_digest(items):
        raise ValueError(
            f"{output_dir} holds shard {shard} annotated from other inputs than the input now gives for it (files "
            "added, removed or renamed since that run?): resuming would annotate some inputs twice and others never. "
            "Pass a new --output_dir, or restore the input as it was."
        )


def adaptation_path(output_dir: Path, shard: int) -> Path:
    return output_dir / ADAPTATION / f"shard-{shard:05d}.safetensors"


def write_moments(
    output_dir: Path, shard: int, items: list[AnnotationInput], moments: dict, shape: tuple, shaped_by: dict
) -> None:
    """A shard's per-domain moments, with its items digest and what shaped them (`shaped_by`: the model's digest and
    the window and domain options), written whole (through a temporary file)."""
    domains = sorted(moments)
    tensors = {
        "count": torch.tensor([moments[domain][0] for domain in domains], dtype=torch.int64),
        "total": torch.stack([moments[domain][1] for domain in domains]) if domains else torch.zeros(0, *shape),
        "squares": torch.stack([moments[domain][2] for domain in domains]) if domains else torch.zeros(0, *shape),
    }
    metadata = {"items": items_digest(items), "domains": json.dumps(domains), "shaped_by": json.dumps(shaped_by)}
    save_tensors_whole(adaptation_path(output_dir, shard), tensors, metadata)


def read_moments(output_dir: Path, shard: int, shaped_by: dict) -> tuple[str, dict]:
    """A shard's items digest and its `{domain: (count, total, squares)}`; moments that another model or other
    options shaped (`shaped_by`, as `write_moments` recorded it) are refused, never mixed into this run's statistics."""
    from safetensors import safe_open

    with safe_open(adaptation_path(output_dir, shard), "pt") as handle:
        metadata = handle.metadata()
        count, total, squares = (handle.get_tensor(name) for name in ("count", "total", "squares"))
    recorded = json.loads(metadata.get("shaped_by", "null"))  # none in moments written before it was recorded
    if recorded != shaped_by:
        changed = sorted(name for name in shaped_by if (recorded or {}).get(name) != shaped_by[name])
        raise ValueError(
            f"{output_dir} holds the adaptation moments of shard {shard} computed with another model or other options "
            f"({', '.join(changed)}): resume with the same model and options, or pass another --output_dir."
        )
    domains = json.loads(metadata["domains"])
    return metadata["items"], {domain: (int(count[i]), total[i], squares[i]) for i, domain in enumerate(domains)}


def encoded_windows_path(output_dir: Path, shard: int) -> Path:
    return output_dir / ADAPTATION / f"features-{shard:05d}.safetensors"


def write_encoded_windows(output_dir: Path, shard: int, items: list[AnnotationInput], encoded: dict, shaped_by: dict):
    """A shard's readable items through the encoder (`{index: encode_windows' clip with its "duration"}`), so that the
    classification pass runs the head alone; with its items digest and `shaped_by`, written whole before the shard's
    moments (which mark the adaptation pass's shard as done)."""
    tensors = {}
    for index, clip in encoded.items():
        tensors[f"{index}/pooled"] = clip["pooled_layer_features"].float().cpu().contiguous()
        tensors[f"{index}/bounds"] = torch.tensor([clip["starts"], clip["ends"]], dtype=torch.float64)
        tensors[f"{index}/duration"] = torch.tensor(clip["duration"], dtype=torch.float64)
    metadata = {"items": items_digest(items), "shaped_by": json.dumps(shaped_by)}
    save_tensors_whole(encoded_windows_path(output_dir, shard), tensors, metadata)


def read_encoded_windows(output_dir: Path, shard: int, items: list[AnnotationInput], shaped_by: dict) -> dict | None:
    """What `write_encoded_windows` wrote for the shard (None where it has no file: removed once the run finished, or
    never kept); a file of other items, another model or other options is refused."""
    from safetensors import safe_open

    path = encoded_windows_path(output_dir, shard)
    if not path.exists():
        return None
    encoded = {}
    with safe_open(path, "pt") as handle:
        metadata = handle.metadata()
        if metadata["items"] != items_digest(items) or json.loads(metadata["shaped_by"]) != shaped_by:
            raise ValueError(
                f"{path} holds the encoder features of other items, another model or other options than this run's "
                f"shard {shard}: delete it (the shard is then classified from its audio), or pass another --output_dir."
            )
        for name in handle.keys():
            index, kind = name.split("/")
            encoded.setdefault(int(index), {})[kind] = handle.get_tensor(name)
    return {
        index: {
            "pooled_layer_features": tensors["pooled"],
            "starts": tensors["bounds"][0].tolist(),
            "ends": tensors["bounds"][1].tolist(),
            "duration": tensors["duration"].item(),
        }
        for index, tensors in encoded.items()
    }


def remove_encoded_windows(output_dir: Path) -> None:
    for path in (output_dir / ADAPTATION).glob("features-*.safetensors"):
        path.unlink()


def adaptation_statistics(output_dir: Path, num_shards: int, model, shaped_by: dict) -> dict[str, torch.Tensor]:
    """Every domain's statistics from the moments of all `num_shards` shards (`shaped_by`: see `read_moments`): the
    whole input's shrunk towards the training pool's, and with `--adapt_by folder` (or a column) each folder's (each
    value's) shrunk towards the whole input's, by their window counts (`collection_statistics_from_moments`).
    `adaptation/statistics.json` says what each got: its windows, its prior, and its own statistics' weight."""
    summed = {}
    for shard in range(num_shards):
        for domain, moments in read_moments(output_dir, shard, shaped_by)[1].items():
            previous = summed.get(domain, (0, 0.0, 0.0))
            summed[domain] = tuple(old + new for old, new in zip(previous, moments))
    if not summed:
        raise ValueError(
            "--adapt found no readable window in the whole input: annotate without --adapt (the model then uses its "
            "training pool's statistics)."
        )
    whole = tuple(sum(moments[i] for moments in summed.values()) for i in range(3))
    collection = model.collection_statistics_from_moments(*whole)
    prior_windows = model.config.statistics_prior_windows

    def described(windows: int, prior: str) -> dict:
        return {"windows": windows, "prior": prior, "own_weight": round(windows / (windows + prior_windows), 4)}

    record = {"prior_windows": prior_windows, "whole_input": described(whole[0], "training pool")}
    if shaped_by["adapt_by"] == "collection":  # one domain, the whole input
        statistics = {domain: collection for domain in summed}
    else:
        statistics = {
            domain: model.collection_statistics_from_moments(*moments, prior=collection)
            for domain, moments in summed.items()
        }
        record["domains"] = {domain: described(moments[0], "whole input") for domain, moments in summed.items()}
    write_whole(output_dir / ADAPTATION / "statistics.json", json.dumps(record, indent=2))
    return statistics


def write_dataset_card(output_dir: Path, tables: Iterable[str] = TABLES) -> None:
    """A README whose `configs` let `load_dataset(output_dir, name)` read each of `tables`."""
    configs = "".join(f"- config_name: {table}\n  data_files: {table}/*.parquet\n" for table in tables)
    card = (
        f"---\nconfigs:\n{configs}---\n\n# Gen-SER annotations\n\nWritten by `genser-annotate`; the options are in "
        "`run.json`. `windows`: one row per window; `files`: one row per file; `errors`: unreadable inputs.\n"
    )
    write_whole(output_dir / "README.md", card)


def temporary_path(path: Path) -> Path:
    """Where a process writes `path` before renaming it into place: a kill leaves a stray file, never a partial one
    under the real name."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def save_tensors_whole(path: Path, tensors: dict, metadata: dict) -> None:
    """Saves `tensors` with `metadata` to the safetensors file `path` through a temporary file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    save_file(tensors, temporary, metadata=metadata)
    os.replace(temporary, path)


def write_whole(path: Path, text: str) -> None:
    """Writes `text` to `path` through a temporary file (several processes may write the same file)."""
    temporary = temporary_path(path)
    temporary.write_text(text, encoding="utf-8", newline="")
    os.replace(temporary, path)


def summarise(output_dir: Path, num_shards: int) -> dict:
    """Totals over every finished shard; once all `num_shards` are done, also writes `errors.csv` and a dataset card
    that lists the tables holding rows."""
    import pyarrow.parquet as parquet

    finished = [shard for shard in range(num_shards) if is_finished(output_dir, shard)]
    files = [parquet.read_table(shard_path(output_dir, "files", shard), columns=["duration"]) for shard in finished]
    errors = [parquet.read_table(shard_path(output_dir, "errors", shard)).to_pylist() for shard in finished]
    errors = [row for shard in errors for row in shard]
    summary = {
        "finished_shards": len(finished),
        "num_shards": num_shards,
        "files": sum(table.num_rows for table in files),
        "windows": sum(parquet.read_metadata(shard_path(output_dir, "windows", shard)).num_rows for shard in finished),
        "audio_hours": sum(sum(table.column("duration").to_pylist()) for table in files) / 3600,
        "errors": len(errors),
    }
    if len(finished) == num_shards:
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=["source", "index", "error"])
        writer.writeheader()
        writer.writerows(errors)
        write_whole(output_dir / "errors.csv", table.getvalue())
        write_dataset_card(output_dir, [name for name in TABLES if summary[name]])  # each table's row count
    return summary
