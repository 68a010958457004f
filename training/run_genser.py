# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune Gen-SER on labelled audio with the transformers Trainer.

Modelled on transformers' examples/pytorch/audio-classification/run_audio_classification.py. Data comes from a Hub
dataset id, a local audiofolder directory or manifest, or a named corpus (`training/sources.py`: `emodb` is read from
`../shared` when present, else from the Hub); without one, the embedded synthetic corpus is generated (offline).
Without an encoder, a small randomly initialised wav2vec2 encoder is used, so the whole job runs with no network.

With a frozen encoder (the default) every clip is encoded once into a feature cache (`feature_cache.py`) and each
epoch trains the head alone. Two evaluation protocols:

- `held_out_speakers`: train on some speakers, evaluate on the others (`--eval_fraction`) or on `--eval_split_name`;
  the saved model is the one evaluated.
- `leave_one_speaker_out`: one fold per speaker, a fresh head per fold, predictions pooled over folds; then the
  release model is trained on every speaker and saved. Its model card reports the cross-validated figures.

    python -m training.run_genser training/configs/main_job.json        # the main job: EmoDB, whisper-tiny.en
    python -m training.run_genser training/configs/synthetic_demo.json  # offline demo on the synthetic corpus
    python -m training.run_genser --dataset_name path/to/audiofolder --encoder_name_or_path openai/whisper-tiny.en \
        --output_dir outputs/my-genser --learning_rate 1e-3 --num_train_epochs 30 --eval_strategy epoch
