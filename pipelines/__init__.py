# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Gen-SER's audio-classification pipeline: the stock pipeline plus windowing of long audio, label masking, robust
input handling and, for Gen-SER models, sampling controls and agreement across samples.

Importing this package changes nothing for other models: transformers' "audio-classification" task keeps its stock
pipeline. A Gen-SER model saved through the pipeline (`GenSERAudioClassificationPipeline(model=...,
feature_extractor=...).save_pretrained(directory)`, as the training scripts do) carries it, so
`pipeline("audio-classification", model=directory, trust_remote_code=True)` returns it anywhere; with this package
installed, `pipeline(..., pipeline_class=GenSERAudioClassificationPipeline)` runs it without remote code.
"""

import modeling_genser  # noqa: F401  (registers the Auto classes)

from .audio_classification_genser import GenSERAudioClassificationPipeline, ship_pipeline

__all__ = ["GenSERAudioClassificationPipeline", "ship_pipeline"]
