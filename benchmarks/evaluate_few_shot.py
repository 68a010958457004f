# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""What a few labelled clips of the user's own speech buy (`genser-adapt`), each emotion corpus left out in turn.

    python -m benchmarks.evaluate_few_shot --output_dir outputs/few-shot

For each emotion corpus (`--dataset_name`) and seed, a release that never heard that corpus is trained as `make main`
trains the release (the main job's head of emotions and arousal, its optimiser budget, domain residuals per corpus) on
every other corpus and the arousal corpora; its emotions are those of the corpora it heard. The held-out corpus's
speakers are split in two by the seed. The user labels k clips per core emotion of the first half (drawn once per
emotion and seed, so the 5 clips are among the 10 and the 10 among the 25); the second half's clips of those emotions
are scored, predicted within them, each standardised with the statistics of the scored clips (a collection adapted
to, as `genser-annotate --adapt` does). UA is the mean of the per-emotion recalls.

- k = 0: the release zero-shot, adapted to the collection by its statistics alone.
- k > 0, each with the adaptation's budget (`training.arguments.ADAPTATION_TRAINING`) on the k-shot clips:
  (a) `release adapted`: the release trained further as `genser-adapt` trains it (`adapt_release`): the corpus a new
      domain with its residual weights and, for training, the k-shot clips' statistics; the arousal task kept,
      unlabelled; read with the new domain's weights (the pipeline's `domain=`) and, as `shared weights`, without.
      With the adaptation's `max_steps`, and, as `steps by its folds`, with the budget `genser-adapt` chooses among
      `--max_steps_candidates` by folds of the labelled speakers (`budget_by_folds`; at most its 5 folds);
  (b) `fresh Gen-SER`: a new Gen-SER head of the release's configuration and the corpus's core emotions;
  (c) `linear probe`: a linear classifier on the same condition (`training/heads.py`).
- New label: a corpus with an emotion no other corpus has (EmoDB's boredom, RAVDESS's calm) is one the release never
  heard of. The release adapted on `--new_label_shots` clips of each of the corpus's emotions, that one a new label
  (`--new_labels`), is scored on the second half's clips of all of them, predicted within them: the new label's
  recall, and the old labels' mean recall against the release adapted on the same clips but the new label's; each
  with the step budget its folds choose.