"""

import dataclasses
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import evaluate
import numpy as np
import transformers
from datasets import Audio
from transformers import (
    AutoFeatureExtractor,
    HfArgumentParser,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    pipeline,
    set_seed,
)
from transformers.trainer_utils import IntervalStrategy

from modeling_genser import GenSERConfig, GenSERForAudioClassification
from pipelines import GenSERAudioClassificationPipeline, ship_pipeline
from training.data import (
    CORPUS_COLUMN,
    AudioClassificationCollator,
    BalancedTrainer,
    audio_transform,
    corpus_balancing_weights,
    cast_audio,
    decode_audio,
    domain_values,
    drop_unreadable_audio,
    encode_labels,
    group_train_test_split,
    label_names,
    load_audio_dataset,
    load_corpora,
    speaker_groups,
    with_mapped_labels,
    task_label_sets,
)
from training.feature_cache import add_encoder_features, collate_cached_features, with_domains
from training.folds import (
    corpus_label_subsets,
    cross_validate_head,
    head_inputs,
    held_out_corpus_scores,
    held_out_label_subsets,
    predict,
    store_pool_statistics,
)
from training.reports import METRICS_PATH, save_confusion_matrix, write_model_card
from training.sources import (
    CORPORA,
    ENCODERS,
    CorpusSource,
    describe_sources,
    parse_label_mapping,
    resolve_corpora,
    resolve_corpus,
    resolve_encoder,
)
from training.synthetic_corpus import generate_corpus

logger = logging.getLogger(__name__)
SYNTHETIC_DATASET_NAME = "gen-ser-synthetic"  # the model card's name for the embedded corpus


def embedded_encoder_config() -> Wav2Vec2Config:
    """A small wav2vec2 encoder (about 0.4 M parameters) trained from scratch when no pretrained encoder is given."""
    return Wav2Vec2Config(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(64, 64, 64, 64, 64),
        conv_stride=(5, 4, 2, 2, 2),
        conv_kernel=(10, 8, 4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        apply_spec_augment=False,
        layerdrop=0.0,
        vocab_size=None,
    )


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved Gen-SER model (directory or Hub id) to continue from."}
    )
    encoder_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Pretrained speech encoder (Hub id or directory). Default: the embedded small encoder."},
    )
    freeze_encoder: bool = field(default=True, metadata={"help": "Train the generative head only."})
    trainable_encoder_layers: int = field(
        default=0,
        metadata={
            "help": "With --freeze_encoder true, the encoder's top N layers train with the head (fine-tuning); the "
            "frozen lower layers' frames are cached once (--use_feature_cache)."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "GenSERConfig fields to override, e.g. 'encoding_dim=128,taxonomy_index_scale=1000'."},
    )
    domain_normalization: bool = field(
        default=False,
        metadata={
            "help": "Standardise each clip's pooled features with its domain's statistics (--domain_column_name; "
            "config.domain_normalization): the model stores the training pool's for lone clips, and the pipeline "
            "takes a collection's (domain_statistics=)."
        },
    )


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
            "--config_overrides multi_task_codes=concat|tuple)."
        },
    )
    group_column_name: str | None = field(
        default="speaker",
        metadata={
            "help": "Speaker column for speaker-independent evaluation (empty: random split); columns joined by '+' "
            "(e.g. 'gender+age') when their values together identify a speaker."
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


PROTOCOLS = ("held_out_speakers", "leave_one_speaker_out")


def parse_config_overrides(overrides: str | None) -> dict:
    """'a=1,b=x,c={"d":1,"e":2}' -> {'a': 1, 'b': 'x', 'c': {'d': 1, 'e': 2}}; values are read as JSON when they
    parse, else kept as strings."""
    result = {}
    # Split only at commas that start a new `key=`, so JSON values may contain commas.
    for item in filter(None, re.split(r",(?=\s*[A-Za-z_]\w*=)", overrides or "")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"config_overrides entries must look like key=value, got {item!r}.")
        try:
            result[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            result[key.strip()] = value.strip()
    unknown = set(result) - {field.name for field in dataclasses.fields(GenSERConfig)}
    if unknown:
        raise ValueError(f"Unknown GenSERConfig fields in config_overrides: {sorted(unknown)}.")
    return result


def build_model(model_args: ModelArguments, labels: list[str], label_sets: dict[str, list[str]] | None = None):
    """The Gen-SER model and its feature extractor, with the label set of the data (and with `label_sets`, every
    task's, `labels` being the first's)."""
    id2label = dict(enumerate(labels))
    overrides = parse_config_overrides(model_args.config_overrides)
    if label_sets:
        overrides["label_sets"] = label_sets
    overrides["domain_normalization"] = model_args.domain_normalization
    overrides["freeze_encoder"] = model_args.freeze_encoder
    overrides["trainable_encoder_layers"] = model_args.trainable_encoder_layers
    if model_args.model_name_or_path:
        model = GenSERForAudioClassification.from_pretrained(model_args.model_name_or_path, **overrides)
        if model.config.id2label != id2label:
            raise ValueError(
                f"The data's labels {labels} differ from the model's {list(model.config.id2label.values())}."
            )
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.model_name_or_path)
    elif model_args.encoder_name_or_path:
        model = GenSERForAudioClassification.from_encoder(model_args.encoder_name_or_path, id2label, **overrides)
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.encoder_name_or_path)
    else:
        config = GenSERConfig(
            encoder_config=embedded_encoder_config(),
            id2label=id2label,
            label2id={label: index for index, label in id2label.items()},
            **overrides,
        )
        model = GenSERForAudioClassification(config)
        feature_extractor = Wav2Vec2FeatureExtractor(do_normalize=True)
    # Gen-SER pools over real frames only, so the pipeline must pass the padding mask on.
    feature_extractor.return_attention_mask = True
    return model, feature_extractor


def task_scores(metric, predictions, references, tasks: dict[str, list[str]]) -> dict[str, dict]:
    """Every task's metrics (`tasks`: name -> labels, in order) from class indices of shape `(num_clips,)` or
    `(num_clips, num_tasks)`."""
    predictions = np.asarray(predictions).reshape(len(predictions), len(tasks))
    references = np.asarray(references).reshape(len(references), len(tasks))
    return {
        task: metric.compute(predictions=predictions[:, t], references=references[:, t], num_labels=len(labels))
        for t, (task, labels) in enumerate(tasks.items())
    }


def new_genser_head(model_args: ModelArguments, labels: list[str], label_sets: dict[str, list[str]] | None = None):
    """A freshly initialised Gen-SER model, for one cross-validation fold."""
    return build_model(model_args, labels, label_sets)[0]


class GenSERTrainer(BalancedTrainer):
    """`Trainer` whose Hub uploads keep the Gen-SER model card (`training/reports.py`) instead of replacing it, whose
    saved models carry the Gen-SER pipeline (`ship_pipeline`), and which draws several corpora balanced over corpus
    and class (`BalancedTrainer`)."""

    def create_model_card(self, *args, **kwargs):
        pass

    def _save(self, output_dir: str | None = None, state_dict=None):
        ship_pipeline(self.model.config, output_dir or self.args.output_dir)
        super()._save(output_dir, state_dict)


def resolve_sources(model_args: ModelArguments, data_args: DataTrainingArguments) -> tuple[CorpusSource | dict | None, str | None]:
    """Replaces a named corpus or encoder (`training/sources.py`) by its first available source, in place. Returns the
    corpus source used (for several corpora, `--dataset_name emodb,cremad`, a dict of them; None for other data)
    and the Hub id of a named encoder (for the model card's `base_model`,
    also when a local copy was loaded). When no source is available it stops with an error, or with
    `--offline_fallback` (the main job) falls back to the synthetic corpus or the embedded encoder, saying so loudly,
    so the job still runs offline."""
    corpus = None
    if data_args.dataset_name and "," in data_args.dataset_name:  # several named corpora, read by load_training_data
        names = data_args.dataset_name.split(",")
        try:
            corpus = resolve_corpora(names)
            data_args.label_column_name = "label"  # load_corpora's; it also gives `speaker` and `corpus` to fold by
        except OSError as error:
            logger.warning("%s", error)
            candidates = [source for name in names if name in CORPORA for source in CORPORA[name]]
            unavailable(data_args, f"One of the corpora {names}", candidates, "the synthetic corpus, which is not speech")
            data_args.dataset_name, data_args.label_column_name, data_args.group_column_name = None, "label", "speaker"
    elif data_args.dataset_name in CORPORA:
        name, corpus = data_args.dataset_name, resolve_corpus(data_args.dataset_name)
        if corpus is None:
            unavailable(data_args, f"Corpus {name!r}", CORPORA[name], "the synthetic corpus, which is not speech")
            data_args.dataset_name, data_args.label_column_name, data_args.group_column_name = None, "label", "speaker"
        else:
            logger.info("Corpus %r: loading %s", name, corpus.dataset_name)
            data_args.dataset_name = corpus.dataset_name
            data_args.label_column_name, data_args.group_column_name = corpus.label_column_name, corpus.group_column_name
    encoder_hub_id = None
    if model_args.encoder_name_or_path in ENCODERS:
        name, location = model_args.encoder_name_or_path, resolve_encoder(model_args.encoder_name_or_path)
        if location is None:
            unavailable(data_args, f"Encoder {name!r}", ENCODERS[name], "the embedded, randomly initialised encoder")
        else:
            logger.info("Encoder %r: loading %s", name, location)
            encoder_hub_id = ENCODERS[name][-1]
        model_args.encoder_name_or_path = location
    return corpus, encoder_hub_id


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


def card_dataset_name(dataset_name: str | None) -> str:
    """The `datasets` entry of the model card: a Hub id as given, a local folder or manifest by its name."""
    if dataset_name is None:
        return SYNTHETIC_DATASET_NAME
    return Path(dataset_name).stem if os.path.exists(dataset_name) else dataset_name


def describe_corpora(train, corpora: dict) -> str:
    """The model card's "Training data" for several corpora: each one's language, clips, speakers and labels."""
    rows = []
    for name, source in corpora.items():
        part = train.filter(lambda corpus: corpus == name, input_columns=CORPUS_COLUMN)
        labels = ", ".join(sorted(set(part["label"])))
        rows.append(f"| {name} | {source.language} | {len(part)} | {len(set(part['speaker']))} | {labels} | {source.licence} |")
    descriptions = "\n".join(f"- {name}: {source.description}." for name, source in corpora.items())
    return (
        f"{len(train)} clips of {len(corpora)} corpora, each corpus's labels mapped onto one vocabulary, drawn balanced "
        "over corpus and class in training:\n\n| corpus | language | clips | speakers | labels | licence |\n"
        f"| --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + f"\n\n{descriptions}"
    )


def describe_training_data(
    data_args: DataTrainingArguments, train, labels: list[str], seed: int, corpus: CorpusSource | dict | None
) -> str:
    """The model card's "Training data" paragraph."""
    if isinstance(corpus, dict):
        return describe_corpora(train, corpus)
    group = data_args.group_column_name
    has_groups = group and set(group.split("+")) <= set(train.column_names)  # e.g. an eval split without speakers
    speakers = f" from {len(set(speaker_groups(train, group)))} speakers" if has_groups else ""
    clips = f"{len(train)} clips{speakers}, labels {', '.join(labels)}"
    if data_args.dataset_name:
        source = f"{clips}, from `{card_dataset_name(data_args.dataset_name)}` (split {data_args.train_split_name!r})"
        return f"{source}: {corpus.description}." if corpus else f"{source}."
    return (
        f"{clips}, from the project's synthetic corpus (`training/synthetic_corpus.py`, seed {seed}). It is not "
        "speech: source-filter vowel strings with no words and no language, whose prosody (pitch level and range, "
        "tempo, loudness, voice quality) changes with the emotion the way acted speech tends to."
    )


