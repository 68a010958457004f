# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""How a small domain's statistics should be used: shrunk towards a prior by its window count, and by how much.

    python -m benchmarks.evaluate_statistics_shrinkage --output_dir outputs/statistics-shrinkage

Adaptation standardises a collection's features with its own statistics (`collection_statistics`, `genser-annotate
--adapt`, per folder with `--adapt_by folder`). From a handful of windows those statistics are noise: a single 60 s
file standardises every feature to about +-1. `domain_normalization.shrunk_moments` pools a domain's moments with
`k` pseudo-windows of a prior's statistics. This measures `k` on the release's data, encoded as `make main` encodes
it (its feature cache is reused), with the release's head (training/configs/main_job.json):

- each emotion corpus is held out in turn; a head is trained on the other corpora (BAVED always among them), with
  every training corpus standardised with its own statistics, and reads the held-out corpus with its shared weights;
- **collection** (a user's collection, `collection_statistics`): random samples of `n` clips of the held-out corpus
  (`--clips_per_size` clips in all per `n`), each sample classified with its own statistics shrunk towards the
  training pool's (`k` = 0: its own alone; `inf`: the pool's alone, as a lone clip);
- **speaker** (`--adapt_by folder` with a folder per speaker, i.e. leaving speakers out): `n` clips of each speaker of
  the held-out corpus, every speaker's clips classified with its statistics shrunk towards the collection's (all the
  sampled clips' own statistics); `inf`: the collection's alone.

Each cell is the UA on the held-out corpus's core labels (predictions within them), pooled over samples, mean over
seeds. `k` is chosen without looking at the corpus it is scored on: for each held-out corpus, the `k` with the best
mean UA over the other corpora and every `n` (the "nested" rows). Prints markdown tables and writes `results.json`.
"""

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import HfArgumentParser

from modeling_genser.domain_normalization import domain_moments, domain_statistics_from_moments, shrunk_moments
from modeling_genser.taxonomy_encoding import MISSING_LABEL
from training.arguments import MAIN_JOB_CONFIG, DataTrainingArguments, ModelArguments, resolve_sources
from training.data import CORPUS_COLUMN
from training.feature_cache import pooled_features, sorted_domain_names, with_domains
from training.folds import benchmark_training_arguments, first_task, train_head
from training.model_construction import new_genser_head, residual_domain_names
from training.sources import CORE_EMOTIONS
from training.training_data import cached_corpus

logger = logging.getLogger(__name__)

SCENARIOS = ("collection", "speaker")


@dataclass
class ShrinkageArguments:
    output_dir: str = field(default="outputs/statistics-shrinkage")
    job_config: str = field(
        default=str(MAIN_JOB_CONFIG), metadata={"help": "The training job whose data, encoder and head are used."}
    )
    prior_windows: str = field(
        default="0,1,2,4,8,16,32,64,inf", metadata={"help": "The k to measure (inf: the prior alone)."}
    )
    collection_sizes: str = field(default="1,2,4,8,16,32,64", metadata={"help": "Clips per sampled collection."})
    speaker_sizes: str = field(default="1,2,4,8,16", metadata={"help": "Clips per speaker."})
    clips_per_size: int = field(
        default=640,
        metadata={"help": "Samples per size until about this many clips are classified (3 samples at least)."},
    )
    seeds: str = field(default="0,1,2")


def statistics_of(pooled: torch.Tensor, prior: torch.Tensor, prior_windows: float) -> torch.Tensor:
    """The `(2, num_layers, width)` statistics of `(n, num_layers, width)` pooled features shrunk towards `prior`
    (`inf`: the prior itself; with `k` = 0 and one clip, which has no spread, the prior too)."""
    if prior_windows == float("inf") or len(pooled) + prior_windows < 2:
        return prior
    return domain_statistics_from_moments(*shrunk_moments(*domain_moments(pooled), prior, prior_windows))


@torch.no_grad()
def core_predictions(head, pooled: torch.Tensor, statistics: torch.Tensor, core_ids: list[int]) -> np.ndarray:
    """The head's emotion, among the core labels, for `(n, num_layers, width)` pooled features standardised with
    `(2, ...)` statistics or each clip's `(n, 2, ...)`, read with the shared weights (a held-out corpus has no
    residual of its own)."""
    logits = head(pooled_layer_features=pooled, domain_statistics=statistics).logits
    return np.asarray(core_ids)[logits[:, core_ids].argmax(-1).numpy()]


def unweighted_accuracy(predictions: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean([np.mean(predictions[targets == label] == label) for label in np.unique(targets)]))


def repetitions(clips_per_size: int, clips_per_sample: int) -> int:
    return max(3, -(-clips_per_size // clips_per_sample))


def held_out_scores(head, pooled, targets, speakers, core_ids, args, rng) -> dict:
    """`{scenario: {n: {k: UA}}}` on one held-out corpus's core-label clips."""
    pool = head.conditioner.domain_statistics
    ks = [float(k) for k in args.prior_windows.split(",")]
    scores = {scenario: {} for scenario in SCENARIOS}
    for n in (int(n) for n in args.collection_sizes.split(",")):
        predicted = {k: [] for k in ks}
        truth = []
        for _ in range(repetitions(args.clips_per_size, n)):
            rows = rng.choice(len(pooled), size=min(n, len(pooled)), replace=False)
            truth.append(targets[rows])
            for k in ks:
                statistics = statistics_of(pooled[rows], pool, k)
                predicted[k].append(core_predictions(head, pooled[rows], statistics, core_ids))
        truth = np.concatenate(truth)
        scores["collection"][n] = {k: unweighted_accuracy(np.concatenate(predicted[k]), truth) for k in ks}
    for n in (int(n) for n in args.speaker_sizes.split(",")):
        predicted = {k: [] for k in ks}
        truth = []
        for _ in range(repetitions(args.clips_per_size, n * len(np.unique(speakers)))):
            chosen = [
                rng.choice(np.flatnonzero(speakers == speaker), size=n, replace=False)
                for speaker in np.unique(speakers)
                if (speakers == speaker).sum() >= n
            ]
            rows = np.concatenate(chosen)
            collection = statistics_of(pooled[rows], pool, 0)
            truth.append(targets[rows])
            for k in ks:  # every speaker's clips with its own (shrunk) statistics, in one pass of the head
                per_speaker = [statistics_of(pooled[part], collection, k).expand(n, -1, -1, -1) for part in chosen]
                statistics = torch.cat(per_speaker)
                predicted[k].append(core_predictions(head, pooled[rows], statistics, core_ids))
        truth = np.concatenate(truth)
        scores["speaker"][n] = {k: unweighted_accuracy(np.concatenate(predicted[k]), truth) for k in ks}
    return scores


def chosen_k(results: dict, scenario: str, corpora: list[str]) -> float:
    """The k with the best mean UA over `corpora` and every n (mean over seeds)."""
    cells = [results[corpus][scenario] for corpus in corpora]
    ks = list(next(iter(cells[0].values())))
    return max(ks, key=lambda k: np.mean([by_n[k] for cell in cells for by_n in cell.values()]))


def tables(results: dict) -> str:
    """Markdown: per scenario, each held-out corpus's UA by n and k, and the nested choice's row."""
    lines = []
    corpora = sorted(results)
    for scenario in SCENARIOS:
        ks = list(next(iter(results[corpora[0]][scenario].values())))
        lines += [
            f"\n{scenario}: UA on core labels by clips per {scenario} (n) and prior windows (k)\n",
            "| corpus | n | " + " | ".join(f"k={k:g}" for k in ks) + " |",
            "|" + " --- |" * (2 + len(ks)),
        ]
        for corpus in corpora:
            for n, by_k in results[corpus][scenario].items():
                lines.append(f"| {corpus} | {n} | " + " | ".join(f"{by_k[k]:.3f}" for k in ks) + " |")
        nested = {corpus: chosen_k(results, scenario, [c for c in corpora if c != corpus]) for corpus in corpora}
        overall = chosen_k(results, scenario, corpora)
        lines.append(f"\nnested choice (k chosen on the other corpora): {nested}; on all corpora: k={overall:g}")
        lines.append("| n | " + " | ".join(corpora) + " | mean, nested k | mean, k=0 | mean, k=inf |")
        lines.append("|" + " --- |" * (4 + len(corpora)))
        for n in results[corpora[0]][scenario]:
            cells = [results[corpus][scenario][n][nested[corpus]] for corpus in corpora]
            own = np.mean([results[corpus][scenario][n][0.0] for corpus in corpora])
            prior = np.mean([results[corpus][scenario][n][float("inf")] for corpus in corpora])
            means = f" | {np.mean(cells):.3f} | {own:.3f} | {prior:.3f} |"
            lines.append(f"| {n} | " + " | ".join(f"{c:.3f}" for c in cells) + means)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    started = time.perf_counter()
    argv = sys.argv[1:] if argv is None else argv
    (args,) = HfArgumentParser(ShrinkageArguments).parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # The release's data, encoder and head, read as `make main` reads them: its feature cache is reused.
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments))
    job = json.loads(Path(args.job_config).read_text())
    job.pop("offline_fallback", None)  # a measurement on stand-in data would say nothing
    model_args, data_args = parser.parse_dict(job, allow_extra_keys=True)
    model_args, data_args, corpus, _ = resolve_sources(model_args, data_args)
    features, labels, _, label_sets = cached_corpus(model_args, data_args, corpus, job["seed"])
    corpora = np.asarray(features[CORPUS_COLUMN])
    domain_names = residual_domain_names(model_args, sorted_domain_names(corpora))
    features, table, _ = with_domains(features, corpora, domain_names)
    emotions = first_task(features["labels"])
    pooled = pooled_features(features)
    speakers = np.asarray(features["speaker"])
    core_ids = [labels.index(label) for label in CORE_EMOTIONS]
    held_out_corpora = sorted(str(corpus) for corpus in set(corpora[emotions != MISSING_LABEL]))
    per_seed = []
    for seed in (int(seed) for seed in args.seeds.split(",")):
        training_args = benchmark_training_arguments(
            str(output_dir / "scratch"), seed, job["max_steps"], job["per_device_train_batch_size"],
            job["learning_rate"], job["weight_decay"],
        )  # fmt: skip
        rng = np.random.default_rng(seed)
        results = {}
        for corpus in held_out_corpora:
            torch.manual_seed(seed)
            head = new_genser_head(model_args, labels, label_sets, domain_names)
            train_head(head, features.select(np.flatnonzero(corpora != corpus)), training_args, table)
            head.eval()
            rows = np.flatnonzero((corpora == corpus) & np.isin(emotions, core_ids))
            results[corpus] = held_out_scores(head, pooled[rows], emotions[rows], speakers[rows], core_ids, args, rng)
            logger.info("seed %d, %s held out: %s", seed, corpus, results[corpus])
        per_seed.append(results)
        (output_dir / "results.json").write_text(json.dumps(per_seed, indent=2, default=str))
    mean = {
        corpus: {
            scenario: {
                n: {k: float(np.mean([seed[corpus][scenario][n][k] for seed in per_seed])) for k in by_k}
                for n, by_k in per_seed[0][corpus][scenario].items()
            }
            for scenario in SCENARIOS
        }
        for corpus in held_out_corpora
    }
    print(f"\nStatistics shrinkage, mean over seeds {args.seeds}:" + tables(mean))
    print(f"\nwall time {time.perf_counter() - started:.0f} s; results in {output_dir / 'results.json'}")
    return mean


if __name__ == "__main__":
    main()
