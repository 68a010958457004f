# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""The training scripts' shared arguments (`ModelArguments`, `DataTrainingArguments`, read by `HfArgumentParser`
beside transformers' `TrainingArguments`), their checks, and the resolution of named corpora and encoders
(`sources.py`) to the first available source."""

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from transformers import TrainingArguments
from transformers.trainer_utils import IntervalStrategy

from modeling_genser import GenSERConfig
from pipelines.audio_input import ENCODER_PRECISIONS
from training.sources import (
    AROUSAL_COLUMN,
    CORPORA,
    ENCODERS,
    EMOTION_COLUMN,
    CorpusSource,
    describe_sources,
    resolve_corpora,
    resolve_corpus,
    resolve_encoder,
)

logger = logging.getLogger(__name__)

# The arguments of `make main`, the release model's job (read from the checkout, as `make main` runs it).
MAIN_JOB_CONFIG = Path(__file__).parent / "configs" / "main_job.json"
# Its arguments, read once: the benchmarks measure the release model's head (its GenSERConfig overrides) by default.
MAIN_JOB = json.loads(MAIN_JOB_CONFIG.read_text())
RELEASE_CONFIG_OVERRIDES = MAIN_JOB["config_overrides"]


# What a saved model carries that the arguments below can set: a run continuing from it (`--model_name_or_path`)
# inherits each one the user leaves unset; a new model gets the default.
INHERITED_DEFAULTS = {
    "freeze_encoder": True, "trainable_encoder_layers": 0, "domain_normalization": False, "domain_residuals": False
}  # fmt: skip


# How `genser-adapt` goes on training a saved model on a user's labelled clips (`run_genser.adapt`; each overridden by
# its flag) and how `benchmarks/evaluate_few_shot.py` measures it: the head alone on cached features, a budget of
# steps whatever the data's size (a few hundred clips train in minutes on 2 cores), chosen among
# `max_steps_candidates` by the user's own speaker folds (hundreds of epochs of a few clips can undo what the saved
# model knew), and no weight decay, so the saved domains' residual weights, which no clip of the new data trains, stay
# exactly as saved.
ADAPTATION_TRAINING = {
    "learning_rate": 1e-3, "max_steps": 300, "per_device_train_batch_size": 32, "weight_decay": 0.0,
    "lr_scheduler_type": "cosine",
}  # fmt: skip
ADAPTATION_ARGUMENTS = {
    **ADAPTATION_TRAINING, "max_steps_candidates": "30,100,300", "evaluation_protocol": "leave_one_speaker_out",
    "num_folds": 5, "eval_strategy": "no", "save_strategy": "no", "logging_strategy": "no", "report_to": "none",
    "disable_tqdm": True,
}  # fmt: skip


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "A saved Gen-SER model (directory or Hub id) to continue from: it keeps its labels and tasks, "
            "and its settings below unless given."
        },
    )
    encoder_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Pretrained speech encoder (Hub id or directory). Default: the embedded small encoder."},
    )
    freeze_encoder: bool | None = field(
        default=None, metadata={"help": "Train the generative head only (default: the saved model's, else true)."}
    )
    trainable_encoder_layers: int | None = field(
        default=None,
        metadata={
            "help": "With --freeze_encoder true, the encoder's top N layers train with the head (fine-tuning); the "
            "frozen lower layers' frames are cached once (--use_feature_cache). Default: the saved model's, else 0."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "GenSERConfig fields to override, e.g. 'encoding_dim=128,taxonomy_index_scale=1000'."},
    )
    domain_normalization: bool | None = field(
        default=None,
        metadata={
            "help": "Standardise each clip's pooled features with its domain's statistics (--domain_column_name; "
            "config.domain_normalization): the model stores the training pool's for lone clips, and the pipeline "
            "takes a collection's (domain_statistics=). Default: the saved model's, else false."
        },
    )
    domain_residuals: bool | None = field(
        default=None,
        metadata={
            "help": "With --domain_normalization: every domain of the training data (each corpus, by default) gets "
            "its own residual weights on the prior (the initial distribution's map of the condition), beside the "
            "shared ones (config.domain_names); clips of a new corpus, and lone clips, are read with the shared "
            "weights alone. Default: the saved model's (its domains kept, the data's new ones added), else false."
        },
    )

    new_labels: bool = field(
        default=False,
        metadata={
            "help": "Going on from a saved model (--model_name_or_path): each label of the data that is none of its "
            "labels (after --label_mapping) becomes a new class, with the next taxonomy code; its labels keep theirs. "
            "Without it such a label is an error that lists the model's labels."
        },
    )

    def __post_init__(self):
        if self.new_labels and not self.model_name_or_path:
            raise ValueError(
                "--new_labels adds labels to a saved model's: give it with --model_name_or_path (a new model takes "
                "the data's labels anyway)."
            )
        saved = saved_settings(self.model_name_or_path) if self.model_name_or_path else {}
        for name, default in INHERITED_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, saved.get(name, default))
        if self.domain_residuals and not self.domain_normalization:
            if saved.get("domain_residuals"):
                raise ValueError(
                    f"{self.model_name_or_path} has residual weights per domain, which read domain-normalised "
                    "features: --domain_normalization false needs --domain_residuals false too (dropping them)."
                )
            raise ValueError("--domain_residuals gives each domain of --domain_normalization its weights: set both.")


def saved_settings(model_name_or_path: str) -> dict:
    """The `INHERITED_DEFAULTS` settings a saved Gen-SER model carries, from its config."""
    config = GenSERConfig.from_pretrained(model_name_or_path)
    return {
        "freeze_encoder": config.freeze_encoder,
        "trainable_encoder_layers": config.trainable_encoder_layers,
        "domain_normalization": config.domain_normalization,
        "domain_residuals": bool(config.domain_names),
    }


@dataclass
class DataTrainingArguments:
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Hub dataset id, local audiofolder directory, CSV/JSON manifest, or a named corpus of "
            "training/sources.py (e.g. emodb). Default: generate the synthetic corpus."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of the Hub dataset."})
    train_split_name: str = field(default="train")
    eval_split_name: str | None = field(
        default=None, metadata={"help": "Evaluation split; if absent, speakers are held out of the training split."}
    )
    audio_column_name: str = field(default="audio")
    label_column_name: str = field(default="label")
    task_columns: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated further label columns (e.g. 'sex'), each a task that one multi-task Gen-SER head "
            "predicts with --label_column_name (config.label_sets; choose the codes with "
            "--config_overrides multi_task_codes=concat|tuple). With named corpora, 'arousal' is the arousal task: "
            "rated by arousal corpora (e.g. baved, which then join the emotion corpora), derived from the emotions "
            "elsewhere (training/sources.py)."
        },
    )
    value_columns: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated numeric columns (e.g. 'level' of baved, its arousal 0/1/2), each a dimension that "
            "a dimensional Gen-SER head predicts instead of classes (problem_type='regression'); scored by CCC, "
            "Pearson and MAE per dimension, and by a confusion matrix of the levels where a column takes few values."
        },
    )
    value_range: str | None = field(
        default=None,
        metadata={"help": "With --value_columns: 'low,high' of the values (config.value_range). Default: the data's."},
    )
    group_column_name: str | None = field(
        default="speaker",
        metadata={
            "help": "Speaker column for speaker-independent evaluation (empty: a random split, or with "
            "leave_one_speaker_out folds of clips); columns joined by '+' (e.g. 'gender+age') when their values together "
            "identify a speaker."
        },
    )
    evaluation_protocol: str = field(
        default="held_out_speakers",
        metadata={
            "help": "held_out_speakers: evaluate on held-out speakers and save that model. leave_one_speaker_out: "
            "cross-validate over speakers (frozen encoder), then train the saved model on every speaker."
        },
    )
    domain_column_name: str | None = field(
        default=None,
        metadata={
            "help": "With --domain_normalization: the column whose values are the domains (e.g. speaker). Default: "
            "the corpus with several corpora, else the whole dataset is one domain."
        },
    )
    num_folds: int = field(
        default=0,
        metadata={"help": "Speaker-independent folds: 0 holds out one speaker (group) per fold; N > 1 deals them into N folds."},
    )
    leave_one_corpus_out: bool = field(
        default=False,
        metadata={
            "help": "With several corpora: before training, score each corpus zero-shot with a head trained on the "
            "others (with and without adaptation to it), for the log and the model card."
        },
    )
    max_steps_candidates: str | None = field(
        default=None,
        metadata={
            "help": "With leave_one_speaker_out: step budgets (e.g. '30,100,300'), each cross-validated on the same "
            "folds; the saved model trains with the one whose first task's UA is best (the fewest steps on a tie), in "
            "place of --max_steps. The figures reported are the chosen budget's, so they flatter it slightly."
        },
    )
    parallel_folds: int = field(
        default=1,
        metadata={"help": "Cross-validation folds trained at once, each in its own process with a share of the CPU threads."},
    )
    eval_fraction: float = field(default=0.2, metadata={"help": "Fraction of speakers held out for evaluation."})
    max_length_seconds: float = field(
        default=20.0,
        metadata={"help": "Clips are cut to this: a random window in training without the feature cache, else the start."},
    )
    use_feature_cache: bool = field(
        default=True, metadata={"help": "With a frozen encoder, encode every clip once and train the head on the cache."}
    )
    feature_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where encoded clips are cached. Default: the datasets cache (HF_DATASETS_CACHE)."},
    )
    encoder_precision: str = field(
        default="float32",
        metadata={
            "help": "How the frozen encoder encodes the cache: float32, or bfloat16 (its matrix products under "
            "torch.autocast: about twice as fast on CPUs with bfloat16 instructions and on GPUs; BENCHMARKS.md)."
        },
    )
    num_example_predictions: int = field(
        default=3, metadata={"help": "Clips (one per label) classified at the end through the saved pipeline."}
    )
    unreadable_audio: str = field(
        default="raise", metadata={"help": "raise: stop on an unreadable clip; skip: leave it out with a warning."}
    )
    label_mapping: str | None = field(
        default=None,
        metadata={
            "help": "Rename the dataset's labels, e.g. 'joy=happy,rage=angry' (every label must be named), such as onto "
            "the vocabulary of training/sources.py; named corpora bring their own mapping."
        },
    )
    offline_fallback: bool = field(
        default=False,
        metadata={
            "help": "When a named corpus or encoder (training/sources.py) is nowhere to be found, train on the "
            "synthetic corpus and the embedded randomly initialised encoder instead of stopping: the main job's "
            "offline mode, which says so in the log. The model then knows nothing about real speech."
        },
    )

    def __post_init__(self):
        if self.encoder_precision not in ENCODER_PRECISIONS:
            raise ValueError(f"--encoder_precision must be one of {ENCODER_PRECISIONS}, got {self.encoder_precision!r}.")
        if self.encoder_precision != "float32" and not self.use_feature_cache:
            raise ValueError(
                "--encoder_precision sets how the feature cache is encoded; without it (--use_feature_cache false) "
                "the encoder runs in training, in float32: leave --encoder_precision out."
            )

    @property
    def step_budgets(self) -> list[int] | None:
        """The budgets of `--max_steps_candidates` (None without)."""
        if not self.max_steps_candidates:
            return None
        budgets = [budget.strip() for budget in self.max_steps_candidates.split(",")]
        if not all(budget.isdigit() and int(budget) > 0 for budget in budgets):
            raise ValueError(f"--max_steps_candidates takes positive step counts, e.g. '30,100,300'; got {budgets}.")
        return sorted({int(budget) for budget in budgets})

    @property
    def dimensions(self) -> list[str] | None:
        """The columns of `--value_columns` (None for class labels)."""
        return [column.strip() for column in self.value_columns.split(",")] if self.value_columns else None

    @property
    def arousal_task(self) -> bool:
        """Whether `--task_columns` names the arousal task (with named corpora: `data.with_arousal`)."""
        return AROUSAL_COLUMN in [column.strip() for column in (self.task_columns or "").split(",")]


PROTOCOLS = ("held_out_speakers", "leave_one_speaker_out")


def check_protocol(model_args: ModelArguments, data_args: DataTrainingArguments, training_args: TrainingArguments):
    if data_args.evaluation_protocol not in PROTOCOLS:
        raise ValueError(f"evaluation_protocol must be one of {PROTOCOLS}, got {data_args.evaluation_protocol!r}.")
    for option, head in (("task_columns", "a multi-task head"), ("value_columns", "a dimensional head")):
        if getattr(data_args, option) and not (model_args.freeze_encoder and data_args.use_feature_cache):
            raise ValueError(
                f"--{option} ({head}) is evaluated on cached features: set --freeze_encoder true and "
                "--use_feature_cache true."
            )
    if data_args.step_budgets and (data_args.evaluation_protocol != "leave_one_speaker_out" or data_args.value_columns):
        raise ValueError(
            "--max_steps_candidates chooses a class model's step budget by its leave_one_speaker_out folds: use that "
            "protocol with class labels, or give --max_steps alone."
        )
    if data_args.value_columns:
        if data_args.task_columns or data_args.label_mapping:
            raise ValueError(
                "--value_columns trains a dimensional head on numbers; --task_columns and --label_mapping are for class "
                "labels: leave them out, or train the classes as a separate model."
            )
        if "," in (data_args.dataset_name or ""):
            raise ValueError(
                "--value_columns trains on one dataset: several named corpora are read for their emotion labels. Name "
                "one dataset with the value columns (e.g. --dataset_name baved --value_columns level)."
            )
    if data_args.evaluation_protocol != "leave_one_speaker_out":
        if model_args.domain_normalization or data_args.leave_one_corpus_out:
            inherited = f" (inherited from {model_args.model_name_or_path})" if model_args.model_name_or_path else ""
            raise ValueError(
                f"--domain_normalization{inherited} and --leave_one_corpus_out train on cached features by speaker "
                "folds: use --evaluation_protocol leave_one_speaker_out."
            )
        return
    if not (model_args.freeze_encoder and data_args.use_feature_cache):
        raise ValueError(
            "leave_one_speaker_out trains one head per speaker on cached features: it needs --freeze_encoder true and "
            "--use_feature_cache true. Use --evaluation_protocol held_out_speakers to fine-tune the encoder."
        )
    if data_args.eval_split_name:
        raise ValueError("leave_one_speaker_out folds the training split by speaker: give no --eval_split_name.")
    if not data_args.group_column_name and not data_args.num_folds:
        raise ValueError(
            "leave_one_speaker_out without a speaker column (--group_column_name '') deals clips into folds: give "
            "--num_folds (e.g. 5)."
        )
    if data_args.leave_one_corpus_out and "," not in (data_args.dataset_name or ""):
        raise ValueError("--leave_one_corpus_out needs several corpora: --dataset_name emodb,cremad,...")
    if training_args.eval_strategy != IntervalStrategy.NO:
        raise ValueError(
            "leave_one_speaker_out evaluates by cross-validation after training, not during it: set --eval_strategy no."
        )
    if data_args.parallel_folds > 1 and training_args.world_size > 1:
        raise ValueError("--parallel_folds > 1 starts its own fold processes: launch one process, not several.")


def resolve_sources(
    model_args: ModelArguments, data_args: DataTrainingArguments
) -> tuple[ModelArguments, DataTrainingArguments, CorpusSource | dict | None, str | None]:
    """The arguments with a named corpus or encoder (`training/sources.py`) replaced by its first available source
    (copies: the parsed arguments stay as given), the corpus source used (for several corpora, `--dataset_name
    emodb,cremad`, a dict of them; None for other data) and the Hub id of a named encoder (for the model card's
    `base_model`, also when a local copy was loaded). When no source is available it stops with an error, or with
    `--offline_fallback` (the main job) falls back to the synthetic corpus or the embedded encoder, saying so loudly,
    so the job still runs offline."""
    corpus = None
    synthetic = {"dataset_name": None, "label_column_name": "label", "group_column_name": "speaker"}
    if data_args.dataset_name and "," in data_args.dataset_name:  # several named corpora, read by load_training_data
        names = data_args.dataset_name.split(",")
        try:
            corpus = resolve_corpora(names, arousal=data_args.arousal_task)
            # load_corpora's label column; it also gives `speaker` and `corpus` to fold by
            data_args = replace(data_args, label_column_name=EMOTION_COLUMN)
        except OSError as error:
            logger.warning("%s", error)
            candidates = [source for name in names if name in CORPORA for source in CORPORA[name]]
            unavailable(data_args, f"One of the corpora {names}", candidates, "the synthetic corpus, which is not speech")
            data_args = replace(data_args, **synthetic)
    elif data_args.dataset_name in CORPORA:
        name, corpus = data_args.dataset_name, resolve_corpus(data_args.dataset_name)
        if corpus is None:
            unavailable(data_args, f"Corpus {name!r}", CORPORA[name], "the synthetic corpus, which is not speech")
            data_args = replace(data_args, **synthetic)
        else:
            logger.info("Corpus %r: loading %s", name, corpus.dataset_name)
            data_args = replace(
                data_args,
                dataset_name=corpus.dataset_name,
                label_column_name=corpus.label_column_name,
                group_column_name=corpus.group_column_name,
            )
    encoder_hub_id = None
    if model_args.encoder_name_or_path in ENCODERS:
        name, location = model_args.encoder_name_or_path, resolve_encoder(model_args.encoder_name_or_path)
        if location is None:
            unavailable(data_args, f"Encoder {name!r}", ENCODERS[name], "the embedded, randomly initialised encoder")
        else:
            logger.info("Encoder %r: loading %s", name, location)
            encoder_hub_id = ENCODERS[name][-1]
        model_args = replace(model_args, encoder_name_or_path=location)
    return model_args, data_args, corpus, encoder_hub_id


def unavailable(data_args: DataTrainingArguments, what: str, sources, fallback: str) -> None:
    """Stops because a named corpus or encoder is nowhere to be found, or with `--offline_fallback` says loudly that
    `fallback` replaces it."""
    problem = f"{what} is not available here: neither {describe_sources(sources)} could be reached"
    if not data_args.offline_fallback:
        raise OSError(
            f"{problem}. Pass a local path or a reachable Hub id instead (or, for an offline demo of the whole job, "
            "--offline_fallback true)."
        )
    logger.warning("%s\nOFFLINE FALLBACK: %s. Falling back to %s: the model will say nothing about real emotional "
                   "speech.\n%s", "=" * 100, problem, fallback, "=" * 100)