def training_data_limitations(data_args: DataTrainingArguments, corpus: CorpusSource | dict | None) -> str | None:
    """What the training data rules out, for the model card's Limitations (None when nothing is known of it)."""
    if data_args.dataset_name is None:
        return "Trained on the project's synthetic corpus, the model has never heard speech: it is a pipeline demonstration only"
    if isinstance(corpus, dict):
        languages = ", ".join(sorted({source.language for source in corpus.values()}))
        return (
            f"Trained on {', '.join(corpus)} only ({languages}): speech unlike theirs (other languages, recording "
            "conditions, natural conversation, children's voices) is classified less well; classify a collection with "
            "its own statistics (adaptation) where you can"
        )
    return corpus.limitations if corpus else None


def load_training_data(data_args: DataTrainingArguments, training_args: TrainingArguments, corpora: dict | None = None):
    """The training split and the evaluation split (None when speakers are held out of the training split), with
    unreadable clips handled as `--unreadable_audio` says; several `corpora` are read as one (`load_corpora`)."""
    if corpora:
        dataset = load_corpora(corpora, data_args.audio_column_name, data_args.train_split_name)
        return drop_unreadable_audio(dataset, data_args.audio_column_name, data_args.unreadable_audio), None
    dataset_name = data_args.dataset_name
    if dataset_name is None:
        dataset_name = str(Path(training_args.output_dir) / "synthetic_corpus")
        if not (Path(dataset_name) / "metadata.csv").exists():
            logger.info("No dataset given: generating the synthetic corpus in %s", dataset_name)
            generate_corpus(dataset_name, seed=training_args.seed)
    dataset = load_audio_dataset(dataset_name, data_args.dataset_config_name, data_args.audio_column_name)
    splits = [data_args.train_split_name] + ([data_args.eval_split_name] if data_args.eval_split_name else [])
    for split in splits:
        if split not in dataset:
            raise ValueError(f"Split {split!r} not found; available: {list(dataset)}.")
    readable = [drop_unreadable_audio(dataset[split], data_args.audio_column_name, data_args.unreadable_audio) for split in splits]
    return readable[0], readable[1] if len(readable) > 1 else None


