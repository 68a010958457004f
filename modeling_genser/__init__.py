# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Gen-SER for transformers. Importing this package registers the model with the Auto classes, so
`AutoConfig`, `AutoModelForAudioClassification` and `pipeline("audio-classification", ...)` resolve it."""

from transformers import AutoConfig, AutoModelForAudioClassification

from .configuration_genser import GenSERConfig
from .modeling_genser import GenSERForAudioClassification, GenSEROutput, GenSERPreTrainedModel
from .scheduling_genser import GenSERScheduler, GenSERSchedulerOutput
from .taxonomy_encoding import code_similarity, pairwise_code_cosine, sinusoidal_taxonomy_encoding

AutoConfig.register(GenSERConfig.model_type, GenSERConfig, exist_ok=True)
AutoModelForAudioClassification.register(GenSERConfig, GenSERForAudioClassification, exist_ok=True)
# `save_pretrained` then writes `auto_map` and copies this code, so Hub users can load with trust_remote_code=True.
GenSERConfig.register_for_auto_class()
GenSERForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")

__all__ = [
    "GenSERConfig",
    "GenSERForAudioClassification",
    "GenSEROutput",
    "GenSERPreTrainedModel",
    "GenSERScheduler",
    "GenSERSchedulerOutput",
    "code_similarity",
    "pairwise_code_cosine",
    "sinusoidal_taxonomy_encoding",
]
