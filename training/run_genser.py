# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune Gen-SER on labelled audio with the transformers Trainer.

Modelled on transformers' examples/pytorch/audio-classification/run_audio_classification.py. Data comes from a Hub
dataset id or a local audiofolder directory; without one, the embedded synthetic corpus is generated (offline).
Without an encoder, a small randomly initialised wav2vec2 encoder is used, so the whole job runs with no network.

    python -m training.run_genser training/configs/synthetic_demo.json
    python -m training.run_genser --dataset_name path/to/audiofolder --encoder_name_or_path openai/whisper-tiny.en \
        --output_dir outputs/my-genser --learning_rate 1e-3 --num_train_epochs 30 --eval_strategy epoch
"""

import dataclasses
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import evaluate
import numpy as np
import transformers
from transformers import (
    AutoFeatureExtractor,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    pipeline,
    set_seed,
)

from modeling_genser import GenSERConfig, GenSERForAudioClassification
from training.data import (
    AudioClassificationCollator,
    audio_transform,
    cast_audio,
    drop_unreadable_audio,
    encode_labels,
    group_train_test_split,
    label_names,
    load_audio_dataset,
)
from training.reports import save_confusion_matrix, write_model_card
from training.synthetic_corpus import generate_corpus

logger = logging.getLogger(__name__)
METRICS_PATH = str(Path(__file__).parent / "metrics" / "ser_metrics")
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
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "GenSERConfig fields to override, e.g. 'encoding_dim=128,taxonomy_index_scale=1000'."},
    )


@dataclass
class DataTrainingArguments:
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub dataset id or local audiofolder directory. Default: generate the synthetic corpus."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of the Hub dataset."})
    train_split_name: str = field(default="train")
    eval_split_name: str | None = field(
        default=None, metadata={"help": "Evaluation split; if absent, speakers are held out of the training split."}
    )
    audio_column_name: str = field(default="audio")
    label_column_name: str = field(default="label")
    group_column_name: str | None = field(
        default="speaker", metadata={"help": "Speaker column for a speaker-independent split (empty: random split)."}
    )
    eval_fraction: float = field(default=0.2, metadata={"help": "Fraction of speakers held out for evaluation."})
    max_length_seconds: float = field(default=20.0, metadata={"help": "Training clips are randomly cropped to this."})
    unreadable_audio: str = field(
        default="raise", metadata={"help": "raise: stop on an unreadable clip; skip: leave it out with a warning."}
    )


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


def build_model(model_args: ModelArguments, labels: list[str]):
    """The Gen-SER model and its feature extractor, with the label set of the data."""
    id2label = dict(enumerate(labels))
    overrides = parse_config_overrides(model_args.config_overrides)
    overrides["freeze_encoder"] = model_args.freeze_encoder
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


class GenSERTrainer(Trainer):
    """`Trainer` whose Hub uploads keep the Gen-SER model card (`training/reports.py`) instead of replacing it."""

    def create_model_card(self, *args, **kwargs):
        pass


def card_dataset_name(dataset_name: str | None) -> str:
    """The `datasets` entry of the model card: a Hub id as given, a local folder or manifest by its name."""
    if dataset_name is None:
        return SYNTHETIC_DATASET_NAME
    return Path(dataset_name).stem if os.path.exists(dataset_name) else dataset_name


def describe_training_data(data_args: DataTrainingArguments, train, labels: list[str], seed: int) -> str:
    """The model card's "Training data" paragraph."""
    group = data_args.group_column_name
    speakers = f" from {len(set(train[group]))} speakers" if group and group in train.column_names else ""
    clips = f"{len(train)} clips{speakers}, labels {', '.join(labels)}"
    if data_args.dataset_name:
        return f"{clips}, from `{data_args.dataset_name}` (split {data_args.train_split_name!r})."
    return (
        f"{clips}, from the project's synthetic corpus (`training/synthetic_corpus.py`, seed {seed}). It is not "
        "speech: source-filter vowel strings with no words and no language, whose prosody (pitch level and range, "
        "tempo, loudness, voice quality) changes with the emotion the way acted speech tends to."
    )


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    set_seed(training_args.seed)

    dataset_name = data_args.dataset_name
    if dataset_name is None:
        dataset_name = str(Path(training_args.output_dir) / "synthetic_corpus")
        if not (Path(dataset_name) / "metadata.csv").exists():
            logger.info("No dataset given: generating the synthetic corpus in %s", dataset_name)
            generate_corpus(dataset_name, seed=training_args.seed)
    dataset = load_audio_dataset(dataset_name, data_args.dataset_config_name, data_args.audio_column_name)
    if data_args.train_split_name not in dataset:
        raise ValueError(f"Split {data_args.train_split_name!r} not found; available: {list(dataset)}.")
    train = drop_unreadable_audio(dataset[data_args.train_split_name], data_args.audio_column_name, data_args.unreadable_audio)
    if data_args.eval_split_name:
        if data_args.eval_split_name not in dataset:
            raise ValueError(f"Split {data_args.eval_split_name!r} not found; available: {list(dataset)}.")
        evaluation = drop_unreadable_audio(
            dataset[data_args.eval_split_name], data_args.audio_column_name, data_args.unreadable_audio
        )
    else:
        train, evaluation = group_train_test_split(
            train, data_args.group_column_name or None, data_args.eval_fraction, training_args.seed
        )
    if len(train) == 0 or len(evaluation) == 0:
        raise ValueError(f"Empty split: {len(train)} training and {len(evaluation)} evaluation examples.")

    labels = label_names(train, data_args.label_column_name)
    model, feature_extractor = build_model(model_args, labels)
    train, evaluation = (
        encode_labels(cast_audio(split, data_args.audio_column_name, feature_extractor.sampling_rate), data_args.label_column_name, model.config.label2id)
        for split in (train, evaluation)
    )
    logger.info("%d training and %d evaluation clips, labels %s", len(train), len(evaluation), labels)

    metric = evaluate.load(METRICS_PATH)

    def compute_metrics(eval_prediction):
        predictions = np.argmax(eval_prediction.predictions, axis=-1)
        scores = metric.compute(predictions=predictions, references=eval_prediction.label_ids, num_labels=len(labels))
        scores.pop("confusion_matrix")
        return scores

    rate, audio_column = feature_extractor.sampling_rate, data_args.audio_column_name
    training_args.remove_unused_columns = False  # the transforms read the raw audio column
    trainer = GenSERTrainer(
        model=model,
        args=training_args,
        train_dataset=train.with_transform(audio_transform(audio_column, rate, data_args.max_length_seconds, True)),
        eval_dataset=evaluation.with_transform(audio_transform(audio_column, rate)),
        data_collator=AudioClassificationCollator(feature_extractor),
        compute_metrics=compute_metrics,
        processing_class=feature_extractor,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    prediction = trainer.predict(trainer.eval_dataset, metric_key_prefix="eval")
    metrics = prediction.metrics
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    if trainer.is_world_process_zero():
        scores = metric.compute(
            predictions=prediction.predictions.argmax(-1), references=prediction.label_ids, num_labels=len(labels)
        )
        save_confusion_matrix(scores["confusion_matrix"], labels, Path(training_args.output_dir) / "confusion_eval")
        split = (
            f"the {data_args.eval_split_name!r} split"
            if data_args.eval_split_name
            else f"{len(evaluation)} clips of held-out speakers (column {data_args.group_column_name!r})"
        )
        write_model_card(
            training_args.output_dir,
            model.config,
            scores,
            dataset_name=card_dataset_name(data_args.dataset_name),
            training_data_description=describe_training_data(data_args, train, labels, training_args.seed),
            evaluation_description=f"Measured by `training/run_genser.py` on {split}.",
        )
    # Saved last, so that with --push_to_hub the upload carries the metrics and the card.
    trainer.save_model()
    if not trainer.is_world_process_zero():
        return metrics

    # End to end: the saved directory works with the stock audio-classification pipeline.
    classifier = pipeline("audio-classification", model=training_args.output_dir, device="cpu")
    example = evaluation[0]
    audio = example[data_args.audio_column_name].get_all_samples()
    prediction = classifier({"array": audio.data.mean(0).numpy(), "sampling_rate": audio.sample_rate}, top_k=3)
    logger.info("pipeline on one evaluation clip (true label %s): %s", labels[example["labels"]], prediction)
    return metrics


if __name__ == "__main__":
    main()