def check_protocol(model_args: ModelArguments, data_args: DataTrainingArguments, training_args: TrainingArguments):
    if data_args.evaluation_protocol not in PROTOCOLS:
        raise ValueError(f"evaluation_protocol must be one of {PROTOCOLS}, got {data_args.evaluation_protocol!r}.")
    if data_args.task_columns and not (model_args.freeze_encoder and data_args.use_feature_cache):
        raise ValueError(
            "--task_columns (a multi-task head) is evaluated on cached features: set --freeze_encoder true and "
            "--use_feature_cache true."
        )
    if data_args.evaluation_protocol != "leave_one_speaker_out":
        if model_args.domain_normalization or data_args.leave_one_corpus_out:
            raise ValueError(
                "--domain_normalization and --leave_one_corpus_out train on cached features by speaker folds: use "
                "--evaluation_protocol leave_one_speaker_out."
            )
        return
    if not (model_args.freeze_encoder and data_args.use_feature_cache):
        raise ValueError(
            "leave_one_speaker_out trains one head per speaker on cached features: it needs --freeze_encoder true and "
            "--use_feature_cache true. Use --evaluation_protocol held_out_speakers to fine-tune the encoder."
        )
    if data_args.eval_split_name or not data_args.group_column_name:
        raise ValueError(
            "leave_one_speaker_out folds the training split by speaker: give --group_column_name and no --eval_split_name."
        )
    if data_args.leave_one_corpus_out and "," not in (data_args.dataset_name or ""):
        raise ValueError("--leave_one_corpus_out needs several corpora: --dataset_name emodb,cremad,...")
    if training_args.eval_strategy != IntervalStrategy.NO:
        raise ValueError(
            "leave_one_speaker_out evaluates by cross-validation after training, not during it: set --eval_strategy no."
        )
    if data_args.parallel_folds > 1 and training_args.world_size > 1:
        raise ValueError("--parallel_folds > 1 starts its own fold processes: launch one process, not several.")


