# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune Gen-SER on labelled audio with the transformers Trainer.

Modelled on transformers' examples/pytorch/audio-classification/run_audio_classification.py. Data comes from a Hub
dataset id, a local audiofolder directory or manifest, or named corpora (`training/sources.py`, read from `../shared`
when present, else from the Hub; several, `--dataset_name emodb,cremad`, as one); without one, the embedded
synthetic corpus is generated (offline).
Without an encoder, a small randomly initialised wav2vec2 encoder is used, so the whole job runs with no network.

With a frozen encoder (the default) every clip is encoded once into a feature cache (`feature_cache.py`) and each
epoch trains the head alone. Two evaluation protocols:

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

import copy
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
    AROUSAL_DERIVED_COLUMN,
    CORPUS_COLUMN,
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
    speaker_groups,
    task_label_sets,
    with_mapped_labels,
)
from training.feature_cache import add_encoder_features, collate_cached_features, sorted_domain_names, with_domains
from training.folds import (
    chosen_budget,
    corpus_label_subsets,
    cross_validate_head,
    first_task,
    head_inputs,
    held_out_corpus_scores,
    held_out_label_subsets,
    predict,
    store_pool_statistics,
    task_logits,
)
from training.model_construction import (
    build_model,
    continued_label_space,
    labels_outside,
    new_genser_head,
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
    target_scores,
    training_data_limitations,
    write_model_card,
)
from training.sources import AROUSAL_COLUMN, parse_label_mapping
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
    domain_names=None,
    value_range=None,
) -> tuple[dict, int]:
    """Every clip's prediction by a fresh Gen-SER head trained on the other speakers' cached features, at `steps`
    sampling steps, keyed `steps` (one class index per task with `label_sets`; a dimensional head's values with
    `value_range`) and, within each of `label_subsets` (name -> label ids), `(steps, name)`; and the number of folds."""
    if data_args.group_column_name:
        groups = speaker_groups(features, data_args.group_column_name)
    else:  # the data names no speaker (`--group_column_name ""`): folds of clips
        groups = np.arange(len(features)).astype(str)
    predictions, folds = cross_validate_head(
        partial(new_genser_head, model_args, labels, label_sets, domain_names, value_range), features, groups,
        training_args, [steps], data_args.num_folds, data_args.parallel_folds, domain_table=domain_table,
        label_subsets=None if label_subsets is None else lambda held_out: label_subsets,
    )
    return predictions, len(folds)


def adaptation_gain(
    metric, model, features, held_out_predictions, source: str, saved_config, domain_table
) -> tuple[float, float]:
    """Going on from the saved model `source` (whose config is `saved_config`; `model`, not yet trained further): the
    first task's UA on the clips of the labels it had, zero-shot (the data's statistics, predictions within its
    labels) and cross-validated after adaptation (`held_out_predictions`, among every label). An adaptation that loses
    against its start is a warning."""
    saved = len(next(iter(saved_config.tasks.values())))
    targets = first_task(features["labels"])
    rows = (targets != MISSING_LABEL) & (targets < saved)
    clips = features.select(np.flatnonzero(rows))
    logits = next(iter(task_logits(model, clips, None, domain_table=domain_table).values()))
    before, after = (
        metric.compute(predictions=predicted, references=targets[rows], num_labels=len(model.config.id2label))
        for predicted in (logits[:, :saved].argmax(-1), held_out_predictions[rows])
    )
    before, after = before["unweighted_accuracy"], after["unweighted_accuracy"]
    print(f"\nOn the clips of {source}'s labels: UA {before:.4f} before adaptation, {after:.4f} after (folds)")
    if after < before:
        logger.warning(
            "Adaptation lost against %s on your held-out clips (UA %.4f after, %.4f before): label more clips (more "
            "speakers), or keep %s and classify your collection with its statistics (genser-annotate --adapt).",
            source, after, before, source,
        )
    return before, after


