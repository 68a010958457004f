# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""How the pipeline cuts long audio into chunks, under the option names of transformers' ASR pipeline.

`chunk_length_s` is a chunk's length and `stride_length_s` how far consecutive chunks overlap on each side (a number
for both sides, or a `(left, right)` pair), so that chunks start `chunk_length_s - left - right` seconds apart, as in
`AutomaticSpeechRecognitionPipeline`. Unlike there, the default stride is 0, chunks that do not overlap: the ASR
pipeline overlaps them to stitch transcripts at the seams, while scores averaged over the chunks have no seam.

`segment_length_s` and `segment_hop_s` are the former names (a length, and a hop between chunk starts): they still
work, with a `FutureWarning`. A hop is kept as given rather than turned into strides, so it cuts exactly the chunks it
always did.
"""

import numbers
import warnings

from .audio_input import MIN_DURATION_S

DEFAULT_CHUNK_LENGTH_S = 30.0


def check_seconds(name: str, value) -> float:
    """A chunk length or hop in seconds: a number of at least `MIN_DURATION_S` (shorter ones would cut the audio
    into a chunk per few samples, each padded back to `MIN_DURATION_S`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= MIN_DURATION_S:
        raise ValueError(f"{name} must be a number of seconds >= {MIN_DURATION_S}, got {value!r}.")
    return float(value)


def check_stride(value) -> tuple[float, float]:
    """`stride_length_s` as a `(left, right)` pair of non-negative seconds (a number is both sides)."""
    sides = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(sides) != 2 or not all(
        isinstance(side, numbers.Real) and not isinstance(side, bool) and 0 <= side < float("inf") for side in sides
    ):
        raise ValueError(
            f"stride_length_s must be a number of seconds >= 0 (the overlap on each side of a chunk) or a (left, "
            f"right) pair of them, got {value!r}."
        )
    return float(sides[0]), float(sides[1])


def refuse_both(old: str, old_value, new: str, new_value) -> None:
    if old_value is not None and new_value is not None:
        raise ValueError(f"{old} is the former name of {new}'s setting: pass {new} alone.")


def chunk_options(chunk_length_s=None, stride_length_s=None, segment_length_s=None, segment_hop_s=None) -> dict:
    """The chunking options given (not `None`), checked, under the names `chunk_samples` takes: `segment_length_s`
    as `chunk_length_s`, a stride as a `(left, right)` pair, and `segment_hop_s` kept as it is. An error names an option
    as it was given. Checks each option alone: how they combine is `chunk_samples`' to check."""
    refuse_both("segment_length_s", segment_length_s, "chunk_length_s", chunk_length_s)
    refuse_both("segment_hop_s", segment_hop_s, "stride_length_s", stride_length_s)
    options = {}
    if segment_length_s is not None:
        options["chunk_length_s"] = check_seconds("segment_length_s", segment_length_s)
    if chunk_length_s is not None:
        options["chunk_length_s"] = check_seconds("chunk_length_s", chunk_length_s)
    if stride_length_s is not None:
        options["stride_length_s"] = check_stride(stride_length_s)
    if segment_hop_s is not None:
        options["segment_hop_s"] = check_seconds("segment_hop_s", segment_hop_s)
    return options


def warn_former_names(chunk_length_s=None, segment_length_s=None, segment_hop_s=None) -> None:
    """A `FutureWarning` for each former option name given, naming the option to use and its equivalent value."""
    if segment_length_s is not None:
        warnings.warn(
            "`segment_length_s` is deprecated and will be removed in a future version; use `chunk_length_s` (the "
            f"name of transformers' ASR pipeline), the same length: chunk_length_s={segment_length_s:g}.",
            FutureWarning,
        )
    if segment_hop_s is not None:
        chunk = chunk_length_s if chunk_length_s is not None else segment_length_s
        stride = f"(chunk_length_s - {segment_hop_s:g}) / 2" if chunk is None else f"{(chunk - segment_hop_s) / 2:g}"
        warnings.warn(
            "`segment_hop_s` is deprecated and will be removed in a future version; use `stride_length_s`, how far "
            "consecutive chunks overlap on each side (as in transformers' ASR pipeline, chunks start chunk_length_s "
            f"minus both strides apart): segment_hop_s={segment_hop_s:g} is stride_length_s={stride}.",
            FutureWarning,
        )


def chunk_length_and_hop_s(
    chunk_length_s=DEFAULT_CHUNK_LENGTH_S, stride_length_s=None, segment_hop_s=None
) -> tuple[float, float]:
    """A chunk's length and the hop between chunk starts, in seconds, from `chunk_options`' options."""
    if segment_hop_s is not None:
        return chunk_length_s, segment_hop_s
    left, right = stride_length_s or (0.0, 0.0)
    return chunk_length_s, chunk_length_s - left - right


def chunk_samples(sampling_rate: int, **chunking) -> tuple[int, int]:
    """A chunk's length and the hop between chunk starts, in samples, from `chunk_options`' options (`chunking`, those
    of a pipeline's construction and of its call together: so this is where they are checked against each other)."""
    refuse_both("segment_hop_s", chunking.get("segment_hop_s"), "stride_length_s", chunking.get("stride_length_s"))
    chunk_length_s, hop_s = chunk_length_and_hop_s(**chunking)
    window, hop = max(1, round(chunk_length_s * sampling_rate)), max(1, round(hop_s * sampling_rate))
    if "segment_hop_s" in chunking and hop > window:
        raise ValueError(
            f"segment_hop_s={hop_s:g} is longer than chunk_length_s={chunk_length_s:g}: the audio between chunks "
            "would be skipped. Pass a hop no longer than the window (or stride_length_s, an overlap)."
        )
    # Compared in samples: a float residue does not refuse strides that leave exactly `MIN_DURATION_S`.
    if "segment_hop_s" not in chunking and hop < round(MIN_DURATION_S * sampling_rate):
        raise ValueError(
            f"stride_length_s={chunking['stride_length_s']} leaves chunks of chunk_length_s={chunk_length_s:g} "
            f"starting {hop_s:g} s apart: consecutive chunks overlap by both strides, so together they must be at "
            f"most chunk_length_s - {MIN_DURATION_S} s. Pass smaller strides or a longer chunk_length_s."
        )
    return window, hop


def checked_chunking(feature_extractor, **options) -> dict:
    """`chunk_options` of `options` (the chunking options, current or former names), with a chunk length that
    `feature_extractor` takes and, where `options` set it, the strides or hop checked against it."""
    chunking = chunk_options(**options)
    if "chunk_length_s" in chunking:
        sampling_rate = feature_extractor.sampling_rate
        window, _ = chunk_samples(sampling_rate, **chunking)
        max_window = getattr(feature_extractor, "n_samples", None)  # Whisper's extractor cuts input at 30 s
        if max_window is not None and window > max_window:
            name = "chunk_length_s" if options.get("segment_length_s") is None else "segment_length_s"
            raise ValueError(
                f"{name}={chunking['chunk_length_s']:g} is longer than the {max_window / sampling_rate:g} s this "
                f"model's feature extractor accepts; pass a shorter {name}."
            )
    return chunking


def chunks(audio, window: int, hop: int):
    """Yields `(start, end, is_last)` sample indices of `audio`'s chunks, `window` samples long (the last may be
    shorter), `hop` samples apart, up to the chunk that reaches the end."""
    start = 0
    while True:
        end = min(start + window, audio.shape[0])
        is_last = end == audio.shape[0]
        yield start, end, is_last
        if is_last:
            return
        start += hop