def cross_validated_predictions(
    model_args: ModelArguments,
    data_args: DataTrainingArguments,
    training_args: TrainingArguments,
    features,
    labels,
    steps,
    label_sets=None,
    domain_table=None,
    label_subsets=None,
) -> tuple[dict, int]:
    """Every clip's prediction by a fresh Gen-SER head trained on the other speakers' cached features, at `steps`
    sampling steps, keyed `steps` (one class index per task with `label_sets`) and, within each of `label_subsets`
    (name -> label ids), `(steps, name)`; and the number of folds."""
    groups = speaker_groups(features, data_args.group_column_name)
    predictions, folds = cross_validate_head(
        partial(new_genser_head, model_args, labels, label_sets), features, groups, training_args, [steps],
        data_args.num_folds, data_args.parallel_folds, domain_table=domain_table,
        label_subsets=None if label_subsets is None else lambda held_out: label_subsets,
    )
    return predictions, len(folds)


def leave_one_corpus_out(
    model_args: ModelArguments, data_args: DataTrainingArguments, training_args, features, labels, steps, domain_table, metric
) -> dict:
    """Each corpus scored zero-shot by a Gen-SER head trained on the others, on the labels it shares with them and
    on the core emotions among those (`folds.held_out_corpus_scores`; with domain normalisation, with its own
    statistics and, as `genser_unadapted`, with the training pool's)."""
    corpora, targets = np.asarray(features[CORPUS_COLUMN]), np.asarray(features["labels"])
    predictions, folds = cross_validate_head(
        partial(new_genser_head, model_args, labels), features, corpora, training_args, [steps],
        parallel_folds=data_args.parallel_folds, label_subsets=partial(held_out_label_subsets, targets, labels),
        domain_table=domain_table,
    )
    return held_out_corpus_scores(metric, predictions, targets, labels, folds, {steps: "genser"})


def corpus_figures(
    model_args, data_args, training_args, features, labels, predictions, protocol, steps, domain_table, metric
) -> tuple[dict, str]:
    """Each corpus's figures for the model card of a model of several corpora: its own clips' cross-validated
    predictions (`cross_validated_predictions` with `folds.corpus_label_subsets`), made within its labels and among
    all of them, and, with `--leave_one_corpus_out`, its zero-shot scores. Returns `{corpus: {protocol: metrics}}`
    and their markdown tables."""
    corpora, targets = np.asarray(features[CORPUS_COLUMN]), np.asarray(features["labels"])
    in_corpus, corpus_metrics = {}, {}
    for corpus in sorted(set(features[CORPUS_COLUMN])):  # Python strings, for the card's YAML
        rows = corpora == corpus
        figures = {}
        for name, key in (("its labels", (steps, corpus)), ("all labels", steps)):
            computed = metric.compute(predictions=predictions[key][rows], references=targets[rows], num_labels=len(labels))
            figures[name] = {key: value for key, value in computed.items() if key != "confusion_matrix"}
        in_corpus[corpus] = {"clips": int(rows.sum()), **figures}
        corpus_metrics[corpus] = {f"{protocol}, {name}": scores for name, scores in figures.items()}
    held_out = None
    if data_args.leave_one_corpus_out:
        held_out = leave_one_corpus_out(model_args, data_args, training_args, features, labels, steps, domain_table, metric)
    for corpus, subsets in (held_out or {}).items():
        corpus = str(corpus)
        for subset, entry in subsets.items():
            for variant, statistics in (("genser", "own statistics"), ("genser_unadapted", "training pool's statistics")):
                if variant in entry:
                    corpus_metrics[corpus][f"leave-one-corpus-out, {subset} labels, {statistics}"] = entry[variant]
    return corpus_metrics, corpus_tables(in_corpus, held_out)