def leave_one_corpus_out(
    model_args: ModelArguments,
    data_args: DataTrainingArguments,
    training_args,
    features,
    labels,
    steps,
    domain_table,
    metric,
    domain_names=None,
    label_sets=None,
) -> dict:
    """Each corpus scored zero-shot by a Gen-SER head trained on the others, on the labels it shares with them and
    on the core emotions among those (`folds.held_out_corpus_scores`; with domain normalisation, with its own
    statistics and, as `genser_unadapted`, with the training pool's). With `domain_names` (`--domain_residuals`) the
    held-out corpus's residual weights get no training clip and stay zero: it is read with the shared weights. A
    multi-task head (`label_sets`) is scored on its first task, the emotions; an arousal corpus, which has none, is
    never held out."""
    corpora = np.asarray(features[CORPUS_COLUMN])
    targets = first_task(features["labels"])
    predictions, folds = cross_validate_head(
        partial(new_genser_head, model_args, labels, label_sets, domain_names), features, corpora, training_args,
        [steps], parallel_folds=data_args.parallel_folds, label_subsets=partial(held_out_label_subsets, targets, labels),
        domain_table=domain_table, always_trained=targets == MISSING_LABEL,
    )
    return held_out_corpus_scores(metric, predictions, targets, labels, folds, {steps: "genser"})


def corpus_figures(
    model_args, data_args, training_args, features, labels, predictions, protocol, steps, domain_table, metric,
    domain_names=None, label_sets=None,
) -> tuple[dict, str]:
    """Each corpus's figures for the model card of a model of several corpora: its own clips' cross-validated
    predictions (`cross_validated_predictions` with `folds.corpus_label_subsets`), made within its labels and among
    all of them, and, with `--leave_one_corpus_out`, its zero-shot scores; a multi-task model's (`label_sets`)
    further tasks on each corpus's clips too, the arousal task marked rated (an arousal corpus) or derived (from the
    emotions). Returns `{corpus: {task: {split: metrics}}}` and their markdown tables."""
    corpora, targets = np.asarray(features[CORPUS_COLUMN]), np.asarray(features["labels"]).reshape(len(features), -1)
    classes = predictions[steps].reshape(len(features), -1)
    first = next(iter(label_sets)) if label_sets else data_args.label_column_name
    further_tasks = list(label_sets.items())[1:] if label_sets else []
    derived = np.asarray(features[AROUSAL_DERIVED_COLUMN]) if AROUSAL_DERIVED_COLUMN in features.column_names else None
    in_corpus, corpus_metrics, task_rows = {}, {}, []
    for corpus in sorted(set(features[CORPUS_COLUMN])):  # Python strings, for the card's YAML
        rows = corpora == corpus
        corpus_metrics[corpus] = {}
        if (steps, corpus) in predictions:  # a corpus with emotion labels (an arousal corpus has none)
            figures = {}
            for name, predicted in (("its labels", predictions[(steps, corpus)]), ("all labels", classes[:, 0])):
                computed = metric.compute(predictions=predicted[rows], references=targets[rows, 0], num_labels=len(labels))
                figures[name] = scalar_scores(computed)
            in_corpus[corpus] = {"clips": int(rows.sum()), **figures}
            corpus_metrics[corpus][first] = {f"{protocol}, {name}": scores for name, scores in figures.items()}
        for t, (task, task_labels) in enumerate(further_tasks, start=1):
            computed = metric.compute(predictions=classes[rows, t], references=targets[rows, t], num_labels=len(task_labels))
            named = task
            if task == AROUSAL_COLUMN and derived is not None:
                named = f"{task} ({'derived' if derived[rows].all() else 'rated'})"
            scores = scalar_scores(computed)
            corpus_metrics[corpus][task] = {f"{protocol}, {named}": scores}
            task_rows.append(f"| {corpus} | {named} | {int(rows.sum())} | {scores['unweighted_accuracy']:.4f} |")
    held_out = None
    if data_args.leave_one_corpus_out:
        held_out = leave_one_corpus_out(
            model_args, data_args, training_args, features, labels, steps, domain_table, metric, domain_names, label_sets
        )
    for corpus, subsets in (held_out or {}).items():
        corpus = str(corpus)
        for subset, entry in subsets.items():
            for variant, statistics in (("genser", "own statistics"), ("genser_unadapted", "training pool's statistics")):
                if variant in entry:
                    split = f"leave-one-corpus-out, {subset} labels, {statistics}"
                    corpus_metrics[corpus].setdefault(first, {})[split] = entry[variant]
    return corpus_metrics, corpus_tables(in_corpus, held_out, task_rows)


