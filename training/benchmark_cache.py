# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Per-epoch training time with the feature cache versus re-encoding every clip, as a ratio (median of runs).

Without the cache, an epoch runs the frozen encoder on every clip and then trains the head; with it, the epoch only
trains the head on the cached pooled features. Both train the same Gen-SER head with the same batches.

    python -m training.benchmark_cache --encoder ../shared/models/whisper-tiny.en --dataset ../shared/data/emodb
"""

import argparse
import statistics
import tempfile
import time

import torch
from transformers import AutoFeatureExtractor

from modeling_genser import GenSERForAudioClassification
from training.data import cast_audio, decode_audio, encode_labels, extract_features, label_names, load_audio_dataset
from training.feature_cache import cached_pooled_features


def head_step(model, optimizer, pooled, labels):
    loss = model(pooled_layer_features=pooled, labels=labels).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", required=True, help="Pretrained speech encoder (Hub id or directory).")
    parser.add_argument("--dataset", required=True, help="Audiofolder directory or Hub dataset id.")
    parser.add_argument("--num_clips", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    dataset = load_audio_dataset(args.dataset)["train"].select(range(args.num_clips))
    labels = label_names(dataset, "label")
    feature_extractor = AutoFeatureExtractor.from_pretrained(args.encoder)
    model = GenSERForAudioClassification.from_encoder(args.encoder, dict(enumerate(labels)))
    dataset = encode_labels(cast_audio(dataset, "audio", feature_extractor.sampling_rate), "label", model.config.label2id)
    arrays = [decode_audio(value, feature_extractor.sampling_rate) for value in dataset["audio"]]
    targets = torch.tensor(dataset["labels"])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    batches = [range(i, min(i + args.batch_size, len(arrays))) for i in range(0, len(arrays), args.batch_size)]

    def encoding_epoch():
        for batch in batches:
            inputs = extract_features(feature_extractor, [arrays[i] for i in batch])
            model.eval()
            with torch.no_grad():
                pooled = model.pooled_layer_features(inputs[model.main_input_name], inputs["attention_mask"])
            model.train()
            head_step(model, optimizer, pooled, targets[list(batch)])

    with tempfile.TemporaryDirectory() as cache_dir:
        cached = cached_pooled_features(model, feature_extractor, arrays, cache_dir)

    def cached_epoch():
        model.train()
        for batch in batches:
            head_step(model, optimizer, cached[list(batch)], targets[list(batch)])

    timings = {}
    for name, epoch in [("re-encoding", encoding_epoch), ("cached", cached_epoch)]:
        runs = []
        for _ in range(args.runs):
            start = time.perf_counter()
            epoch()
            runs.append(time.perf_counter() - start)
        timings[name] = statistics.median(runs)
        print(f"{name:>12} epoch over {len(arrays)} clips: median {timings[name]:.3f} s of {args.runs} runs")
    print(f"cache speed-up per epoch: {timings['re-encoding'] / timings['cached']:.0f}x (target >= 20x)")


if __name__ == "__main__":
    main()
