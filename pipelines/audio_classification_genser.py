# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""The audio-classification pipeline with Gen-SER's sampling controls."""

import sys

import torch
from transformers import AudioClassificationPipeline

from modeling_genser import GenSERForAudioClassification


class GenSERAudioClassificationPipeline(AudioClassificationPipeline):
    """`AudioClassificationPipeline` that also accepts Gen-SER's sampling options, at construction or call time:

    - `num_inference_steps` (`int`): bridge sampling steps (default: the model's `config.num_inference_steps`);
    - `seed` (`int`): seed of the initial sample (default: the model's `config.sampling_seed`).

    It also accepts `datasets` audio values (torchcodec `AudioDecoder`s), which the stock pipeline of
    transformers 5.23 passes on as a 2-D tensor and rejects; multi-channel audio is averaged to mono.
    For any other model it behaves like the stock pipeline.
    """

    def preprocess(self, inputs):
        torchcodec = sys.modules.get("torchcodec")  # an AudioDecoder input means torchcodec is already imported
        if torchcodec is not None and isinstance(inputs, torchcodec.decoders.AudioDecoder):
            samples = inputs.get_all_samples()
            inputs = {"array": samples.data.mean(dim=0).numpy(), "sampling_rate": samples.sample_rate}
        return super().preprocess(inputs)

    def _sanitize_parameters(self, num_inference_steps=None, seed=None, **kwargs):
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(**kwargs)
        sampling = {"num_inference_steps": num_inference_steps, "seed": seed}
        sampling = {name: value for name, value in sampling.items() if value is not None}
        if sampling and not isinstance(self.model, GenSERForAudioClassification):
            raise ValueError(
                f"{sorted(sampling)} only apply to Gen-SER models, not to {type(self.model).__name__}; remove them."
            )
        forward_params.update(sampling)
        return preprocess_params, forward_params, postprocess_params

    def _forward(self, model_inputs, num_inference_steps=None, seed=None):
        generator = None if seed is None else torch.Generator(device=self.device).manual_seed(seed)
        if isinstance(self.model, GenSERForAudioClassification):
            return self.model(**model_inputs, num_inference_steps=num_inference_steps, generator=generator)
        return self.model(**model_inputs)
