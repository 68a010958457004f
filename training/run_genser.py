# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune Gen-SER on labelled audio with the transformers Trainer.

Modelled on transformers' examples/pytorch/audio-classification/run_audio_classification.py. Data comes from a Hub
dataset id, a local audiofolder directory or manifest, or named corpora (`training/sources.py`, read from `../shared`
when present, else from the Hub; several, `--dataset_name emodb,cremad`, as one); without one, the embedded
synthetic corpus is generated (offline).
Without an encoder, a small randomly initialised wav2vec2 encoder is used, so the whole job runs with no network.

With a frozen encoder (the default) every clip is encoded once into a feature cache (`feature_cache.py`) and each
epoch trains the head alone. Two evaluation protocols (`job_evaluation.py`):

- `held_out_speakers`: train on some speakers, evaluate on the others (`--eval_fraction`) or on `--eval_split_name`;
  the saved model is the one evaluated.
- `leave_one_speaker_out`: one fold per speaker, a fresh head per fold, predictions pooled over folds; then the
  release model is trained on every speaker and saved. Its model card reports the cross-validated figures.

    python -m training.run_genser training/configs/main_job.json        # the main job: the general model
    python -m training.run_genser training/configs/synthetic_demo.json  # offline demo on the synthetic corpus
    python -m training.run_genser --dataset_name path/to/audiofolder --encoder_name_or_path openai/whisper-tiny.en \
        --output_dir outputs/my-genser --learning_rate 1e-3 --num_train_epochs 30 --eval_strategy epoch

`genser-adapt` (`adapt`) goes on training a saved model on the user's labelled clips, with the adaptation's defaults:

    genser-adapt --model_name_or_path outputs/gen-ser --dataset_name my_clips --output_dir outputs/my-gen-ser \
        --label_mapping "wut=angry,freude=happy,trauer=sad,neutral=neutral,ekel=disgust" --new_labels
