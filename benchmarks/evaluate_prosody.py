# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Do prosodic statistics carry emotion across languages beyond the encoder's features? A linear probe, leaving each
corpus out.

    python -m benchmarks.evaluate_prosody

Every clip of the emotion corpora gets 12 prosodic statistics (`prosodic_statistics`: pitch level, spread and range
in semitones over its voiced frames, loudness level, spread and range in dB, the voiced share, a speaking rate from
loudness peaks, and its duration), beside its cached pooled Whisper base features (`feature_cache.py`, the release's
layers). Each corpus's features are standardised with its own statistics (the adapted setting, no label used). A
softmax regression (full batch, AdamW, weight decay; clips weighted so that every corpus and class weigh alike, as the
heads are trained) is trained on all corpora but one and scores the held-out one on the core labels it shares with
them, on the encoder's features, on the prosodic statistics alone, and on both. Prints UA (mean ± sd over seeds) per
held-out corpus. It decides whether prosody is worth carrying in the model: it is not built in unless it wins here.
"""

import logging
import sys
from dataclasses import dataclass, field

import evaluate
import numpy as np
import torch
import torchaudio
from transformers import AutoFeatureExtractor, HfArgumentParser

from modeling_genser import GenSERForAudioClassification
from modeling_genser.domain_normalization import domain_statistics, standardise_by_domain
from training.arguments import RELEASE_CONFIG_OVERRIDES
from training.data import CORPUS_COLUMN, balanced_sample_weights, cast_audio, decode_audio, load_corpora
from training.feature_cache import add_encoder_features, pooled_features
from training.model_construction import parse_config_overrides
from training.reports import METRICS_PATH
from training.sources import CORE_EMOTIONS, EMOTION_COLUMN, resolve_corpora, resolve_encoder

logger = logging.getLogger(__name__)
SAMPLING_RATE = 16000
FRAME_SECONDS = 0.01


@dataclass
class ProsodyArguments:
    dataset_name: str = field(default="emodb,cremad,ravdess,casia,nemo,ased", metadata={"help": "Emotion corpora."})
    encoder: str = field(default="whisper-base")
    seeds: str = field(default="0,1,2")
    steps: int = field(default=300, metadata={"help": "Full-batch AdamW steps of the softmax regression."})
    weight_decay: float = field(default=1e-2)
    max_length_seconds: float = field(default=20.0, metadata={"help": "As the feature cache crops (the release's)."})


def prosodic_statistics(waveform: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """12 statistics of one clip's prosody, `(12,)`: pitch (semitones re 100 Hz) mean, sd, 10th and 90th percentile
    over voiced frames; loudness (dB) mean, sd, 10th and 90th percentile over all frames; the voiced share; loudness
    peaks per second (a speaking-rate proxy); log duration; and the pitch range (90th minus 10th percentile)."""
    audio = torch.as_tensor(waveform, dtype=torch.float32)
    # The pitch tracker needs a few frames: a clip under a quarter second is padded with silence.
    audio = torch.nn.functional.pad(audio, (0, max(0, sampling_rate // 4 - len(audio))))
    hop = int(FRAME_SECONDS * sampling_rate)
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    if len(frames) < 3:
        frames = torch.nn.functional.pad(frames, (0, 0, 0, 3 - len(frames)))
    loudness = 20 * torch.log10(frames.square().mean(-1).sqrt() + 1e-5)
    pitch = torchaudio.functional.detect_pitch_frequency(
        audio[None], sampling_rate, frame_time=FRAME_SECONDS, freq_low=60, freq_high=500
    )[0]
    # Voiced: loud enough (within 25 dB of the clip's loudest frames) and a pitch inside the search range.
    pitch = pitch[: len(loudness)]
    voiced = (loudness[: len(pitch)] > loudness.quantile(0.95) - 25) & (pitch > 60) & (pitch < 500)
    semitones = 12 * torch.log2(pitch[voiced] / 100) if voiced.sum() >= 2 else torch.zeros(2)
    smoothed = torch.nn.functional.avg_pool1d(loudness[None, None], 5, 1, 2)[0, 0]
    middle = smoothed[1:-1]
    peaks = (middle > smoothed[:-2]) & (middle >= smoothed[2:]) & (middle > loudness.quantile(0.95) - 15)
    seconds = len(waveform) / sampling_rate
    p10, p90 = semitones.quantile(0.1), semitones.quantile(0.9)
    return np.array(
        [
            semitones.mean(), semitones.std(), p10, p90,
            loudness.mean(), loudness.std(), loudness.quantile(0.1), loudness.quantile(0.9),
            voiced.float().mean(), peaks.sum() / max(seconds, 1e-3), np.log(max(seconds, 1e-3)), p90 - p10,
        ],
        dtype=np.float32,
    )  # fmt: skip


def standardised_per_corpus(features: torch.Tensor, corpora: np.ndarray) -> torch.Tensor:
    """`(num_clips, num_features)` standardised with each corpus's own mean and standard deviation."""
    out = torch.empty_like(features)
    for corpus in np.unique(corpora):
        rows = torch.as_tensor(corpora == corpus)
        out[rows] = standardise_by_domain(features[rows][:, None], domain_statistics(features[rows][:, None]))[:, 0]
    return out