def corpus_tables(in_corpus: dict, held_out: dict | None) -> str:
    """Markdown tables of each corpus's in-corpus figures and, when measured, its zero-shot (held-out) ones."""
    lines = [
        "| corpus | clips | in-corpus UA, its labels | WA, its labels | UA, all labels |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {c} | {m['clips']} | {m['its labels']['unweighted_accuracy']:.4f} | {m['its labels']['accuracy']:.4f} | "
        f"{m['all labels']['unweighted_accuracy']:.4f} |"
        for c, m in in_corpus.items()
    ]
    if held_out:
        lines += ["", "| held-out corpus | labels | clips | UA, own statistics | UA, training pool's |", "| --- | --- | --- | --- | --- |"]
        for corpus, subsets in held_out.items():
            for subset, entry in subsets.items():
                unadapted = entry.get("genser_unadapted", {}).get("unweighted_accuracy")
                lines.append(
                    f"| {corpus} | {subset}: {', '.join(entry['labels'])} | {entry['clips']} | "
                    f"{entry['genser']['unweighted_accuracy']:.4f} | {'-' if unadapted is None else f'{unadapted:.4f}'} |"
                )
    return "\n".join(lines)


def print_example_predictions(
    model_dir: str, clips, audio_column_name: str, labels: list[str], count: int, note: str, held_out=None
) -> None:
    """Classifies the first clip of each of the first `count` labels through Gen-SER's pipeline on the saved model and
    prints the predictions next to the true labels (and, when given, each clip's cross-validated prediction)."""
    classifier = pipeline(
        "audio-classification", model=model_dir, device="cpu", pipeline_class=GenSERAudioClassificationPipeline
    )
    label_ids = [row[0] if isinstance(row, list) else row for row in clips["labels"]]  # the first task's
    chosen = [label_ids.index(k) for k in range(len(labels)) if k in label_ids][:count]
    paths = clips.cast_column(audio_column_name, Audio(decode=False)).select(chosen)[audio_column_name]
    rate = classifier.feature_extractor.sampling_rate
    print(f"\nGen-SER's pipeline on {model_dir!r} on {len(chosen)} clips ({note}):")
    for index, raw in zip(chosen, paths):
        top = classifier({"array": decode_audio(clips[index][audio_column_name], rate), "sampling_rate": rate}, top_k=1)[0]
        line = f"  {Path(raw.get('path') or str(index)).name:<16} true {labels[label_ids[index]]:<10} predicted {top['label']:<10} (score {top['score']:.2f})"
        if held_out is not None:
            line += f"; its held-out fold predicted {labels[held_out[index]]}"
        print(line)


