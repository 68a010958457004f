# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Arousal from real speech: Gen-SER's dimensional head against regressors and against classifying the levels.

    python -m benchmarks.evaluate_arousal --output_dir outputs/arousal

BAVED (`training/sources.py`: Arabic, 59 speakers, single words at arousal level 0 low, 1 neutral, 2 high) is
encoded once (`feature_cache.py`). Then, per seed, on the same cached features, speaker-independent folds
(`--num_folds`, whole speakers dealt round-robin) and the same optimiser budget, four heads predict each held-out
clip's arousal:

- `genser`: Gen-SER's dimensional head (`problem_type="regression"`): the bridge generates the continuous code of
  the value, read back as the nearest grid value over the levels' range;
- `linear`, `mlp`: a linear and an MLP regressor (squared error) on the same condition;
- `genser-levels`: Gen-SER classifying the three levels as classes (the release's classification head), its class
  read as the level's value.

Each is scored on the values (CCC, Pearson, MAE) and on the values read as the nearest level (UA of the levels).
The heads share the release model's condition (training/configs/main_job.json); the dimensional heads leave out its
similarity loss, which is for classes, and encode values at the config's default index scale (`--dimensional_overrides`). Prints a markdown table (mean ± sd over seeds) and writes `results.json`.
"""

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from transformers import AutoFeatureExtractor, HfArgumentParser

from modeling_genser import GenSERForAudioClassification
from training.arguments import RELEASE_CONFIG_OVERRIDES
from training.data import cast_audio, dimensional_value_range, encode_values, label_values, load_audio_dataset
from training.feature_cache import add_encoder_features, with_domains
from training.folds import FoldTask, benchmark_training_arguments, group_folds, run_folds
from training.heads import new_head
from training.model_construction import parse_config_overrides
from training.reports import dimension_scores
from training.sources import ENCODERS, resolve_corpus, resolve_encoder

logger = logging.getLogger(__name__)

HEADS = ("genser", "linear", "mlp", "genser-levels")
METRICS = ("ccc", "pearson", "mae", "level_unweighted_accuracy")


@dataclass
class ArousalArguments:
    output_dir: str = field(default="outputs/arousal")
    dataset_name: str = field(default="baved", metadata={"help": "A named corpus with arousal levels."})
    value_column: str = field(default="level", metadata={"help": "Its numeric arousal column."})
    encoder: str = field(default="whisper-base", metadata={"help": "Named encoder (training/sources.py) or a path."})
    heads: str = field(default=",".join(HEADS))
    seeds: str = field(default="0,1,2")
    num_folds: int = field(default=5)
    config_overrides: str = field(
        default=RELEASE_CONFIG_OVERRIDES,
        metadata={"help": "GenSERConfig fields of the heads; default: the release model's (main_job.json)."},
    )
    dimensional_overrides: str = field(
        default="similarity_loss_weight=0,taxonomy_index_scale=100",
        metadata={
            "help": "GenSERConfig fields of the dimensional heads over the release's: no similarity loss, and the "
            "config's default index scale (the release's 10000 spreads class codes apart; a value's code is a position)."
        },
    )
    mlp_hidden_size: int = field(default=256)
    mlp_dropout: float = field(default=0.2)
    max_steps: int = field(default=1500)
    batch_size: int = field(default=32)
    learning_rate: float = field(default=1e-3)
    weight_decay: float = field(default=0.05)
    parallel_folds: int = field(default=2)
    max_length_seconds: float = field(default=20.0)


def encoded_corpus(args: ArousalArguments):
    """The corpus's cached pooled features (with `labels`: each clip's value), its level names in the order of their
    values, and the configurations of the dimensional and the level-classifying heads on this encoder."""
    location = resolve_encoder(args.encoder) if args.encoder in ENCODERS else args.encoder
    source = resolve_corpus(args.dataset_name)
    if location is None or source is None:
        raise OSError(f"{args.encoder!r} or {args.dataset_name!r} is not available here (training/sources.py).")
    dataset = load_audio_dataset(source.dataset_name)["train"]
    names = label_values(dataset, source.label_column_name)
    level_of = dict(zip(names, dataset[args.value_column]))
    levels = sorted(level_of, key=level_of.get)  # e.g. low, neutral, high
    overrides = {**parse_config_overrides(args.config_overrides), "domain_normalization": True}
    reference = GenSERForAudioClassification.from_encoder(location, dict(enumerate(levels)), **overrides)
    extractor = AutoFeatureExtractor.from_pretrained(location)
    extractor.return_attention_mask = True
    dataset = encode_values(cast_audio(dataset, "audio", extractor.sampling_rate), [args.value_column])
    features = add_encoder_features(dataset, reference, extractor, "audio", max_length_seconds=args.max_length_seconds)
    dimensional = reference.config.to_dict()
    dimensional.update(
        id2label={0: args.value_column}, label2id={args.value_column: 0}, problem_type="regression",
        value_range=dimensional_value_range(np.asarray(features["labels"])),
        **parse_config_overrides(args.dimensional_overrides),
    )  # fmt: skip
    return features, levels, type(reference.config).from_dict(dimensional), reference.config


def main(argv: list[str] | None = None) -> dict:
    started = time.perf_counter()
    (args,) = HfArgumentParser(ArousalArguments).parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    heads = args.heads.split(",")
    if unknown := set(heads) - set(HEADS):
        raise ValueError(f"Unknown heads {sorted(unknown)}: choose among {', '.join(HEADS)}.")
    features, levels, dimensional_config, level_config = encoded_corpus(args)
    features, table, _ = with_domains(features, np.zeros(len(features), dtype=np.int64))  # one corpus, one domain
    values = np.asarray(features["labels"])[:, 0]
    level_values = np.unique(values)  # the value of level class k is the k-th smallest
    level_features = features.remove_columns("labels").add_column("labels", np.searchsorted(level_values, values).tolist())
    masks = group_folds(np.asarray(features["speaker"]), args.num_folds)
    results = {"levels": levels, "clips": len(features), "folds": len(masks), "heads": {}}
    for kind in heads:
        config, data = (level_config, level_features) if kind == "genser-levels" else (dimensional_config, features)
        steps = [config.num_inference_steps if kind.startswith("genser") else None]
        for seed in [int(seed) for seed in args.seeds.split(",")]:
            training_args = benchmark_training_arguments(
                str(output_dir / "scratch"), seed, args.max_steps, args.batch_size, args.learning_rate, args.weight_decay
            )
            head = partial(new_head, kind, config, args.mlp_hidden_size, args.mlp_dropout)
            tasks = [FoldTask(head, data, ~mask, mask, training_args, steps, domain_table=table) for mask in masks]
            predicted = np.zeros(len(values))
            for mask, (predictions, _) in zip(masks, run_folds(tasks, args.parallel_folds)):
                fold = predictions[steps[0]]
                predicted[mask] = level_values[fold] if kind == "genser-levels" else fold[:, 0]
            (scores,) = dimension_scores(predicted, values, [args.value_column]).values()
            results["heads"].setdefault(kind, []).append({key: scores[key] for key in (*METRICS, "confusion_matrix")})
            logger.info("%s seed %d: %s", kind, seed, {key: round(scores[key], 4) for key in METRICS})
            (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n{args.dataset_name} arousal ({', '.join(levels)} = {', '.join(f'{v:g}' for v in level_values)}), "
          f"{len(features)} clips, {len(masks)} speaker folds, mean ± sd over seeds {args.seeds}:\n")  # fmt: skip
    print("| head | CCC | Pearson | MAE | UA of the levels |\n| --- | --- | --- | --- | --- |")
    for kind, runs in results["heads"].items():
        cells = " | ".join(f"{np.mean([r[m] for r in runs]):.3f} ± {np.std([r[m] for r in runs]):.3f}" for m in METRICS)
        print(f"| {kind} | {cells} |")
    print(f"\nwall time {time.perf_counter() - started:.0f} s; results in {output_dir / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