def probe_ua(features, targets, corpora, held_out, label_ids, seed, args, metric) -> float:
    """UA on the held-out corpus's clips of `label_ids` of a softmax regression trained on the other corpora,
    predicting within `label_ids`."""
    torch.manual_seed(seed)
    train = corpora != held_out
    x, y = features[torch.as_tensor(train)], torch.as_tensor(targets[train])
    weights = torch.as_tensor(balanced_sample_weights(corpora[train], targets[train]), dtype=torch.float32)
    layer = torch.nn.Linear(x.shape[1], int(targets.max()) + 1)
    optimiser = torch.optim.AdamW(layer.parameters(), lr=1e-2, weight_decay=args.weight_decay)
    for _ in range(args.steps):
        optimiser.zero_grad()
        loss = (torch.nn.functional.cross_entropy(layer(x), y, reduction="none") * weights).sum()
        loss.backward()
        optimiser.step()
    test = (corpora == held_out) & np.isin(targets, label_ids)
    with torch.no_grad():
        logits = layer(features[torch.as_tensor(test)])[:, label_ids]
    predicted = np.asarray(label_ids)[logits.argmax(-1).numpy()]
    return metric.compute(predictions=predicted, references=targets[test], num_labels=len(layer.bias))[
        "unweighted_accuracy"
    ]


def main(argv=None):
    parser = HfArgumentParser(ProsodyArguments)
    (args,) = parser.parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    metric = evaluate.load(METRICS_PATH)
    location = resolve_encoder(args.encoder)
    dataset = load_corpora(resolve_corpora(args.dataset_name.split(",")))
    labels = sorted(set(dataset[EMOTION_COLUMN]))
    overrides = parse_config_overrides(RELEASE_CONFIG_OVERRIDES)
    reference = GenSERForAudioClassification.from_encoder(location, dict(enumerate(labels)), **overrides)
    extractor = AutoFeatureExtractor.from_pretrained(location)
    extractor.return_attention_mask = True
    dataset = cast_audio(dataset, "audio", extractor.sampling_rate)
    encoded = add_encoder_features(dataset, reference, extractor, "audio", max_length_seconds=args.max_length_seconds)
    encoder_features = pooled_features(encoded).flatten(1)
    crop = int(args.max_length_seconds * SAMPLING_RATE)
    clips = dataset.select_columns(["audio"])  # one clip decoded at a time
    prosody = torch.as_tensor(
        np.stack([prosodic_statistics(decode_audio(row["audio"], SAMPLING_RATE)[:crop]) for row in clips])
    )
    logger.info("Prosodic statistics of %d clips", len(prosody))
    corpora = np.asarray(dataset[CORPUS_COLUMN])
    targets = np.asarray([labels.index(label) for label in dataset[EMOTION_COLUMN]])
    variants = {
        "encoder": standardised_per_corpus(encoder_features, corpora),
        "prosody": standardised_per_corpus(prosody, corpora),
    }
    variants["encoder + prosody"] = torch.cat([variants["encoder"], variants["prosody"]], 1)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    held = sorted(set(corpora))
    print("| features | mean | " + " | ".join(held) + " |\n|" + " --- |" * (2 + len(held)))
    for name, features in variants.items():
        cells = {corpus: [] for corpus in held}
        for corpus in held:
            shared = sorted(set(targets[corpora == corpus]) & set(targets[corpora != corpus]))
            core = [i for i in shared if labels[i] in CORE_EMOTIONS]
            for seed in seeds:
                cells[corpus].append(probe_ua(features, targets, corpora, corpus, core, seed, args, metric))
        means = [np.mean([cells[c][k] for c in held]) for k in range(len(seeds))]
        row = [f"{np.mean(v):.3f} ± {np.std(v):.3f}" for v in [means, *cells.values()]]
        print(f"| {name} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
