# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Registers Gen-SER with `transformers.pipeline("audio-classification", ...)`.

`import modeling_genser` alone already lets the stock pipeline load Gen-SER models. Importing this package also makes
the "audio-classification" task use `GenSERAudioClassificationPipeline`: the stock pipeline plus windowing of long
audio, label masking, robust input handling and, for Gen-SER models, sampling controls and agreement across samples.
"""

from transformers.pipelines import PIPELINE_REGISTRY

import modeling_genser  # noqa: F401  (registers the Auto classes)

from .audio_classification_genser import GenSERAudioClassificationPipeline

# Swap the implementation in place (keeping the task's default model and type) rather than re-registering the
# task, which would log an "overwriting" warning on every import.
PIPELINE_REGISTRY.supported_tasks["audio-classification"]["impl"] = GenSERAudioClassificationPipeline

__all__ = ["GenSERAudioClassificationPipeline"]
