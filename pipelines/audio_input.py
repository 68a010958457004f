# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Turns whatever a user hands the pipeline into one clean mono float32 waveform at the model's sampling rate.

Every problem is reported here, as a `ValueError`/`TypeError`/`FileNotFoundError` that says what was wrong and
what to do, instead of surfacing later as a shape or NaN error deep inside the encoder.
"""

import os
import sys

import numpy as np
import torch
import torchaudio.functional
from transformers import WhisperFeatureExtractor

# Shorter clips are padded with silence to this length: a wav2vec2-style front end needs 400 samples (25 ms) before
# it yields a single frame, and 0.1 s gives every supported encoder a few frames.
MIN_DURATION_S = 0.1
# A 2-D array whose smaller side is at most this is read as (channels, samples) or (samples, channels).
MAX_CHANNELS = 8


def decode_audio_file(source: str | os.PathLike | bytes, sampling_rate: int) -> np.ndarray:
    """An audio file (path or contents) as a mono float32 waveform at `sampling_rate`.

    The one decode-and-resample path of the project: FFmpeg's libraries, through torchcodec, decode the file and
    resample it as `datasets.Audio(sampling_rate=...)` does for training, and channels are averaged as
    `to_mono_float` does; the pipeline, `genser-annotate` and the training data all come here, so one file gives one
    waveform whichever way it is read.
    """
    if isinstance(source, bytes):
        name = "the given bytes"
    else:
        source = os.fspath(source)
        name = repr(source)
        if not os.path.isfile(source):
            raise FileNotFoundError(f"Audio file not found: {source!r}. Pass the path of an existing audio file.")
    try:
        from torchcodec.decoders import AudioDecoder
    except (ImportError, RuntimeError, OSError) as error:
        raise ValueError(
            f"Decoding {name} needs torchcodec and FFmpeg's shared libraries: pip install torchcodec, and install "
            f"ffmpeg (e.g. apt install ffmpeg). ({type(error).__name__}: {str(error).splitlines()[0]})"
        ) from None
    try:
        samples = AudioDecoder(source, sample_rate=sampling_rate).get_all_samples().data  # (channels, samples)
        if samples.numel() == 0:
            raise RuntimeError("no samples")
    except (RuntimeError, ValueError) as error:
        # torchcodec prefixes FFmpeg's reason with its own source location; the reason is what a user can act on.
        reason = str(error).split(", ")[-1]
        raise ValueError(
            f"Could not decode any audio from {name}: the file is corrupted, empty or not an audio file ({reason})."
        ) from None
    return to_mono_float(samples.mean(dim=0), f"audio of {name}")


def to_mono_float(array, source: str = "audio") -> np.ndarray:
    """Checks a waveform and returns it as 1-D float32: integer samples are scaled to [-1, 1), multi-channel audio
    (up to `MAX_CHANNELS` channels, either layout) is averaged to mono."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"Expected the {source} as a numpy array or torch tensor, got {type(array).__name__}. Pass a file path, "
            'a 1-D array, or {"array": ..., "sampling_rate": ...}.'
        )
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        array = (array.astype(np.float64) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)
    elif not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"The {source} has samples of dtype {array.dtype}; pass float or integer PCM samples.")
    if array.ndim == 2:
        channel_axis = int(np.argmin(array.shape))
        if array.shape[channel_axis] > MAX_CHANNELS:
            raise ValueError(
                f"The {source} has shape {array.shape}: neither side looks like a channel count (at most "
                f"{MAX_CHANNELS}). Pass a 1-D waveform or a (channels, samples) array."
            )
        array = array.mean(axis=channel_axis)
    elif array.ndim != 1:
        raise ValueError(f"The {source} has shape {array.shape}; pass a 1-D waveform or a (channels, samples) array.")
    if array.size == 0:
        raise ValueError(f"The {source} is empty (0 samples); pass at least a fraction of a second of audio.")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            f"The {source} contains {int(bad.sum())} NaN or infinite sample(s) out of {array.size}; replace them "
            "(e.g. np.nan_to_num) before classifying."
        )
    return array.astype(np.float32, copy=False)


