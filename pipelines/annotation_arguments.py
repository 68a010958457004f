# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""`genser-annotate`'s options (`AnnotationArguments`), as `HfArgumentParser` reads them from the command line."""

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from .annotation_inputs import AnnotationInput, dataset_inputs, folder_inputs, manifest_inputs
from .audio_chunks import chunk_length_and_hop_s, chunk_options

ADAPT_BY = ("collection", "folder")


@dataclass
class AnnotationArguments:
    model: str = field(metadata={"help": "The audio-classification model: a Hub id or a local directory."})
    output_dir: str = field(metadata={"help": "Where the Parquet dataset goes; a run there is resumed."})
    folder: str | None = field(default=None, metadata={"help": "Annotate every file under this folder (recursive)."})
    manifest: str | None = field(default=None, metadata={"help": "Annotate the files listed in a .csv/.json/.jsonl."})
    dataset: str | None = field(
        default=None, metadata={"help": "Annotate a `datasets` dataset (Hub id or folder), streamed."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "The dataset's configuration name."})
    split: str = field(default="train", metadata={"help": "The dataset split to annotate."})
    audio_column: str | None = field(
        default=None, metadata={"help": "The dataset's audio column (default: its first Audio column)."}
    )
    id_column: str | None = field(
        default=None, metadata={"help": "Manifest or dataset column naming each item in the output."}
    )
    path_column: str = field(default="path", metadata={"help": "The manifest column holding file paths."})
    extensions: str | None = field(
        default=None, metadata={"help": "Comma-separated extensions a folder's files must have (default: all)."}
    )
    chunk_length_s: float | None = field(
        default=None, metadata={"help": "Chunk length in seconds (default 30): longer audio is classified by chunks."}
    )
    stride_length_s: list[float] | None = field(
        default=None,
        metadata={
            "help": "How far consecutive chunks overlap, in seconds: on each side, or left and right (default 0); "
            "chunks start chunk_length_s minus both strides apart, as in transformers' ASR pipeline."
        },
    )
    segment_length_s: float | None = field(
        default=None, metadata={"help": "Deprecated: the former name of --chunk_length_s."}
    )
    segment_hop_s: float | None = field(
        default=None,
        metadata={"help": "Deprecated: the hop between chunk starts; use --stride_length_s (chunk length - hop) / 2."},
    )
    num_inference_steps: int | None = field(
        default=None, metadata={"help": "Gen-SER sampling steps (default: the model's)."}
    )
    seed: int | None = field(default=None, metadata={"help": "Gen-SER sampling seed (default: the model's)."})
    num_samples: int = field(default=1, metadata={"help": "Gen-SER initial samples per window; > 1 adds agreement."})
    batch_size: int = field(default=8, metadata={"help": "Windows per forward pass."})
    encoder_precision: str = field(
        default="float32",
        metadata={
            "help": "float32, or bfloat16: the speech encoder's matrix products in bfloat16, about twice as fast on "
            "CPUs with bfloat16 instructions and on GPUs (BENCHMARKS.md)."
        },
    )
    shard_size: int = field(
        default=64, metadata={"help": "Items per output shard (a shard's audio is decoded at once)."}
    )
    max_shards: int | None = field(
        default=None, metadata={"help": "Stop each process after this many new shards; run again to go on."}
    )
    adapt: bool = field(
        default=False,
        metadata={
            "help": "First compute the input's own statistics and classify every clip with them (models trained "
            "with domain normalisation): adaptation to a corpus, recording setup or speaker the model has not heard."
        },
    )
    adapt_by: str = field(
        default="collection",
        metadata={
            "help": "With --adapt: one set of statistics for the whole input (collection), one per folder (folder), "
            "or, for a manifest or dataset, one per value of the column this names (e.g. speaker); a folder's or a "
            "value's shrunk towards the whole input's. Per speaker suits collections where each speaker shows "
            "several emotions (BENCHMARKS.md)."
        },
    )
    keep_features: bool = field(
        default=False,
        metadata={
            "help": "With --adapt: keep the encoder features of every window (adaptation/features-*.safetensors), "
            "which are otherwise removed once every shard is done."
        },
    )

    def __post_init__(self):
        given = [name for name in ("folder", "manifest", "dataset") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(f"Pass exactly one input: --folder, --manifest or --dataset (got {given or 'none'}).")
        if self.shard_size < 1 or self.batch_size < 1 or self.num_samples < 1:
            raise ValueError("--shard_size, --batch_size and --num_samples must be positive integers.")
        if self.max_shards is not None and self.max_shards < 1:
            raise ValueError(f"--max_shards must be a positive integer, got {self.max_shards}.")
        if self.adapt_by not in ADAPT_BY and self.folder:
            raise ValueError(
                f"--adapt_by must be one of {ADAPT_BY} for a --folder input, got {self.adapt_by!r}: only a --manifest "
                "or --dataset has columns to adapt by."
            )
        if self.adapt_by != "collection" and not self.adapt:
            raise ValueError(f"--adapt_by {self.adapt_by} says what --adapt adapts to: it needs --adapt.")
        if not self.adapt_by:
            raise ValueError(f"--adapt_by takes one of {ADAPT_BY} or a column of the manifest or dataset, got ''.")
        if self.keep_features and not self.adapt:
            raise ValueError("--keep_features keeps what the adaptation pass encodes: it needs --adapt.")

    def inputs(self) -> Iterable[AnnotationInput]:
        if self.folder:
            return folder_inputs(self.folder, self.extensions.split(",") if self.extensions else None)
        group_column = None if self.adapt_by in ADAPT_BY else self.adapt_by
        if self.manifest:
            return manifest_inputs(self.manifest, self.path_column, self.id_column, group_column)
        return dataset_inputs(
            self.dataset, self.dataset_config, self.split, self.audio_column, self.id_column, group_column
        )

    def chunking(self) -> dict:
        """The chunking options given, as the pipeline takes them (which checks them, and warns of former names)."""
        stride = self.stride_length_s
        options = {
            "chunk_length_s": self.chunk_length_s,
            "stride_length_s": stride[0] if stride is not None and len(stride) == 1 else stride,
            "segment_length_s": self.segment_length_s,
            "segment_hop_s": self.segment_hop_s,
        }
        return {name: value for name, value in options.items() if value is not None}

    def pipeline_options(self) -> dict:
        """Chunking and sampling options, passed to the pipeline call as given."""
        options = {"num_inference_steps": self.num_inference_steps, "seed": self.seed}
        if self.encoder_precision != "float32":
            options["encoder_precision"] = self.encoder_precision
        if self.num_samples > 1:
            options["num_samples"] = self.num_samples
        return self.chunking() | {name: value for name, value in options.items() if value is not None}

    def recorded(self, names: Iterable[str]) -> dict:
        """The options `names` as `run.json` and the adaptation pass's moments record them. The chunks are recorded
        by what shapes them, their length and the hop between their starts (`None`: the length), under the names
        those records have always given them (`segment_length_s`, `segment_hop_s`), whichever options set them: so
        a run recorded before the options were renamed resumes with the same chunks given either way."""
        chunking = chunk_options(**self.chunking())
        length, hop = chunk_length_and_hop_s(**chunking)
        if "segment_hop_s" not in chunking and hop == length:
            hop = None
        values = asdict(self) | {"segment_length_s": length, "segment_hop_s": hop}
        return {name: values[name] for name in names}