"""

import logging
import os
import sys
import time
from functools import partial
from pathlib import Path

import evaluate
import numpy as np
import transformers
from datasets import Audio
from transformers import HfArgumentParser, TrainerCallback, TrainingArguments, pipeline, set_seed

from modeling_genser import GenSERConfig
from modeling_genser.taxonomy_encoding import MISSING_LABEL
from pipelines import GenSERAudioClassificationPipeline, ship_pipeline
from training.arguments import (
    ADAPTATION_ARGUMENTS,
    DataTrainingArguments,
    ModelArguments,
    check_protocol,
    resolve_sources,
)
from training.data import (
    AudioClassificationCollator,
    BalancedTrainer,
    audio_transform,
    cast_audio,
    corpus_balancing_weights,
    decode_audio,
    dimension_values,
    dimensional_value_range,
    domain_values,
    encode_labels,
    encode_values,
    group_train_test_split,
    label_names,
    label_values,
    task_label_sets,
    with_mapped_labels,
)
from training.feature_cache import add_encoder_features, collate_cached_features, sorted_domain_names, with_domains
from training.folds import first_task, head_inputs, store_pool_statistics
from training.job_evaluation import Evaluation, Job, cross_validated_evaluation, held_out_evaluation
from training.model_construction import (
    build_model,
    continued_label_space,
    labels_outside,
    residual_domain_names,
)
from training.reports import (
    METRICS_PATH,
    card_dataset_name,
    confusion_labels,
    describe_adaptation,
    describe_training_data,
    dimension_scores,
    save_confusion_matrix,
    scalar_scores,
    summary,
    training_data_limitations,
    write_model_card,
)
from training.sources import parse_label_mapping
from training.training_data import load_training_data

logger = logging.getLogger(__name__)


class GenSERTrainer(BalancedTrainer):
    """`Trainer` whose Hub uploads keep the Gen-SER model card (`training/reports.py`) instead of replacing it, whose
    saved models carry the Gen-SER pipeline (`ship_pipeline`), and which draws several corpora balanced over corpus
    and class (`BalancedTrainer`)."""

    def create_model_card(self, *args, **kwargs):
        pass

    def _save(self, output_dir: str | None = None, state_dict=None):
        ship_pipeline(self.model.config, output_dir or self.args.output_dir)
        super()._save(output_dir, state_dict)


def print_example_predictions(
    model_dir: str, clips, audio_column_name: str, labels: list[str], count: int, note: str, held_out=None
) -> None:
    """Classifies the first clip of each of the first `count` labels (a dimensional model's: values of its first
    dimension, lowest first) through Gen-SER's pipeline on the saved model and prints the predictions
    next to the true labels (and, when given, each clip's cross-validated prediction)."""
    classifier = pipeline(
        "audio-classification", model=model_dir, device="cpu", pipeline_class=GenSERAudioClassificationPipeline
    )
    dimensional = classifier.model.is_dimensional
    targets = [row[0] if isinstance(row, list) else row for row in clips["labels"]]  # the first task's (dimension's)
    chosen = [targets.index(target) for target in sorted(set(targets) - {MISSING_LABEL})][:count]
    paths = clips.cast_column(audio_column_name, Audio(decode=False)).select(chosen)[audio_column_name]
    rate = classifier.feature_extractor.sampling_rate

    def named(value) -> str:
        return f"{labels[0]} {value:.2f}" if dimensional else labels[value]

    print(f"\nGen-SER's pipeline on {model_dir!r} on {len(chosen)} clips ({note}):")
    for index, raw in zip(chosen, paths):
        top = classifier({"array": decode_audio(clips[index][audio_column_name], rate), "sampling_rate": rate}, top_k=1)[0]
        predicted = named(top["score"]) if dimensional else f"{top['label']:<10} (score {top['score']:.2f})"
        line = f"  {Path(raw.get('path') or str(index)).name:<16} true {named(targets[index]):<10} predicted {predicted}"
        if held_out is not None:
            line += f"; its held-out fold predicted {named(held_out[index])}"
        print(line)


def parse_arguments(argv: list[str] | None) -> tuple[ModelArguments, DataTrainingArguments, TrainingArguments]:
    """The job's arguments: from the command line, or from one JSON file of them (e.g. the main job's)."""
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def relabelled(data_args: DataTrainingArguments, corpora: dict | None, train, evaluation) -> tuple:
    """The splits with their labels renamed by `--label_mapping`, every name of which must label some clip."""
    if corpora:
        raise ValueError("--label_mapping renames one dataset's labels; named corpora bring their own mapping.")
    mapping = parse_label_mapping(data_args.label_mapping)
    splits = [split for split in (train, evaluation) if split is not None]
    present = {label for split in splits for label in label_values(split, data_args.label_column_name)}
    if absent := sorted(set(mapping) - present):
        raise ValueError(
            f"--label_mapping names {absent}, which no clip is labelled with (the data's labels: "
            f"{sorted(present, key=str)}): correct or drop them."
        )
    return tuple(
        None if split is None else with_mapped_labels(split, data_args.label_column_name, mapping)
        for split in (train, evaluation)
    )


def load_clips(job: Job) -> None:
    """The training clips and the evaluation clips (none with leave_one_speaker_out): the evaluation split, or the
    held-out speakers of the training split."""
    data_args, training_args = job.data_args, job.training_args
    # The feature cache checks each clip as it encodes it; audio decoded on the fly is checked first.
    train, evaluation = load_training_data(data_args, training_args, job.corpora, check_audio=not job.use_feature_cache)
    if evaluation is None and not job.leave_one_speaker_out:
        train, evaluation = group_train_test_split(
            train, data_args.group_column_name or None, data_args.eval_fraction, training_args.seed
        )
    if len(train) == 0 or (evaluation is not None and len(evaluation) == 0):
        raise ValueError(f"Empty split: {len(train)} training and {len(evaluation or [])} evaluation examples.")
    if data_args.label_mapping:
        train, evaluation = relabelled(data_args, job.corpora, train, evaluation)
    job.train, job.evaluation = train, evaluation


def build_job_model(job: Job) -> None:
    """The label space (the data's labels and tasks, or going on from a saved model its own), the model, and the clips
    encoded for it (labels as ids, or a dimensional head's values)."""
    model_args, data_args, train = job.model_args, job.data_args, job.train
    dimensions = data_args.dimensions
    job.labels = dimensions or label_names(train, data_args.label_column_name)
    job.label_sets = task_label_sets(train, data_args.label_column_name, data_args.task_columns)
    if dimensions:
        job.value_range = dimensional_value_range(dimension_values(train, dimensions), data_args.value_range)
    job.dataset_name = card_dataset_name(data_args.dataset_name)
    if model_args.domain_residuals:  # the model's domains, and so the order of `with_domains`' table
        job.data_domains = sorted_domain_names(domain_values(train, data_args.domain_column_name, job.dataset_name))
        job.residual_domains = residual_domain_names(model_args, job.data_domains)
    job.model, job.feature_extractor = build_model(
        model_args, job.labels, job.label_sets, job.residual_domains, job.value_range
    )
    source = model_args.model_name_or_path
    job.saved_config = GenSERConfig.from_pretrained(source) if source else None
    job.data_labels, unlabelled_tasks = job.labels, []
    if source and not dimensions:  # a saved model keeps its labels and tasks
        job.labels, job.label_sets, unlabelled_tasks = continued_label_space(job.model.config, job.label_sets)
    job.tasks = job.label_sets or {data_args.label_column_name: job.labels}
    if job.encoder_hub_id:  # the card's base_model names the Hub model, not this machine's path to a copy of it
        job.model.config.encoder_name_or_path = job.encoder_hub_id
    audio_column, rate = data_args.audio_column_name, job.feature_extractor.sampling_rate
    job.train, job.evaluation = (
        None if split is None
        else encode_values(cast_audio(split, audio_column, rate), dimensions) if dimensions
        else encode_labels(
            cast_audio(split, audio_column, rate), data_args.label_column_name, job.model.config.label2id,
            job.label_sets, unlabelled_tasks,
        )
        for split in (job.train, job.evaluation)
    )
    logger.info("%d training and %d evaluation clips, labels %s", len(job.train), len(job.evaluation or []), job.labels)


def cache_features(job: Job) -> None:
    """Every clip encoded once into the feature cache, so that every epoch trains the head alone; with domain
    normalisation each clip gets its domain's statistics (`domain_table`) and the model keeps the training pool's."""
    data_args, model_args = job.data_args, job.model_args
    encoding_started = time.perf_counter()
    # Other processes wait for the main one and read its cache.
    with job.training_args.main_process_first(desc="encoding clips into the feature cache"):
        (job.train, job.train_data), (job.evaluation, job.evaluation_data) = (
            (None, None) if split is None
            else add_encoder_features(
                split, job.model, job.feature_extractor, data_args.audio_column_name, data_args.feature_cache_dir,
                data_args.max_length_seconds, unreadable_audio=data_args.unreadable_audio, return_clips=True,
                encoder_precision=data_args.encoder_precision,
            )
            for split in (job.train, job.evaluation)
        )
    job.encoding_seconds = time.perf_counter() - encoding_started
    if model_args.domain_normalization:
        domains = domain_values(job.train_data, data_args.domain_column_name, job.dataset_name)
        if job.residual_domains is not None and (lost := set(job.data_domains) - set(sorted_domain_names(domains))):
            raise ValueError(
                f"Domains {sorted(lost)} have no readable clip (--unreadable_audio skip left them all out): drop "
                "them from the data, or train without --domain_residuals."
            )
        job.train_data, job.domain_table, _ = with_domains(job.train_data, domains, job.model.config.domain_names)
        store_pool_statistics(job.model, job.train_data)


def new_trainer(job: Job, metric, callbacks: list[TrainerCallback] | None) -> GenSERTrainer:
    """The Trainer of the saved model: on the cached features (the head alone), or on the audio."""
    dimensions, labels = job.data_args.dimensions, job.labels
    if job.use_feature_cache:
        # Not the feature extractor's padding: the cache holds encoder outputs.
        collator = partial(collate_cached_features, domain_statistics=job.domain_table)
        train_dataset, eval_dataset = (
            None if split is None else head_inputs(split) for split in (job.train_data, job.evaluation_data)
        )
    else:
        audio_column, rate = job.data_args.audio_column_name, job.feature_extractor.sampling_rate
        collator = AudioClassificationCollator(job.feature_extractor)
        train_dataset = job.train.with_transform(
            audio_transform(audio_column, rate, job.data_args.max_length_seconds, True)
        )
        eval_dataset = job.evaluation.with_transform(audio_transform(audio_column, rate))

    def compute_metrics(eval_prediction):
        predictions = eval_prediction.predictions
        references = first_task(eval_prediction.label_ids)
        if dimensions:  # the first dimension's values
            (scores,) = dimension_scores(predictions[:, 0], references, dimensions[:1]).values()
        else:  # the first task's logits, on the clips that have its label
            rows = references != MISSING_LABEL
            scores = metric.compute(predictions=predictions[rows].argmax(-1), references=references[rows], num_labels=len(labels))
        return scalar_scores(scores)

    job.training_args.remove_unused_columns = False  # the audio transforms read the raw audio column
    return GenSERTrainer(
        model=job.model,
        args=job.training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        compute_metrics=compute_metrics,
        processing_class=job.feature_extractor,
        callbacks=callbacks,
        sample_weights=corpus_balancing_weights(job.train),
    )


def write_card_and_confusions(job: Job, evaluation: Evaluation) -> None:
    """The model card (`reports.write_model_card`) and every task's confusion matrix, in the output directory."""
    data_args, training_args, source = job.data_args, job.training_args, job.model_args.model_name_or_path
    training_data_description = describe_training_data(
        data_args, job.train, job.data_labels, training_args.seed, job.corpus
    )
    if source:
        new_domains = [name for name in job.residual_domains or [] if name not in (job.saved_config.domain_names or [])]
        adaptation = describe_adaptation(
            source, job.saved_config, labels_outside(job.saved_config, job.data_labels), new_domains
        )
        training_data_description = f"{adaptation} {training_data_description}"
    for i, (task, task_metrics) in enumerate(evaluation.all_scores.items()):
        stem = Path(training_args.output_dir) / ("confusion_eval" if i == 0 else f"confusion_eval_{task}")
        if "confusion_matrix" in task_metrics:  # a dimension's only where its values are levels
            names = confusion_labels(task_metrics, job.tasks.get(task))
            save_confusion_matrix(task_metrics["confusion_matrix"], names, stem)
    write_model_card(
        training_args.output_dir,
        job.model.config,
        next(iter(evaluation.all_scores.values())),
        dataset_name=list(job.corpora) if job.corpora else job.dataset_name,
        training_data_description=training_data_description,
        training_data_limitations=training_data_limitations(data_args, job.corpus),
        evaluation_description=evaluation.description,
        evaluation_protocol=evaluation.protocol,
        repo_id=training_args.hub_model_id,
        task_metrics=evaluation.all_scores if job.label_sets or data_args.dimensions else None,
        corpus_metrics=evaluation.corpus_metrics,
        extra_evaluation=evaluation.extra_evaluation,
    )


def print_results(job: Job, evaluation: Evaluation, started: float) -> None:
    """End to end, the saved directory through the audio-classification pipeline on a few clips; then every task's
    figures and the wall time."""
    output_dir, clips = job.training_args.output_dir, evaluation.example_clips
    if job.data_args.num_example_predictions > 0:
        print_example_predictions(
            output_dir, clips, job.data_args.audio_column_name, job.labels, job.data_args.num_example_predictions,
            evaluation.example_note, evaluation.held_out_predictions,
        )  # fmt: skip
    references = np.asarray(clips["labels"]).reshape(len(clips), -1)
    multiple = job.label_sets or job.data_args.dimensions
    for task, task_metrics in evaluation.all_scores.items():
        # A multi-task model's task is scored on the clips that have its label.
        scored = len(clips)
        if job.label_sets:
            scored = int((references[:, list(job.tasks).index(task)] != MISSING_LABEL).sum())
        named = f" ({task})" if multiple else ""
        print(f"\nGen-SER, {evaluation.protocol}{named}: {summary(task_metrics)}  ({scored} clips)")
    cache_note = f" (feature cache built or read in {job.encoding_seconds:.0f} s)" if job.use_feature_cache else ""
    print(f"wall time {time.perf_counter() - started:.0f} s{cache_note}; model saved to {output_dir}")


def main(argv: list[str] | None = None, callbacks: list[TrainerCallback] | None = None) -> dict:
    """Runs the job; `callbacks` are passed to the Trainer of the saved model (not to the cross-validation heads)."""
    started = time.perf_counter()
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    check_protocol(model_args, data_args, training_args)
    set_seed(training_args.seed)
    job = Job(*resolve_sources(model_args, data_args), training_args)
    load_clips(job)
    build_job_model(job)
    if job.use_feature_cache:
        cache_features(job)
    metric = evaluate.load(METRICS_PATH)
    trainer = new_trainer(job, metric, callbacks)
    if job.leave_one_speaker_out:
        evaluation = cross_validated_evaluation(job, trainer, metric)
    else:
        evaluation = held_out_evaluation(job, trainer, metric)
    # train_results.json: its train_runtime is benchmark_cache's figure.
    trainer.save_metrics("train", evaluation.train_metrics)
    trainer.log_metrics(evaluation.protocol, evaluation.metrics)
    if trainer.is_world_process_zero():
        write_card_and_confusions(job, evaluation)
    # Saved last, so that with --push_to_hub the upload carries the metrics and the card.
    trainer.save_model()
    if trainer.is_world_process_zero():
        print_results(job, evaluation, started)
    return evaluation.metrics


def adapt(argv: list[str] | None = None) -> dict:
    """`genser-adapt`: adapts a saved Gen-SER model (`--model_name_or_path`, e.g. the release) to the user's labelled
    clips (`--dataset_name`: an audiofolder, a CSV manifest or a `datasets` id): `main` with `ADAPTATION_ARGUMENTS`,
    which any flag given overrides."""
    argv = sys.argv[1:] if argv is None else argv
    parser = HfArgumentParser(ModelArguments)
    model_args, _ = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if not model_args.model_name_or_path:
        raise ValueError(
            "genser-adapt goes on training a saved Gen-SER model: name it with --model_name_or_path (e.g. "
            "outputs/gen-ser, or its Hub id)."
        )
    defaults = [f"--{name}={value}" for name, value in ADAPTATION_ARGUMENTS.items()]
    return main([*defaults, *argv])


def adapt_command() -> None:
    """The `genser-adapt` console script: `adapt`, whose metrics are in the output folder (a console script's exit
    status is what its function returns)."""
    adapt()


if __name__ == "__main__":
    main()