def main(argv: list[str] | None = None, callbacks: list[TrainerCallback] | None = None) -> dict:
    """Runs the job; `callbacks` are passed to the Trainer of the saved model (not to the cross-validation heads)."""
    started = time.perf_counter()
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    check_protocol(model_args, data_args, training_args)
    set_seed(training_args.seed)
    corpus, encoder_hub_id = resolve_sources(model_args, data_args)
    leave_one_speaker_out = data_args.evaluation_protocol == "leave_one_speaker_out"

    corpora = corpus if isinstance(corpus, dict) else None
    train, evaluation = load_training_data(data_args, training_args, corpora)
    if evaluation is None and not leave_one_speaker_out:
        train, evaluation = group_train_test_split(
            train, data_args.group_column_name or None, data_args.eval_fraction, training_args.seed
        )
    if len(train) == 0 or (evaluation is not None and len(evaluation) == 0):
        raise ValueError(f"Empty split: {len(train)} training and {len(evaluation or [])} evaluation examples.")
    if data_args.label_mapping:
        if corpora:
            raise ValueError("--label_mapping renames one dataset's labels; named corpora bring their own mapping.")
        mapping = parse_label_mapping(data_args.label_mapping)
        train, evaluation = (
            None if split is None else with_mapped_labels(split, data_args.label_column_name, mapping)
            for split in (train, evaluation)
        )
    labels = label_names(train, data_args.label_column_name)
    label_sets = task_label_sets(train, data_args.label_column_name, data_args.task_columns)
    tasks = label_sets or {data_args.label_column_name: labels}
    model, feature_extractor = build_model(model_args, labels, label_sets)
    if encoder_hub_id:  # the card's base_model names the Hub model, not this machine's path to a copy of it
        model.config.encoder_name_or_path = encoder_hub_id
    audio_column, rate = data_args.audio_column_name, feature_extractor.sampling_rate
    train, evaluation = (
        None if split is None
        else encode_labels(
            cast_audio(split, audio_column, rate), data_args.label_column_name, model.config.label2id, label_sets
        )
        for split in (train, evaluation)
    )
    logger.info("%d training and %d evaluation clips, labels %s", len(train), len(evaluation or []), labels)

    use_feature_cache = model_args.freeze_encoder and data_args.use_feature_cache
    domain_table = None
    if use_feature_cache:
        encoding_started = time.perf_counter()
        # Every epoch then trains the head alone; other processes wait for the main one and read its cache.
        with training_args.main_process_first(desc="encoding clips into the feature cache"):
            train_data, evaluation_data = (
                None if split is None
                else add_encoder_features(
                    split, model, feature_extractor, audio_column, data_args.feature_cache_dir, data_args.max_length_seconds
                )
                for split in (train, evaluation)
            )
        encoding_seconds = time.perf_counter() - encoding_started
        if model_args.domain_normalization:  # each clip with its domain's statistics; the model keeps the pool's
            train_data, domain_table = with_domains(train_data, domain_values(train_data, data_args.domain_column_name))
            store_pool_statistics(model, train_data)
        # Not the feature extractor's padding: the cache holds encoder outputs.
        collator = partial(collate_cached_features, domain_statistics=domain_table)
        train_dataset, eval_dataset = (None if split is None else head_inputs(split) for split in (train_data, evaluation_data))
    else:
        collator = AudioClassificationCollator(feature_extractor)
        train_dataset = train.with_transform(audio_transform(audio_column, rate, data_args.max_length_seconds, True))
        eval_dataset = evaluation.with_transform(audio_transform(audio_column, rate))

    metric = evaluate.load(METRICS_PATH)

    def compute_metrics(eval_prediction):
        predictions = np.argmax(eval_prediction.predictions, axis=-1)  # the first task's logits
        references = eval_prediction.label_ids.reshape(len(predictions), -1)[:, 0]
        scores = metric.compute(predictions=predictions, references=references, num_labels=len(labels))
        scores.pop("confusion_matrix")
        return scores

    training_args.remove_unused_columns = False  # the audio transforms read the raw audio column
    trainer = GenSERTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        compute_metrics=compute_metrics,
        processing_class=feature_extractor,
        callbacks=callbacks,
        sample_weights=corpus_balancing_weights(train),
    )
    held_out_predictions, corpus_metrics, extra_evaluation = None, None, None
    if leave_one_speaker_out:
        steps = model.config.num_inference_steps
        # Each corpus is also predicted within its own labels, as its users would with `candidate_labels`.
        corpus_subsets = (
            corpus_label_subsets(np.asarray(train_data[CORPUS_COLUMN]), np.asarray(train_data["labels"]))
            if corpora and not label_sets
            else None
        )
        fold_predictions, num_folds = cross_validated_predictions(
            model_args, data_args, training_args, train_data, labels, steps, label_sets, domain_table, corpus_subsets
        )
        held_out_predictions = fold_predictions[steps]
        all_scores = task_scores(metric, held_out_predictions, train["labels"], tasks)
        scores = next(iter(all_scores.values()))
        held_out_predictions = held_out_predictions.reshape(len(train), -1)[:, 0]
        metrics = {
            f"loso_{key}" if i == 0 else f"loso_{task}_{key}": value
            for i, (task, task_metrics) in enumerate(all_scores.items())
            for key, value in task_metrics.items()
            if key != "confusion_matrix"
        }
        trainer.save_metrics("loso", metrics)
        if data_args.num_folds:
            protocol = f"speaker-independent cross-validation, {num_folds} folds"
            folds_described = f"{num_folds} folds of whole speakers, dealt round-robin in sorted order"
        else:
            protocol = f"leave-one-speaker-out cross-validation, {num_folds} folds"
            folds_described = f"{num_folds} folds, one per speaker"
        evaluation_description = (
            f"Speaker-independent cross-validation by `training/run_genser.py`: {folds_described} "
            f"(column {data_args.group_column_name!r}). Each fold trains a fresh head with this model's configuration "
            f"on the other speakers' clips and predicts the held-out speaker's, at {steps} sampling step(s); the "
            f"figures pool the predictions of all folds ({len(train)} clips). The released model was then trained on "
            "every speaker: no figure here was measured on clips the scoring head was trained on."
        )
        if corpora:
            corpus_metrics, extra_evaluation = corpus_figures(
                model_args, data_args, training_args, train_data, labels, fold_predictions, protocol, steps,
                domain_table, metric,
            )
            print(f"\nEach corpus's figures:\n{extra_evaluation}")
        logger.info("Training the release model on all %d clips of %d folds", len(train), num_folds)
        trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        example_clips, example_note = train, "clips the released model was trained on; each also has a held-out prediction"
    else:
        trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        prediction = trainer.predict(eval_dataset, metric_key_prefix="eval")
        metrics = prediction.metrics
        trainer.save_metrics("eval", metrics)
        # Every task's predictions from the cached features (the Trainer keeps only the first task's logits).
        predicted = predict(model, evaluation_data, None) if label_sets else prediction.predictions.argmax(-1)
        all_scores = task_scores(metric, predicted, prediction.label_ids, tasks)
        scores = next(iter(all_scores.values()))
        protocol = "held-out speakers" if not data_args.eval_split_name else f"{data_args.eval_split_name} split"
        split = (
            f"the {data_args.eval_split_name!r} split"
            if data_args.eval_split_name
            else f"{len(evaluation)} clips of held-out speakers (column {data_args.group_column_name!r})"
        )
        evaluation_description = f"Measured by `training/run_genser.py` on {split}."
        example_clips, example_note = evaluation, "held-out clips"
    trainer.log_metrics(protocol, metrics)
    if trainer.is_world_process_zero():
        for i, (task, task_metrics) in enumerate(all_scores.items()):
            stem = Path(training_args.output_dir) / ("confusion_eval" if i == 0 else f"confusion_eval_{task}")
            save_confusion_matrix(task_metrics["confusion_matrix"], tasks[task], stem)
        write_model_card(
            training_args.output_dir,
            model.config,
            scores,
            dataset_name=list(corpora) if corpora else card_dataset_name(data_args.dataset_name),
            training_data_description=describe_training_data(data_args, train, labels, training_args.seed, corpus),
            training_data_limitations=training_data_limitations(data_args, corpus),
            evaluation_description=evaluation_description,
            evaluation_protocol=protocol,
            repo_id=training_args.hub_model_id,
            task_metrics=all_scores if label_sets else None,
            corpus_metrics=corpus_metrics,
            extra_evaluation=extra_evaluation,
        )
    # Saved last, so that with --push_to_hub the upload carries the metrics and the card.
    trainer.save_model()
    if not trainer.is_world_process_zero():
        return metrics

    # End to end: the saved directory works with the audio-classification pipeline.
    if data_args.num_example_predictions > 0:
        print_example_predictions(
            training_args.output_dir, example_clips, audio_column, labels, data_args.num_example_predictions,
            example_note, held_out_predictions,
        )
    for task, task_metrics in all_scores.items():
        print(
            f"\nGen-SER, {protocol}{f' ({task})' if label_sets else ''}: UA {task_metrics['unweighted_accuracy']:.4f}  "
            f"WA {task_metrics['accuracy']:.4f}  macro-F1 {task_metrics['macro_f1']:.4f}  "
            f"({sum(map(sum, task_metrics['confusion_matrix']))} clips)"
        )
    cache_note = f" (feature cache built or read in {encoding_seconds:.0f} s)" if use_feature_cache else ""
    print(f"wall time {time.perf_counter() - started:.0f} s{cache_note}; model saved to {training_args.output_dir}")
    return metrics


if __name__ == "__main__":
    main()