Prints the tables as markdown (mean ± sd over seeds) and writes `results.json`.
"""

import copy
import json
import logging
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import evaluate
import numpy as np
import torch
from datasets import Dataset
from transformers import HfArgumentParser, TrainingArguments, set_seed

from modeling_genser import GenSERConfig, GenSERForAudioClassification
from modeling_genser.domain_normalization import domain_statistics
from modeling_genser.taxonomy_encoding import MISSING_LABEL
from training.arguments import ADAPTATION_ARGUMENTS, ADAPTATION_TRAINING, MAIN_JOB
from training.data import CORPUS_COLUMN
from training.feature_cache import pooled_features, with_domains
from training.folds import benchmark_training_arguments, chosen_budget, cross_validate_head, first_task, train_head
from training.heads import PooledFeatureClassifier
from training.reports import METRICS_PATH
from training.sources import AROUSAL_COLUMN, AROUSAL_LEVELS, CORE_EMOTIONS, EMOTION_COLUMN
from training.training_data import encoded_corpora

logger = logging.getLogger(__name__)

METHODS = (
    "release adapted", "release adapted, shared weights", "release adapted, steps by its folds",
    "release adapted, steps by its folds, shared weights", "fresh Gen-SER", "linear probe",
)  # fmt: skip
STEP_BUDGETS = [int(budget) for budget in ADAPTATION_ARGUMENTS["max_steps_candidates"].split(",")]
# genser-adapt's folds of the user's speakers, fewer where fewer speakers are labelled.
ADAPTATION_FOLDS = ADAPTATION_ARGUMENTS["num_folds"]


@dataclass
class FewShotArguments:
    output_dir: str = field(default="outputs/few-shot")
    dataset_name: str = field(default="emodb,cremad,ravdess,casia,nemo,ased", metadata={"help": "Emotion corpora."})
    arousal_corpora: str = field(default="baved", metadata={"help": "Arousal corpora the releases also train on."})
    encoder: str = field(default="whisper-base", metadata={"help": "The release's encoder (named or a path)."})
    shots: str = field(default="0,5,10,25", metadata={"help": "Labelled clips per core emotion."})
    new_label_shots: int = field(default=25, metadata={"help": "Labelled clips per emotion in the new-label run."})
    held_out: str = field(default="", metadata={"help": "The corpora held out in turn (default: each of them)."})
    seeds: str = field(default="0,1,2")
    parallel: int = field(default=2, metadata={"help": "Held-out corpora trained at once, each in its own process."})
    max_length_seconds: float = field(default=20.0)


def with_labels(features: Dataset, labels: list) -> Dataset:
    """`features` whose `labels` column is `labels` (one entry per clip)."""
    return features.remove_columns("labels").add_column("labels", labels)


def head_config(config: GenSERConfig, labels: list[str], arousal: bool, domain_names: list[str] | None) -> GenSERConfig:
    """`config` (the release's head) for `labels`, with the arousal task or without, and `domain_names`."""
    label_sets = {EMOTION_COLUMN: labels, AROUSAL_COLUMN: list(AROUSAL_LEVELS)} if arousal else None
    return GenSERConfig.from_dict(
        {**config.to_dict(), "id2label": dict(enumerate(labels)), "label_sets": label_sets,
         "label2id": {label: i for i, label in enumerate(labels)}, "domain_names": domain_names}
    )  # fmt: skip


def adaptation_start(release, features, corpus: str, label_ids: list[int], new_labels: list[str]):
    """What `genser-adapt` starts from: a copy of `release` with `corpus` a new domain and the `new_labels` added, and
    `features` labelled with the clips' emotions `label_ids` (in the adapted model's labels) and no arousal label, in
    that domain, with its statistics table."""
    start = copy.deepcopy(release)
    start.add_domains([corpus])
    start.add_labels(new_labels)
    features = with_labels(features, [[label, MISSING_LABEL] for label in label_ids])
    features, table, _ = with_domains(features, np.full(len(features), corpus), start.config.domain_names)
    return start, features, table


def adapt_release(release, features, corpus: str, label_ids: list[int], new_labels: list[str], training_args):
    """A copy of `release` trained further on `features` as `genser-adapt` trains it (`adaptation_start`)."""
    adapted, features, table = adaptation_start(release, features, corpus, label_ids, new_labels)
    set_seed(training_args.seed)
    train_head(adapted, features, training_args, table)
    return adapted


def budget_by_folds(
    release, features, corpus: str, label_ids: list[int], new_labels: list[str], speakers, training_args, metric
) -> int:
    """The step budget `genser-adapt` chooses on `features` (`--max_steps_candidates`): each of `STEP_BUDGETS`
    cross-validated over the clips' `speakers`, the release adapted on the other folds (`adaptation_start`, each
    held-out fold read with the new domain's weights, as `run_genser` reads it), scored by the UA of its predictions
    among all its labels."""
    start, features, table = adaptation_start(release, features, corpus, label_ids, new_labels)
    steps = release.config.num_inference_steps
    folds = min(ADAPTATION_FOLDS, len(set(speakers)))
    scores = {}
    for budget in STEP_BUDGETS:
        budget_args = copy.copy(training_args)
        budget_args.max_steps = budget
        predictions, _ = cross_validate_head(
            partial(copy.deepcopy, start), features, speakers, budget_args, [steps], folds, domain_table=table
        )
        predicted = first_task(predictions[steps])
        computed = metric.compute(predictions=predicted, references=label_ids, num_labels=len(start.config.id2label))
        scores[budget] = {"emotion": computed}
    return chosen_budget(scores)


def train_on_clips(new_head, features, label_ids: list[int], training_args):
    """A head from `new_head()` trained on `features` alone (one domain: their own statistics), with one label per
    clip."""
    features, table, _ = with_domains(with_labels(features, label_ids), np.zeros(len(features), dtype=int))
    set_seed(training_args.seed)
    head = new_head()
    train_head(head, features, training_args, table)
    return head


@torch.no_grad()
def first_task_logits(head, pooled: torch.Tensor, statistics: torch.Tensor, domain_id: int | None = None) -> np.ndarray:
    """`(num_clips, num_labels)` logits of the first task of `head` (Gen-SER or a baseline) on `pooled` features,
    standardised with `statistics`, read with domain `domain_id`'s residual weights (None: the shared ones)."""
    head.eval()
    domain_ids = None if domain_id is None else torch.full((len(pooled),), domain_id)
    output = head(pooled_layer_features=pooled, domain_statistics=statistics, domain_ids=domain_ids)
    task_logits = getattr(output, "task_logits", None)
    return (next(iter(task_logits.values())) if task_logits else output.logits).numpy()


def recalls(metric, logits: np.ndarray, label_ids: list[int], targets: np.ndarray) -> dict[int, float]:
    """Each of `label_ids`' recall, the predictions made within them."""
    predicted = np.asarray(label_ids)[logits[:, label_ids].argmax(-1)]
    size = max(label_ids) + 1
    computed = metric.compute(predictions=predicted, references=targets, num_labels=size)
    confusion = np.asarray(computed["confusion_matrix"])
    return {label: float(confusion[label, label] / confusion[label].sum()) for label in label_ids}


def drawn(rng, rows: np.ndarray, emotions: np.ndarray, labels: list[str], count: int) -> dict[str, np.ndarray]:
    """Per label, the first `count` of its `rows` in an order drawn once by `rng`, so smaller draws nest in larger."""
    return {label: rng.permutation(rows[emotions[rows] == label])[:count] for label in labels}


class ScoredClips(NamedTuple):
    """The held-out speakers' clips that are scored: their pooled features `(num_clips, num_layers, width)`, their
    statistics (a collection adapted to) and their rows in the features."""

    pooled: torch.Tensor
    statistics: torch.Tensor
    rows: np.ndarray


@dataclass
class HeldOutRun:
    """One held-out corpus and seed: every corpus's `features` with their `emotions` ("" for none) and `speakers`,
    the release's head configuration `config`, the `release` that never heard `corpus` (its emotions `heard`), the
    adaptation's training arguments, the `metric`, the held-out corpus's rows `own` (their pooled features row for
    row) and, per row, whether the user labels its speaker (`labelled`)."""

    corpus: str
    features: Dataset
    config: GenSERConfig
    emotions: np.ndarray
    speakers: np.ndarray
    heard: list[str]
    release: GenSERForAudioClassification
    adaptation_args: TrainingArguments
    metric: evaluate.EvaluationModule
    own: np.ndarray
    labelled: np.ndarray
    pooled: torch.Tensor

    def scored(self, label_names: list[str]) -> ScoredClips:
        """The held-out corpus's clips of `label_names` whose speakers the user does not label."""
        rows = self.own[~self.labelled[self.own] & np.isin(self.emotions[self.own], label_names)]
        position = {row: i for i, row in enumerate(self.own)}
        pooled = self.pooled[[position[row] for row in rows]]
        return ScoredClips(pooled, domain_statistics(pooled), rows)

    def heard_ids(self, labels) -> list[int]:
        """`labels` as indices into the release's emotions."""
        return [self.heard.index(label) for label in labels]


def mean_recall(
    metric, head, test: ScoredClips, label_ids: list[int], targets: np.ndarray, domain_id: int | None = None
) -> float:
    """The UA of `head` on the scored clips `test`: the mean of `label_ids`' recalls against `targets`, predicted
    within them, read with domain `domain_id`'s residual weights (None: the shared ones)."""
    logits = first_task_logits(head, test.pooled, test.statistics, domain_id)
    return float(np.mean(list(recalls(metric, logits, label_ids, targets).values())))


def training_budgets(output_dir: str, seed: int) -> tuple[TrainingArguments, TrainingArguments]:
    """The release's training arguments (the main job's budget) and the adaptation's (`ADAPTATION_TRAINING`)."""
    release_args = benchmark_training_arguments(
        f"{output_dir}/scratch", seed, MAIN_JOB["max_steps"], MAIN_JOB["per_device_train_batch_size"],
        MAIN_JOB["learning_rate"], MAIN_JOB["weight_decay"],
    )  # fmt: skip
    adaptation_args = benchmark_training_arguments(
        f"{output_dir}/scratch", seed, ADAPTATION_TRAINING["max_steps"],
        ADAPTATION_TRAINING["per_device_train_batch_size"], ADAPTATION_TRAINING["learning_rate"],
        ADAPTATION_TRAINING["weight_decay"],
    )  # fmt: skip
    return release_args, adaptation_args


def release_without(
    corpus: str, features, config, corpora: np.ndarray, emotions: np.ndarray, heard: list[str], release_args
) -> GenSERForAudioClassification:
    """The release that never heard `corpus`, as `make main` trains the release: emotions `heard` and arousal, on
    every other corpus (`corpora`: each clip's), with a domain per corpus."""
    arousal = np.asarray(features["labels"])[:, 1]
    rows = np.flatnonzero(corpora != corpus)
    labels = [[heard.index(emotions[row]) if emotions[row] else MISSING_LABEL, int(arousal[row])] for row in rows]
    release_features, table, domains = with_domains(with_labels(features.select(rows), labels), corpora[rows])
    set_seed(release_args.seed)
    release = GenSERForAudioClassification(head_config(config, heard, True, domains))
    train_head(release, release_features, release_args, table)
    return release


def k_shot_scores(run: HeldOutRun, test: ScoredClips, core: list[str], rows: np.ndarray) -> dict:
    """Every method's core-emotion UA on `test` after the user labelled the clips `rows` (`METHODS`), the step
    budget its folds chose and the number of labelled clips."""
    release, corpus, args = run.release, run.corpus, run.adaptation_args
    clips = run.features.select(rows)
    label_ids = run.heard_ids(run.emotions[rows])
    adapted = adapt_release(release, clips, corpus, label_ids, [], args)
    budget = budget_by_folds(release, clips, corpus, label_ids, [], run.speakers[rows], args, run.metric)
    budget_args = copy.copy(args)
    budget_args.max_steps = budget
    by_folds = (
        adapted if budget == args.max_steps else adapt_release(release, clips, corpus, label_ids, [], budget_args)
    )
    own_config = head_config(run.config, core, False, None)
    clip_ids = [core.index(label) for label in run.emotions[rows]]
    fresh = train_on_clips(partial(GenSERForAudioClassification, own_config), clips, clip_ids, args)
    linear = train_on_clips(partial(PooledFeatureClassifier, own_config), clips, clip_ids, args)
    own_targets = np.asarray([core.index(label) for label in run.emotions[test.rows]])
    own_ids = list(range(len(core)))
    targets = np.asarray(run.heard_ids(run.emotions[test.rows]))
    ua = partial(mean_recall, run.metric, test=test, label_ids=run.heard_ids(core), targets=targets)
    domain = len(release.config.domain_names)  # the adapted model's new domain
    return {
        "release adapted": ua(adapted, domain_id=domain),
        "release adapted, shared weights": ua(adapted),
        "release adapted, steps by its folds": ua(by_folds, domain_id=domain),
        "release adapted, steps by its folds, shared weights": ua(by_folds),
        "steps chosen": budget,
        "fresh Gen-SER": ua(fresh, label_ids=own_ids, targets=own_targets),
        "linear probe": ua(linear, label_ids=own_ids, targets=own_targets),
        "clips": int(len(rows)),
    }


def new_label_scores(
    run: HeldOutRun, own_labels: list[str], new: list[str], draws: dict[str, np.ndarray], shots: int
) -> tuple[dict[str, int], dict]:
    """The new-label figures (see the module's docstring): the step budgets the folds chose for the release adapted
    with the `new` labels and without them, and the recalls on the held-out corpus's clips of all its emotions."""
    old = [label for label in own_labels if label in run.heard]
    label_ids = {label: i for i, label in enumerate(run.heard + new)}
    test = run.scored(own_labels)
    targets = np.asarray([label_ids[label] for label in run.emotions[test.rows]])
    with_new = np.concatenate([draws[label][:shots] for label in own_labels])
    without = np.concatenate([draws[label][:shots] for label in old])
    runs, steps = {}, {}
    for name, rows, added in (("with", with_new, new), ("without", without, [])):
        clips, ids = run.features.select(rows), [label_ids[label] for label in run.emotions[rows]]
        budget_args = copy.copy(run.adaptation_args)
        budget_args.max_steps = budget_by_folds(
            run.release, clips, run.corpus, ids, added, run.speakers[rows], run.adaptation_args, run.metric
        )
        runs[name] = adapt_release(run.release, clips, run.corpus, ids, added, budget_args)
        steps[name] = budget_args.max_steps
    domain = len(run.release.config.domain_names)  # the adapted model's new domain
    own_ids = [label_ids[label] for label in own_labels]
    logits = first_task_logits(runs["with"], test.pooled, test.statistics, domain)
    every = recalls(run.metric, logits, own_ids, targets)
    old_rows = np.isin(run.emotions[test.rows], old)
    before = recalls(
        run.metric, first_task_logits(runs["without"], test.pooled[torch.as_tensor(old_rows)], test.statistics, domain),
        [label_ids[label] for label in old], targets[old_rows],
    )  # fmt: skip
    return steps, {
        "labels": new,
        "new label recall": float(np.mean([every[label_ids[label]] for label in new])),
        "old labels, with the new label": float(np.mean([every[label_ids[label]] for label in old])),
        "old labels, without it": float(np.mean(list(before.values()))),
        "clips per label": {label: int(len(draws[label][:shots])) for label in own_labels},
    }


def held_out_corpus(corpus: str, seed: int, features, config, args: FewShotArguments, num_threads: int) -> dict:
    """The few-shot and new-label figures of one held-out corpus and seed (see the module's docstring)."""
    torch.set_num_threads(num_threads)
    metric = evaluate.load(METRICS_PATH)
    corpora, speakers = np.asarray(features[CORPUS_COLUMN]), np.asarray(features["speaker"])
    emotions = np.asarray([e if e is not None else "" for e in features[EMOTION_COLUMN]])
    heard = sorted(set(emotions[corpora != corpus]) - {""})
    release_args, adaptation_args = training_budgets(args.output_dir, seed)
    release = release_without(corpus, features, config, corpora, emotions, heard, release_args)
    started = time.perf_counter()

    # The user's labelled speakers and the scored ones.
    own = np.flatnonzero(corpora == corpus)
    rng = np.random.default_rng(seed)
    own_speakers = np.unique(speakers[own])
    labelled = np.isin(speakers, rng.permutation(own_speakers)[: len(own_speakers) // 2])
    run = HeldOutRun(
        corpus, features, config, emotions, speakers, heard, release, adaptation_args, metric, own, labelled,
        pooled_features(features.select(own)),
    )  # fmt: skip
    own_labels = sorted(set(emotions[own]))
    core = [label for label in CORE_EMOTIONS if label in own_labels]
    test = run.scored(core)
    targets = np.asarray(run.heard_ids(emotions[test.rows]))
    scores = {"clips scored": int(len(test.rows)), "k-shot": {}}
    scores["k-shot"]["0"] = {"release": mean_recall(metric, release, test, run.heard_ids(core), targets)}
    draws = drawn(rng, own[labelled[own]], emotions, own_labels, max(max(args.shot_counts), args.new_label_shots))
    for k in [k for k in args.shot_counts if k > 0]:
        rows = np.concatenate([draws[label][:k] for label in core])
        scores["k-shot"][str(k)] = k_shot_scores(run, test, core, rows)
    if new := [label for label in own_labels if label not in heard]:
        steps, new_label = new_label_scores(run, own_labels, new, draws, args.new_label_shots)
        scores["new label steps chosen"], scores["new label"] = steps, new_label
    scores["adaptation seconds"] = time.perf_counter() - started
    logger.info("%s seed %d: %s", corpus, seed, scores)
    return scores


def mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def few_shot_table(results: dict, corpora: list[str], shot_counts: list[int]) -> str:
    """Markdown: per k and method, each held-out corpus's UA and their mean, mean ± sd over seeds."""
    lines = ["| k | method | mean | " + " | ".join(corpora) + " |", "|" + " --- |" * (3 + len(corpora))]
    for k in map(str, shot_counts):
        for method in ("release",) if k == "0" else METHODS:
            cells = [[seed[corpus]["k-shot"][k][method] for seed in results] for corpus in corpora]
            means = [float(np.mean([cell[i] for cell in cells])) for i in range(len(results))]
            lines.append(f"| {k} | {method} | {mean_sd(means)} | " + " | ".join(mean_sd(cell) for cell in cells) + " |")
    return "\n".join(lines)


def new_label_table(results: dict, corpora: list[str]) -> str:
    keys = ("new label recall", "old labels, with the new label", "old labels, without it")
    lines = ["| held-out corpus | new label | " + " | ".join(keys) + " |", "|" + " --- |" * (2 + len(keys))]
    for corpus in corpora:
        if "new label" in results[0][corpus]:
            cells = [mean_sd([seed[corpus]["new label"][key] for seed in results]) for key in keys]
            new = ", ".join(results[0][corpus]["new label"]["labels"])
            lines.append(f"| {corpus} | {new} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    started = time.perf_counter()
    parser = HfArgumentParser(FewShotArguments)
    (args,) = parser.parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else argv)
    args.shot_counts = [int(k) for k in args.shots.split(",")]
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    corpora = args.dataset_name.split(",")
    _, _, _, (features, config) = encoded_corpora(
        args.encoder, corpora, MAIN_JOB["config_overrides"], args.max_length_seconds, args.arousal_corpora.split(",")
    )
    seeds = [int(seed) for seed in args.seeds.split(",")]
    corpora = args.held_out.split(",") if args.held_out else corpora
    runs = [(corpus, seed) for seed in seeds for corpus in corpora]
    threads = max(1, torch.get_num_threads() // args.parallel)
    work = partial(held_out_corpus, features=features, config=config, args=args, num_threads=threads)
    with ProcessPoolExecutor(args.parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        scores = list(pool.map(work, *zip(*runs)))
    results = [{corpus: scores[runs.index((corpus, seed))] for corpus in corpora} for seed in seeds]
    (Path(args.output_dir) / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nCore-emotion UA on the held-out corpus's other speakers, k labelled clips per emotion (seeds {seeds}):\n")
    print(few_shot_table(results, corpora, args.shot_counts))
    print(f"\nA new label from {args.new_label_shots} clips per emotion, recall on the other speakers:\n")
    print(new_label_table(results, corpora))
    print(f"\nwall time {time.perf_counter() - started:.0f} s; results in {args.output_dir}/results.json")
    return results


if __name__ == "__main__":
    main()