def corpus_tables(in_corpus: dict, held_out: dict | None, task_rows: list[str]) -> str:
    """Markdown tables of each corpus's in-corpus figures, its further tasks' (`task_rows`) and, when measured, its
    zero-shot (held-out) ones."""
    lines = [
        "| corpus | clips | in-corpus UA, its labels | WA, its labels | UA, all labels |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {c} | {m['clips']} | {m['its labels']['unweighted_accuracy']:.4f} | {m['its labels']['accuracy']:.4f} | "
        f"{m['all labels']['unweighted_accuracy']:.4f} |"
        for c, m in in_corpus.items()
    ]
    if task_rows:
        lines += ["", "| corpus | task | clips | in-corpus UA |", "| --- | --- | --- | --- |", *task_rows]
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
    model_args, data_args, corpus, encoder_hub_id = resolve_sources(model_args, data_args)
    leave_one_speaker_out = data_args.evaluation_protocol == "leave_one_speaker_out"

    corpora = corpus if isinstance(corpus, dict) else None
    use_feature_cache = model_args.freeze_encoder and data_args.use_feature_cache
    # The feature cache checks each clip as it encodes it; audio decoded on the fly is checked first.
    train, evaluation = load_training_data(data_args, training_args, corpora, check_audio=not use_feature_cache)
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
        splits = [split for split in (train, evaluation) if split is not None]
        present = {label for split in splits for label in label_values(split, data_args.label_column_name)}
        if absent := sorted(set(mapping) - present):
            raise ValueError(
                f"--label_mapping names {absent}, which no clip is labelled with (the data's labels: "
                f"{sorted(present, key=str)}): correct or drop them."
            )
        train, evaluation = (
            None if split is None else with_mapped_labels(split, data_args.label_column_name, mapping)
            for split in (train, evaluation)
        )
    dimensions, value_range = data_args.dimensions, None
    labels = dimensions or label_names(train, data_args.label_column_name)
    label_sets = task_label_sets(train, data_args.label_column_name, data_args.task_columns)
    if dimensions:
        value_range = dimensional_value_range(dimension_values(train, dimensions), data_args.value_range)
    dataset_name = card_dataset_name(data_args.dataset_name)
    residual_domains = None
    if model_args.domain_residuals:  # the model's domains, and so the order of `with_domains`' table
        data_domains = sorted_domain_names(domain_values(train, data_args.domain_column_name, dataset_name))
        residual_domains = residual_domain_names(model_args, data_domains)
    model, feature_extractor = build_model(model_args, labels, label_sets, residual_domains, value_range)
    source = model_args.model_name_or_path
    saved_config = GenSERConfig.from_pretrained(source) if source else None  # the model going on, as it was saved
    data_labels, unlabelled_tasks = labels, []
    if model_args.model_name_or_path and not dimensions:  # a saved model keeps its labels and tasks
        labels, label_sets, unlabelled_tasks = continued_label_space(model.config, label_sets)
    tasks = label_sets or {data_args.label_column_name: labels}
    if encoder_hub_id:  # the card's base_model names the Hub model, not this machine's path to a copy of it
        model.config.encoder_name_or_path = encoder_hub_id
    audio_column, rate = data_args.audio_column_name, feature_extractor.sampling_rate
    train, evaluation = (
        None if split is None
        else encode_values(cast_audio(split, audio_column, rate), dimensions) if dimensions
        else encode_labels(
            cast_audio(split, audio_column, rate), data_args.label_column_name, model.config.label2id, label_sets,
            unlabelled_tasks,
        )
        for split in (train, evaluation)
    )
    logger.info("%d training and %d evaluation clips, labels %s", len(train), len(evaluation or []), labels)

    domain_table = None
    if use_feature_cache:
        encoding_started = time.perf_counter()
        # Every epoch then trains the head alone; other processes wait for the main one and read its cache.
        with training_args.main_process_first(desc="encoding clips into the feature cache"):
            (train, train_data), (evaluation, evaluation_data) = (
                (None, None) if split is None
                else add_encoder_features(
                    split, model, feature_extractor, audio_column, data_args.feature_cache_dir,
                    data_args.max_length_seconds, unreadable_audio=data_args.unreadable_audio, return_clips=True,
                    encoder_precision=data_args.encoder_precision,
                )
                for split in (train, evaluation)
            )
        encoding_seconds = time.perf_counter() - encoding_started
        if model_args.domain_normalization:  # each clip with its domain's statistics; the model keeps the pool's
            domains = domain_values(train_data, data_args.domain_column_name, dataset_name)
            if residual_domains is not None and (lost := set(data_domains) - set(sorted_domain_names(domains))):
                raise ValueError(
                    f"Domains {sorted(lost)} have no readable clip (--unreadable_audio skip left them all out): drop "
                    "them from the data, or train without --domain_residuals."
                )
            train_data, domain_table, _ = with_domains(train_data, domains, model.config.domain_names)
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
        predictions = eval_prediction.predictions
        references = first_task(eval_prediction.label_ids)
        if dimensions:  # the first dimension's values
            (scores,) = dimension_scores(predictions[:, 0], references, dimensions[:1]).values()
        else:  # the first task's logits, on the clips that have its label
            rows = references != MISSING_LABEL
            scores = metric.compute(predictions=predictions[rows].argmax(-1), references=references[rows], num_labels=len(labels))
        return scalar_scores(scores)

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
        # Each corpus is also predicted within its own (first task's) labels, as its users would with
        # `candidate_labels`; an arousal corpus has no emotion labels to be scored on.
        corpus_subsets = None
        if corpora:
            emotions = first_task(train_data["labels"])
            scored = emotions != MISSING_LABEL
            corpus_subsets = corpus_label_subsets(np.asarray(train_data[CORPUS_COLUMN])[scored], emotions[scored])
        budgets = {}  # step budget -> (fold predictions, number of folds, every task's scores)
        references = np.asarray(train["labels"])
        for budget in data_args.step_budgets or [training_args.max_steps]:
            budget_args = copy.copy(training_args)
            budget_args.max_steps = budget
            fold_predictions, num_folds = cross_validated_predictions(
                model_args, data_args, budget_args, train_data, labels, steps, label_sets, domain_table,
                corpus_subsets, residual_domains, value_range,
            )  # fmt: skip
            budget_scores = target_scores(metric, fold_predictions[steps], references, tasks, dimensions)
            budgets[budget] = fold_predictions, num_folds, budget_scores
        chosen = chosen_budget({budget: entry[2] for budget, entry in budgets.items()})
        training_args.max_steps = chosen  # the Trainer's own arguments: the saved model trains with the chosen budget
        fold_predictions, num_folds, all_scores = budgets[chosen]
        held_out_predictions = fold_predictions[steps]
        scores = next(iter(all_scores.values()))
        held_out_predictions = first_task(held_out_predictions)
        metrics = {
            f"loso_{key}" if i == 0 else f"loso_{task}_{key}": value
            for i, (task, task_metrics) in enumerate(all_scores.items())
            for key, value in scalar_scores(task_metrics).items()
        }
        gain = None
        if source and not dimensions:
            gain = adaptation_gain(metric, model, train_data, held_out_predictions, source, saved_config, domain_table)
            for name, value in zip(("before", "after"), gain):
                metrics[f"loso_{name}_adaptation_unweighted_accuracy"] = value
        trainer.save_metrics("loso", metrics)
        if not data_args.group_column_name:
            protocol = f"cross-validation over clips, {num_folds} folds"
            folds_described = (
                f"{num_folds} folds of clips, dealt round-robin (the data names no speaker, so a speaker's clips may "
                "be on both sides of a fold and the figures overstate what the model does on new speakers)"
            )
        elif data_args.num_folds:
            protocol = f"speaker-independent cross-validation, {num_folds} folds"
            folds_described = (
                f"{num_folds} folds of whole speakers, dealt round-robin in sorted order (column "
                f"{data_args.group_column_name!r})"
            )
        else:
            protocol = f"leave-one-speaker-out cross-validation, {num_folds} folds"
            folds_described = f"{num_folds} folds, one per speaker (column {data_args.group_column_name!r})"
        evaluation_description = (
            f"Cross-validation by `training/run_genser.py`: {folds_described}. Each fold trains a fresh head with this "
            f"model's configuration on the other folds' clips and predicts its own, at {steps} sampling step(s); the "
            f"figures pool the predictions of all folds ({len(train)} clips). The released model was then trained on "
            "every clip: no figure here was measured on clips the scoring head was trained on."
        )
        if len(budgets) > 1:
            tried = ", ".join(
                f"{budget} steps UA {next(iter(entry[2].values()))['unweighted_accuracy']:.4f}"
                for budget, entry in budgets.items()
            )
            print(f"\nStep budgets on the folds: {tried}; the saved model trains with {chosen} steps")
            evaluation_description += (
                f" Its step budget, {chosen}, was chosen among --max_steps_candidates by these folds ({tried}), so "
                "they flatter it slightly."
            )
        if gain:
            evaluation_description += (
                f" On the clips of the labels `{source}` had, it scored UA {gain[0]:.4f} before "
                f"this training (with the data's statistics) and {gain[1]:.4f} after (cross-validated)."
            )
        if corpora:
            corpus_metrics, extra_evaluation = corpus_figures(
                model_args, data_args, training_args, train_data, labels, fold_predictions, protocol, steps,
                domain_table, metric, residual_domains, label_sets,
            )
            print(f"\nEach corpus's figures:\n{extra_evaluation}")
        logger.info("Training the release model on all %d clips of %d folds", len(train), num_folds)
        train_metrics = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint).metrics
        example_clips, example_note = train, "clips the released model was trained on; each also has a held-out prediction"
    else:
        train_metrics = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint).metrics
        prediction = trainer.predict(eval_dataset, metric_key_prefix="eval")
        metrics = prediction.metrics
        trainer.save_metrics("eval", metrics)
        # Every task's predictions from the cached features (the Trainer keeps only the first task's logits).
        if label_sets:
            predicted = predict(model, evaluation_data, None)
        else:  # a dimensional model's values, or the logits' classes
            predicted = prediction.predictions if dimensions else prediction.predictions.argmax(-1)
        all_scores = target_scores(metric, predicted, prediction.label_ids, tasks, dimensions)
        scores = next(iter(all_scores.values()))
        protocol = "held-out speakers" if not data_args.eval_split_name else f"{data_args.eval_split_name} split"
        split = (
            f"the {data_args.eval_split_name!r} split"
            if data_args.eval_split_name
            else f"{len(evaluation)} clips of held-out speakers (column {data_args.group_column_name!r})"
        )
        evaluation_description = f"Measured by `training/run_genser.py` on {split}."
        example_clips, example_note = evaluation, "held-out clips"
    trainer.save_metrics("train", train_metrics)  # train_results.json: its train_runtime is benchmark_cache's figure
    trainer.log_metrics(protocol, metrics)
    training_data_description = describe_training_data(data_args, train, data_labels, training_args.seed, corpus)
    if source:
        new_domains = [name for name in residual_domains or [] if name not in (saved_config.domain_names or [])]
        adaptation = describe_adaptation(source, saved_config, labels_outside(saved_config, data_labels), new_domains)
        training_data_description = f"{adaptation} {training_data_description}"
    if trainer.is_world_process_zero():
        for i, (task, task_metrics) in enumerate(all_scores.items()):
            stem = Path(training_args.output_dir) / ("confusion_eval" if i == 0 else f"confusion_eval_{task}")
            if "confusion_matrix" in task_metrics:  # a dimension's only where its values are levels
                names = confusion_labels(task_metrics, tasks.get(task))
                save_confusion_matrix(task_metrics["confusion_matrix"], names, stem)
        write_model_card(
            training_args.output_dir,
            model.config,
            scores,
            dataset_name=list(corpora) if corpora else dataset_name,
            training_data_description=training_data_description,
            training_data_limitations=training_data_limitations(data_args, corpus),
            evaluation_description=evaluation_description,
            evaluation_protocol=protocol,
            repo_id=training_args.hub_model_id,
            task_metrics=all_scores if label_sets or dimensions else None,
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
    references = np.asarray(example_clips["labels"]).reshape(len(example_clips), -1)
    for task, task_metrics in all_scores.items():
        named = f" ({task})" if label_sets or dimensions else ""
        # A multi-task model's task is scored on the clips that have its label.
        clips = len(example_clips)
        if label_sets:
            clips = int((references[:, list(tasks).index(task)] != MISSING_LABEL).sum())
        print(f"\nGen-SER, {protocol}{named}: {summary(task_metrics)}  ({clips} clips)")
    cache_note = f" (feature cache built or read in {encoding_seconds:.0f} s)" if use_feature_cache else ""
    print(f"wall time {time.perf_counter() - started:.0f} s{cache_note}; model saved to {training_args.output_dir}")
    return metrics


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