def load_audio(inputs, sampling_rate: int) -> np.ndarray:
    """Any pipeline input (file path, file bytes, array, `{"array"/"raw", "sampling_rate"}`, `datasets` audio value)
    as a 1-D float32 waveform at `sampling_rate`. Files are decoded and resampled by `decode_audio_file`; waveforms
    given at another rate (no file to hand FFmpeg) are resampled with torchaudio."""
    source_rate = sampling_rate
    torchcodec = sys.modules.get("torchcodec")  # an AudioDecoder input means torchcodec is already imported
    if torchcodec is not None and isinstance(inputs, torchcodec.decoders.AudioDecoder):
        samples = inputs.get_all_samples()
        inputs = {"array": samples.data, "sampling_rate": samples.sample_rate}
    if isinstance(inputs, (str, os.PathLike, bytes)):
        return decode_audio_file(inputs, sampling_rate)  # already checked, mono and at `sampling_rate`
    if isinstance(inputs, dict):
        array = inputs["raw"] if "raw" in inputs else inputs.get("array")
        source_rate = inputs.get("sampling_rate")
        if array is None or source_rate is None:
            raise ValueError(
                f'A dict input needs an "array" (or "raw") waveform and its "sampling_rate"; got keys {sorted(inputs)}.'
            )
        if not isinstance(source_rate, (int, np.integer)) or source_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive integer (Hz), got {source_rate!r}.")
    else:
        array = inputs  # a bare array is taken to be at the model's sampling rate, as in transformers' pipelines
    array = to_mono_float(array)
    if source_rate != sampling_rate:
        array = torchaudio.functional.resample(torch.from_numpy(array), int(source_rate), sampling_rate).numpy()
    return array


def pad_to_min_duration(array: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Pads a waveform shorter than `MIN_DURATION_S` with silence at the end."""
    min_length = int(np.ceil(MIN_DURATION_S * sampling_rate))
    return np.pad(array, (0, max(0, min_length - array.shape[0])))


# How the frozen speech encoder may run: in float32, or with its matrix products in bfloat16 (`torch.autocast`): about
# twice as fast on CPUs with bfloat16 instructions and on GPUs, for features very close to float32's (BENCHMARKS.md).
ENCODER_PRECISIONS = ("float32", "bfloat16")


def encoder_autocast(precision: str, device_type: str):
    """The context to run the speech encoder in at `precision` (one of `ENCODER_PRECISIONS`) on `device_type`."""
    if precision not in ENCODER_PRECISIONS:
        raise ValueError(f"encoder_precision must be one of {ENCODER_PRECISIONS}, got {precision!r}.")
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def batches_by_length(arrays: dict | list, batch_size: int) -> list[list]:
    """The keys of `arrays` (indices of a list) sorted by their array's length, cut into batches of `batch_size`: the
    clips of a batch are of similar length, so padding them to the longest costs little."""
    keys = sorted(arrays.keys() if isinstance(arrays, dict) else range(len(arrays)), key=lambda key: len(arrays[key]))
    return [keys[start : start + batch_size] for start in range(0, len(keys), batch_size)]


def speech_encoder_inputs(feature_extractor, arrays: list, whole_window: bool = False):
    """The speech encoder's inputs plus `attention_mask` for a batch of mono arrays at the extractor's sampling rate:
    a `BatchFeature` of tensors, padded to the batch's longest clip.

    Whisper's extractor pads every clip to its 30 s window. Unless `whole_window` (for a model that encodes that
    window, `trim_padding=False`), the batch is padded instead to its longest clip plus `n_fft` samples of silence,
    rounded to whole encoder frames (two mel frames): every mel frame that a clip's real input reaches is then
    computed from the same samples as in the 30 s window, at a fraction of the cost.
    """
    rate = feature_extractor.sampling_rate
    if not isinstance(feature_extractor, WhisperFeatureExtractor):
        return feature_extractor(
            arrays, sampling_rate=rate, padding=True, return_attention_mask=True, return_tensors="pt"
        )
    length = feature_extractor.n_samples
    if not whole_window:
        step = 2 * feature_extractor.hop_length
        length = min(-(-(max(len(array) for array in arrays) + feature_extractor.n_fft) // step) * step, length)
    return feature_extractor(
        arrays, sampling_rate=rate, max_length=length, return_attention_mask=True, return_tensors="pt"
    )
