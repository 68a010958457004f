# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""The audio-classification pipeline for real recordings: long audio, uncertainty, label masking, robust input."""

import difflib
import inspect
import itertools
import numbers
import os

import torch
from transformers import AudioClassificationPipeline, AutoModelForAudioClassification
from transformers.dynamic_module_utils import custom_object_save
from transformers.pipelines.base import ChunkPipeline

# Relative imports only: this module and those it imports are copied beside every saved model's code, so that
# `pipeline(..., trust_remote_code=True)` runs them where this package is not installed.
from .audio_chunks import checked_chunking, chunk_samples, chunks, warn_former_names
from .audio_input import (
    batches_by_length,
    encoder_autocast,
    load_audio,
    pad_to_min_duration,
    speech_encoder_inputs,
)

# The key of a clip already through the encoder (`encode_windows`): its windows' pooled features.
ENCODED_WINDOWS = "pooled_layer_features"
GENSER_MODEL_TYPE = "genser"  # `GenSERConfig.model_type`; a remote-code model has a class of its own module


def check_integer(name: str, value, minimum: int) -> int:
    """`value` as an `int` if it is an integer (Python or numpy) of at least `minimum` (0 or 1), else a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise ValueError(f"{name} must be {kind}, got {value!r} ({type(value).__name__}).")
    return int(value)


class GenSERAudioClassificationPipeline(ChunkPipeline, AudioClassificationPipeline):
    """`AudioClassificationPipeline` for real recordings. On top of the stock options (`top_k`, default every label,
    clamped to each task's own label count; `function_to_apply`; `batch_size`) it takes, at construction or call time
    (an option it does not know is a `TypeError` that names the nearest one, never silently dropped):

    - `chunk_length_s` (`float`, default 30) and `stride_length_s` (`float` or `(left, right)`, default 0), named
      and meant as in transformers' ASR pipeline: audio longer than a chunk is classified chunk by chunk, so memory
      stays bounded whatever the length, consecutive chunks overlapping by the strides (so starting `chunk_length_s
      - left - right` apart); the scores are the chunks' scores averaged with their durations as weights. Their
      former names `segment_length_s` and `segment_hop_s` (the hop between chunk starts) still work, with a
      `FutureWarning` (`audio_chunks`);
    - `return_segments` (`bool`, default `False`): return `{"scores": [...], "segments": [{"start", "end",
      "scores"}, ...]}` (times in seconds) instead of the list of scores;
    - `candidate_labels` (`list[str]`): restrict the prediction to these labels (the softmax runs over them only);
    - Gen-SER models only: `num_inference_steps` (bridge sampling steps, default the model's), `seed` (of the
      sampling draws, default the model's `config.sampling_seed`), and `num_samples` (initial samples per clip,
      default 1): with more than one, each label also gets an `"agreement"`, the share of samples that voted for it;
      and `return_trajectory` (`bool`, default `False`): also return `"trajectory"`, `{"times": [...], "similarities":
      {label: [...]}}`, the cosine similarity of the bridge sample x_t to each class code at every time of the
      schedule (x_0 first; the first sample's trajectory; a multi-task model's first task, on its slice of
      concatenated codes), averaged over windows by duration like the scores. It
      comes back in a dict, `{"scores": [...], "trajectory": {...}}`, and in every segment with `return_segments`;
    - multi-task Gen-SER models (`config.label_sets`) only: `return_tasks` (`bool`, default `False`): return every
      task's scores, `{"emotion": [...], "gender": [...]}` (and so in `"scores"` and in every segment with
      `return_segments`); `candidate_labels` and `"agreement"` apply to the first task. Without it the output is the
      first task's, exactly as for a single-task model;
    - Gen-SER models with domain normalisation (`config.domain_normalization`) only: `domain_statistics`
      (`torch.Tensor` or array of shape `(2, num_layers, width)`): the statistics of the collection the clip comes
      from (`collection_statistics`), for a clip of a corpus, recording setup, speaker or folder the model has not
      heard. Without them the model uses its training pool's, as for a lone clip;
    - Gen-SER models trained with domain residuals (`config.domain_names`, e.g. the release's corpora) only: `domain`
      (`str`, one of `config.domain_names`): read the clip with that training domain's residual weights on top of the
      shared ones, for more clips of a corpus the model was trained on (its in-corpus figures were measured so, with
      that corpus's `domain_statistics`). Without it the shared weights alone, as for any new speech;
    - Gen-SER models only: `encoder_precision` (`"float32"`, the default, or `"bfloat16"`): run the speech encoder
      with its matrix products in bfloat16 (`torch.autocast`), about twice as fast on CPUs with bfloat16
      instructions and on GPUs, for features very close to float32's (`BENCHMARKS.md`); the head runs in float32.

    Input can be a file path, file bytes, a waveform (numpy or torch; int PCM is scaled, up to 8 channels are
    averaged) with or without `{"array"/"raw", "sampling_rate"}` (any rate, resampled), or a `datasets` audio value;
    clips under 0.1 s are padded with silence. Bad input (missing or undecodable file, empty audio, NaN/Inf
    samples) raises an error saying what to fix. For models other than Gen-SER it behaves like the stock pipeline
    plus the options above that are not Gen-SER's.
    """

    def _sanitize_parameters(
        self,
        top_k=None,
        function_to_apply=None,
        chunk_length_s=None,
        stride_length_s=None,
        return_segments=None,
        candidate_labels=None,
        num_inference_steps=None,
        seed=None,
        num_samples=None,
        return_trajectory=None,
        return_tasks=None,
        domain_statistics=None,
        domain=None,
        encoder_precision=None,
        segment_length_s=None,
        segment_hop_s=None,
        **kwargs,
    ):
        if kwargs:
            self._refuse_unknown_options(kwargs)
        postprocess_params = self._postprocess_options(
            top_k, function_to_apply, return_segments, candidate_labels, return_trajectory, return_tasks
        )
        preprocess_params = checked_chunking(
            self.feature_extractor,
            chunk_length_s=chunk_length_s,
            stride_length_s=stride_length_s,
            segment_length_s=segment_length_s,
            segment_hop_s=segment_hop_s,
        )
        forward_params = self._forward_options(
            num_inference_steps, seed, num_samples, return_trajectory, domain_statistics, domain, encoder_precision
        )
        self._check_model_options(forward_params, return_trajectory, return_tasks)
        warn_former_names(chunk_length_s, segment_length_s, segment_hop_s)
        return preprocess_params, forward_params, postprocess_params

    def _postprocess_options(
        self, top_k, function_to_apply, return_segments, candidate_labels, return_trajectory, return_tasks
    ) -> dict:
        # Not the stock pipeline's top_k, which it clamps to the first task's label count: each task clamps its own.
        _, _, postprocess_params = super()._sanitize_parameters(function_to_apply=function_to_apply)
        postprocess_params["top_k"] = None if top_k is None else check_integer("top_k", top_k, 1)
        if candidate_labels is not None:
            postprocess_params["label_ids"] = self._label_ids(candidate_labels)
        flags = {
            "return_segments": return_segments,
            "return_trajectory": return_trajectory,
            "return_tasks": return_tasks,
        }
        return postprocess_params | {name: flag for name, flag in flags.items() if flag is not None}

    def _forward_options(
        self, num_inference_steps, seed, num_samples, return_trajectory, domain_statistics, domain, encoder_precision
    ) -> dict:
        """The Gen-SER options of `_forward` that were given, checked."""
        steps = None if num_inference_steps is None else check_integer("num_inference_steps", num_inference_steps, 1)
        sampling = {
            "num_inference_steps": steps,
            "seed": None if seed is None else check_integer("seed", seed, 0),
            "num_samples": None if num_samples is None else check_integer("num_samples", num_samples, 1),
            "return_trajectory": return_trajectory,
        }
        forward_params = {name: value for name, value in sampling.items() if value is not None}
        if domain_statistics is not None:
            forward_params["domain_statistics"] = self._checked_domain_statistics(domain_statistics)
        if domain is not None:
            forward_params["domain_id"] = self._domain_id(domain)
        if encoder_precision is not None:
            encoder_autocast(encoder_precision, self.device.type)  # checks the name
            forward_params["encoder_precision"] = encoder_precision
        return forward_params

    def _check_model_options(self, forward_params: dict, return_trajectory, return_tasks) -> None:
        """Refuses the options this pipeline's model cannot honour."""
        genser = self.is_genser
        multi_task = genser and bool(self.model.config.label_sets)
        if return_tasks and not multi_task:
            raise ValueError(
                "return_tasks needs a multi-task Gen-SER model (config.label_sets); this model predicts one label set, "
                "so drop return_tasks."
            )
        tuple_codes = multi_task and self.model.config.multi_task_codes == "tuple"
        if return_trajectory and genser and (tuple_codes or self.model.is_dimensional):
            raise ValueError(
                "return_trajectory is available for classification models with one code per label (tuple codes "
                "combine several label sets, dimensional codes encode values); drop return_trajectory."
            )
        if forward_params and not genser:
            raise ValueError(
                f"{sorted(forward_params)} only apply to Gen-SER models, not to {type(self.model).__name__}; "
                "remove them."
            )

    def _refuse_unknown_options(self, options: dict) -> None:
        """A misspelt or foreign option is an error naming it and the nearest valid one, never silently dropped."""
        valid = [name for name in inspect.signature(self._sanitize_parameters).parameters if name != "kwargs"]
        valid += ["batch_size", "num_workers"]  # taken by `Pipeline.__call__` itself
        problems = []
        for name in sorted(options):
            nearest = difflib.get_close_matches(name, valid, n=1)
            problems.append(f"{name!r}" + (f" (did you mean {nearest[0]!r}?)" if nearest else ""))
        raise TypeError(
            f"Unknown option(s) of Gen-SER's audio-classification pipeline: {', '.join(problems)}. Its options are "
            f"{', '.join(sorted(valid))}."
        )

    @property
    def is_genser(self) -> bool:
        """Whether the model is Gen-SER, by its config's `model_type`: the class may come from this package or from
        the remote code saved with the model, which are different classes."""
        return getattr(self.model.config, "model_type", None) == GENSER_MODEL_TYPE

    def save_pretrained(self, save_directory, **kwargs):
        """Saves the model and feature extractor with this pipeline's code beside them (`ship_pipeline`)."""
        ship_pipeline(self.model.config, save_directory)
        super().save_pretrained(save_directory, **kwargs)

    def _require_domain_normalization(self, what: str) -> None:
        if not (self.is_genser and getattr(self.model.config, "domain_normalization", False)):
            raise ValueError(
                f"{what} needs a Gen-SER model trained with domain normalisation (config.domain_normalization=True); "
                f"{self.model.name_or_path or type(self.model).__name__!r} was not."
            )

    def _domain_id(self, domain: str) -> int:
        names = (getattr(self.model.config, "domain_names", None) or []) if self.is_genser else []
        if domain not in names:
            trained = f"one of its training domains {names}" if names else "a model trained with --domain_residuals"
            raise ValueError(
                f"domain={domain!r} is not a training domain of this model: it needs {trained}. Drop `domain` to "
                "read the clip with the shared weights, as any new speech."
            )
        return names.index(domain)

    def _checked_domain_statistics(self, statistics) -> torch.Tensor:
        self._require_domain_normalization("domain_statistics")
        statistics = torch.as_tensor(statistics, dtype=torch.float32)
        expected = tuple(self.model.conditioner.domain_statistics.shape)
        if tuple(statistics.shape) != expected or not torch.isfinite(statistics).all():
            raise ValueError(
                f"domain_statistics must be finite, of shape {expected} (mean and standard deviation per layer and "
                f"feature), as `collection_statistics` returns; got shape {tuple(statistics.shape)}."
            )
        return statistics

    @torch.inference_mode()
    def encode_windows(
        self,
        clips,
        segment_length_s: float | None = None,
        segment_hop_s: float | None = None,
        batch_size: int = 8,
        encoder_precision: str = "float32",
        *,
        chunk_length_s: float | None = None,
        stride_length_s: float | tuple[float, float] | None = None,
    ) -> list[dict]:
        """Every clip's chunks through the speech encoder, as the pipeline cuts them (`chunk_length_s`,
        `stride_length_s`, or their former names, as the pipeline's options), pooled: for each clip a dict the
        pipeline takes as input in place of the clip (`{"pooled_layer_features": (num_windows, num_layers, width),
        "starts": [...], "ends": [...]}`, seconds), which it then classifies with the head alone. The chunks of all
        `clips` are encoded `batch_size` at a time, shortest first, so a batch carries little padding, at
        `encoder_precision` (as the pipeline's option)."""
        chunking = checked_chunking(
            self.feature_extractor,
            chunk_length_s=chunk_length_s,
            stride_length_s=stride_length_s,
            segment_length_s=segment_length_s,
            segment_hop_s=segment_hop_s,
        )
        warn_former_names(chunk_length_s, segment_length_s, segment_hop_s)
        if not self.is_genser:
            raise ValueError(f"encode_windows needs a Gen-SER model; this pipeline runs {type(self.model).__name__}.")
        windows = [
            (clip, start, end, audio)
            for clip, inputs in enumerate(clips)
            for start, end, _, audio in self._windows(inputs, **chunking)
        ]
        audio = [window[3] for window in windows]
        pooled = [None] * len(windows)
        main_input = self.model.main_input_name
        for batch in batches_by_length(audio, batch_size):
            inputs = self._window_inputs([audio[window] for window in batch])
            inputs = self._ensure_tensor_on_device(dict(inputs), self.device)
            with encoder_autocast(encoder_precision, self.device.type):
                features = self.model.pooled_layer_features(inputs[main_input], inputs["attention_mask"])
            for window, window_features in zip(batch, features.to(self.model.dtype)):
                pooled[window] = window_features
        encoded = [{ENCODED_WINDOWS: [], "starts": [], "ends": []} for _ in clips]
        for (clip, start, end, _), features in zip(windows, pooled):
            encoded[clip][ENCODED_WINDOWS].append(features)
            encoded[clip]["starts"].append(start)
            encoded[clip]["ends"].append(end)
        for clip in encoded:
            clip[ENCODED_WINDOWS] = torch.stack(clip[ENCODED_WINDOWS])
        return encoded

    def collection_moments(
        self,
        clips,
        segment_length_s: float | None = None,
        segment_hop_s: float | None = None,
        batch_size: int = 8,
        *,
        chunk_length_s: float | None = None,
        stride_length_s: float | tuple[float, float] | None = None,
    ) -> tuple:
        """What `collection_statistics` is computed from: the number of windows, and the float64 sum and sum of
        squares of their pooled encoder features, `(num_layers, width)` each. Moments of several parts of a
        collection add up (the annotator sums them over its shards). `clips` may also be `encode_windows`' output;
        the chunking options are `encode_windows`'."""
        self._require_domain_normalization("Collection statistics")
        if isinstance(clips, (str, bytes, dict)) or hasattr(clips, "shape"):
            raise ValueError(
                "Collection statistics are computed over several clips: pass a list of clips (or a dataset's audio "
                "column), not one clip."
            )
        count, total, squares = 0, 0.0, 0.0
        clips = iter(clips)
        while chunk := list(itertools.islice(clips, 64)):  # a chunk's windows batched together, never all in memory
            if not all(isinstance(clip, dict) and ENCODED_WINDOWS in clip for clip in chunk):
                chunk = self.encode_windows(
                    chunk,
                    segment_length_s,
                    segment_hop_s,
                    batch_size,
                    chunk_length_s=chunk_length_s,
                    stride_length_s=stride_length_s,
                )
            pooled = torch.cat([clip[ENCODED_WINDOWS] for clip in chunk]).to(self.device)
            chunk_count, chunk_total, chunk_squares = self.model.domain_moments(pooled)
            count, total, squares = count + chunk_count, total + chunk_total.cpu(), squares + chunk_squares.cpu()
        return count, total, squares

    def collection_statistics(
        self,
        clips,
        segment_length_s: float | None = None,
        segment_hop_s: float | None = None,
        prior: torch.Tensor | None = None,
        *,
        chunk_length_s: float | None = None,
        stride_length_s: float | tuple[float, float] | None = None,
    ):
        """The domain statistics of a collection of clips (any input the pipeline takes; e.g. `dataset["audio"]`),
        `(2, num_layers, width)`: pass them as `domain_statistics=` when classifying its clips. Long clips count
        chunk by chunk, as the pipeline classifies them (`chunk_length_s`, `stride_length_s`, or their former names
        `segment_length_s`, `segment_hop_s`). A short collection's statistics lean on the training pool's
        (`config.statistics_prior_windows`): a few clips are a few clips. `prior`: statistics to lean on instead, e.g.
        the whole collection's for one speaker's clips."""
        moments = self.collection_moments(
            clips, segment_length_s, segment_hop_s, chunk_length_s=chunk_length_s, stride_length_s=stride_length_s
        )
        return self.model.collection_statistics_from_moments(*moments, prior=prior)

    def _label_ids(self, candidate_labels) -> list[int]:
        if isinstance(candidate_labels, str):
            candidate_labels = [candidate_labels]
        label2id = self.model.config.label2id
        unknown = [label for label in candidate_labels if label not in label2id]
        if unknown or not candidate_labels:
            raise ValueError(
                f"candidate_labels must be a non-empty subset of the model's labels {sorted(label2id)}; "
                f"unknown: {unknown}."
            )
        return sorted({label2id[label] for label in candidate_labels})

    def _windows(self, inputs, **chunking):
        """Yields the clip's chunks (`chunking`: the pipeline's chunking options), `(start, end, is_last, waveform)`
        (seconds; a chunk under 0.1 s, a very short clip or the tail of a long one, padded with silence)."""
        sampling_rate = self.feature_extractor.sampling_rate
        window, hop = chunk_samples(sampling_rate, **checked_chunking(self.feature_extractor, **chunking))
        audio = load_audio(inputs, sampling_rate)
        for start, end, is_last in chunks(audio, window, hop):
            waveform = pad_to_min_duration(audio[start:end], sampling_rate)
            yield start / sampling_rate, end / sampling_rate, is_last, waveform

    def _window_inputs(self, arrays: list):
        """The model inputs of a batch of windows' waveforms."""
        # A model that trims padding never reads Whisper's 30 s window past the clip: no need to compute it.
        whole_window = not getattr(self.model.config, "trim_padding", False)
        inputs = speech_encoder_inputs(self.feature_extractor, arrays, whole_window)
        return inputs if self.dtype is None else inputs.to(dtype=self.dtype)

    def preprocess(self, inputs, **chunking):
        """Yields the model inputs of every chunk of the clip (`chunking`: the pipeline's chunking options), with its
        `start`/`end` (seconds). A clip already through the encoder (`encode_windows`) yields its pooled chunks."""
        if isinstance(inputs, dict) and ENCODED_WINDOWS in inputs:
            windows = self._checked_encoded_windows(inputs)
            for index, (start, end) in enumerate(zip(inputs["starts"], inputs["ends"])):
                is_last = index == len(windows) - 1
                yield {"is_last": is_last, "start": start, "end": end, ENCODED_WINDOWS: windows[index : index + 1]}
            return
        for start, end, is_last, audio in self._windows(inputs, **chunking):
            segment = self._swap_mel_axes(dict(self._window_inputs([audio])))
            yield {"is_last": is_last, "start": start, "end": end, **segment}

    def _checked_encoded_windows(self, clip: dict) -> torch.Tensor:
        """The pooled windows of an `encode_windows` clip, refused unless they fit this model and their times."""
        windows = torch.as_tensor(clip[ENCODED_WINDOWS])
        expected = self.model.config.pooled_features_shape if self.is_genser else None
        starts, ends = clip.get("starts"), clip.get("ends")
        if expected is None or windows.dim() != 3 or tuple(windows.shape[1:]) != expected or len(windows) == 0:
            raise ValueError(
                f"Encoded windows must be this Gen-SER model's pooled features, (num_windows, {expected[0]}, "
                f"{expected[1]}), as its pipeline's `encode_windows` gives; got {tuple(windows.shape)}."
            )
        if starts is None or ends is None or not len(starts) == len(ends) == len(windows):
            raise ValueError(
                f"Encoded windows need their `starts` and `ends` (seconds), one of each per window ({len(windows)}), "
                "as `encode_windows` gives them."
            )
        return windows

    def _swap_mel_axes(self, model_inputs: dict) -> dict:
        """`model_inputs` with Whisper's features' last two axes swapped: `preprocess` yields them time first, so that
        the stock collate pads a batch's windows of different lengths along time (their attention masks say where),
        and `_forward` swaps them back to the encoder's `(batch, mel bins, frames)`."""
        main_input = self.model.main_input_name
        if main_input in model_inputs and model_inputs[main_input].dim() == 3:
            model_inputs[main_input] = model_inputs[main_input].transpose(1, 2)
        return model_inputs

    def _forward(
        self,
        model_inputs,
        num_inference_steps=None,
        seed=None,
        num_samples=1,
        return_trajectory=False,
        domain_statistics=None,
        domain_id=None,
        encoder_precision="float32",
    ):
        segment = {key: model_inputs.pop(key) for key in ("is_last", "start", "end")}
        model_inputs = self._swap_mel_axes(model_inputs)
        main_input = self.model.main_input_name
        if encoder_precision != "float32" and main_input in model_inputs:  # the encoder alone at that precision
            with encoder_autocast(encoder_precision, self.device.type):
                inputs, attention_mask = model_inputs.pop(main_input), model_inputs.pop("attention_mask", None)
                pooled = self.model.pooled_layer_features(inputs, attention_mask)
            model_inputs[ENCODED_WINDOWS] = pooled.to(self.model.dtype)
        if self.is_genser:
            # A CPU generator, as the model's default: one seed, the same draws on every device.
            generator = None if seed is None else torch.Generator().manual_seed(seed)
            if domain_statistics is not None:
                model_inputs["domain_statistics"] = domain_statistics.to(self.device)
            if domain_id is not None:
                batch_size = next(iter(model_inputs.values())).shape[0]
                model_inputs["domain_ids"] = torch.full((batch_size,), domain_id, dtype=torch.long, device=self.device)
            outputs = self.model(
                **model_inputs,
                num_inference_steps=num_inference_steps,
                generator=generator,
                num_samples=num_samples,
                output_trajectory=return_trajectory,
            )
            segment["sample_logits"] = outputs.sample_logits
            # A ModelOutput of every task's logits, which the pipeline splits into clips as a tuple in task order.
            segment["task_logits"] = outputs.task_logits
            if return_trajectory:
                # Batch-first tensors, so that the pipeline can split a batch into clips.
                segment["trajectory"] = self.model.first_task_similarities(outputs.trajectory)
                times = self.model.scheduler.time_grid_for(outputs.trajectory.shape[1] - 1)
                segment["times"] = times.expand(outputs.trajectory.shape[0], -1)
        else:
            outputs = self.model(**model_inputs)
        return {**segment, "logits": outputs.logits}

    def _scores(self, logits: torch.Tensor, function_to_apply: str) -> torch.Tensor:
        if function_to_apply == "softmax":
            return logits.softmax(-1)
        if function_to_apply == "sigmoid":
            return logits.sigmoid()
        return logits

    def _label_scores(self, probabilities, agreement, label_ids, top_k, names=None) -> list[dict]:
        """Top-k `{"score", "label"}` of `probabilities` over `label_ids` (all of them for `top_k=None`), named from
        `names` (default id2label)."""
        names = names or self.model.config.id2label
        scores, order = probabilities.topk(len(label_ids) if top_k is None else min(top_k, len(label_ids)))
        results = []
        for score, index in zip(scores.tolist(), order.tolist()):
            result = {"score": score, "label": names[label_ids[index]]}
            if agreement is not None:
                result["agreement"] = agreement[index].item()
            results.append(result)
        return results

    def _trajectory(self, times: list[float], similarities: torch.Tensor, label_ids: list[int]) -> dict:
        """`similarities` of shape `(num_times, num_labels)` as `{"times": [...], "similarities": {label: [...]}}`."""
        id2label = self.model.config.id2label
        return {"times": times, "similarities": {id2label[i]: similarities[:, i].tolist() for i in label_ids}}

    def postprocess(
        self,
        model_outputs,
        top_k=None,
        function_to_apply=None,
        return_segments=False,
        label_ids=None,
        return_trajectory=False,
        return_tasks=False,
    ):
        """Scores every window over the candidate labels, then averages the windows weighted by duration."""
        config = self.model.config
        if function_to_apply is None:
            function_to_apply = {"regression": "none", "multi_label_classification": "sigmoid"}.get(
                config.problem_type, "softmax"
            )
        label_ids = label_ids if label_ids is not None else list(range(config.num_labels))
        other_tasks = list(config.label_sets)[1:] if return_tasks else []
        segments = [self._segment(output, label_ids, other_tasks, function_to_apply) for output in model_outputs]
        durations = torch.tensor([segment["end"] - segment["start"] for segment in segments])
        weights = (durations / durations.sum()).tolist()
        average = {key: weighted_mean(segments, weights, key) for key in ["probabilities", "agreement", *other_tasks]}
        scores = self._task_scores(average, label_ids, top_k, return_tasks)
        if not (return_segments or return_trajectory):
            return scores
        result = {"scores": scores}
        if return_trajectory:
            times = model_outputs[0]["times"][0].tolist()
            result["trajectory"] = self._trajectory(times, weighted_mean(segments, weights, "trajectory"), label_ids)
        if return_segments:
            result["segments"] = []
            for segment in segments:
                entry = {
                    "start": segment["start"],
                    "end": segment["end"],
                    "scores": self._task_scores(segment, label_ids, top_k, return_tasks),
                }
                if return_trajectory:
                    entry["trajectory"] = self._trajectory(times, segment["trajectory"], label_ids)
                result["segments"].append(entry)
        return result

    def _segment(self, output: dict, label_ids: list[int], other_tasks: list[str], function_to_apply: str) -> dict:
        """One window's `start`, `end`, `probabilities` over `label_ids` (averaged over the samples), `agreement`
        (the share of samples that voted for each label; `None` with one sample or for other models), `trajectory`
        (or `None`), and the scores of each of `other_tasks`."""
        sample_logits = output.get("sample_logits")
        if sample_logits is None:
            probabilities, agreement = self._scores(output["logits"][0, label_ids].float(), function_to_apply), None
        else:
            sample_logits = sample_logits[0][:, label_ids].float()  # (samples, labels)
            probabilities = self._scores(sample_logits, function_to_apply).mean(0)
            votes = sample_logits.argmax(-1)
            agreement = torch.bincount(votes, minlength=len(label_ids)).float() / votes.numel()
        return {
            "start": output["start"],
            "end": output["end"],
            "probabilities": probabilities,
            "agreement": agreement,
            "trajectory": output["trajectory"][0] if "trajectory" in output else None,
            **{task: self._scores(self._logits_of_task(output, task), function_to_apply) for task in other_tasks},
        }

    def _logits_of_task(self, output: dict, task: str) -> torch.Tensor:
        """One window's `(num_task_labels,)` logits of `task` from its `task_logits`, by the task's position (the
        pipeline splits a batch's `task_logits` into one tuple per clip, in `config.tasks` order)."""
        return output["task_logits"][list(self.model.config.tasks).index(task)][0].float()

    def _task_scores(self, values: dict, label_ids: list[int], top_k, return_tasks) -> list[dict] | dict[str, list]:
        """The first task's scores of `values` (a window's or their average; with candidate labels and agreement), or
        with `return_tasks` every task's."""
        scores = self._label_scores(values["probabilities"], values["agreement"], label_ids, top_k)
        if not return_tasks:
            return scores
        label_sets = self.model.config.label_sets
        scores = {next(iter(label_sets)): scores}
        for task in list(label_sets)[1:]:
            names = label_sets[task]
            scores[task] = self._label_scores(values[task], None, list(range(len(names))), top_k, names)
        return scores


def weighted_mean(segments: list[dict], weights: list[float], key: str):
    """The `weights`-weighted sum of the windows' `key` tensors (`None` where the windows have none)."""
    if segments[0][key] is None:
        return None
    return sum(weight * segment[key].float() for weight, segment in zip(weights, segments))


def ship_pipeline(config, save_directory) -> None:
    """Makes the model saved in `save_directory` carry this pipeline: `custom_pipelines` in its `config` (so call it
    before the model is saved), and this module's code with its relative imports beside the model's code. Then
    `pipeline("audio-classification", model=save_directory, trust_remote_code=True)` returns this pipeline where this
    package is not installed. transformers' own mechanism (a class registered with `PIPELINE_REGISTRY`) would also
    replace the stock pipeline of the task for every other model."""
    module = GenSERAudioClassificationPipeline.__module__.split(".")[-1]
    config.custom_pipelines = {
        "audio-classification": {
            "impl": f"{module}.{GenSERAudioClassificationPipeline.__name__}",
            "pt": [AutoModelForAudioClassification.__name__],
            "type": "audio",
        }
    }
    os.makedirs(save_directory, exist_ok=True)
    custom_object_save(GenSERAudioClassificationPipeline, save_directory)
