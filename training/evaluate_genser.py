# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Evaluate a saved Gen-SER model on labelled audio: WA, UA, macro/weighted F1 and a confusion matrix.

    python -m training.evaluate_genser --model_name_or_path outputs/gen-ser \
        --dataset_name path/to/audiofolder --output_dir outputs/evaluation
"""

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import evaluate
from transformers import AutoFeatureExtractor, HfArgumentParser, Trainer, TrainingArguments

from modeling_genser import GenSERForAudioClassification
from training.data import (
    AudioClassificationCollator,
    audio_transform,
    cast_audio,
    drop_unreadable_audio,
    encode_labels,
    load_audio_dataset,
)
from training.reports import METRICS_PATH, save_confusion_matrix

logger = logging.getLogger(__name__)


@dataclass
class EvaluationArguments:
    model_name_or_path: str = field(metadata={"help": "Saved Gen-SER model directory or Hub id."})
    dataset_name: str = field(metadata={"help": "Hub dataset id, audiofolder directory or CSV/JSON manifest."})
    dataset_config_name: str | None = field(default=None)
    split: str = field(default="train", metadata={"help": "Split to evaluate (an audiofolder's only split is train)."})
    audio_column_name: str = field(default="audio")
    label_column_name: str = field(default="label")
    unreadable_audio: str = field(default="raise", metadata={"help": "raise or skip."})
    num_inference_steps: int | None = field(default=None, metadata={"help": "Default: the model's own setting."})


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((EvaluationArguments, TrainingArguments))
    args, training_args = parser.parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    model = GenSERForAudioClassification.from_pretrained(args.model_name_or_path)
    if args.num_inference_steps is not None:
        model.config.num_inference_steps = args.num_inference_steps
    feature_extractor = AutoFeatureExtractor.from_pretrained(args.model_name_or_path)
    dataset = load_audio_dataset(args.dataset_name, args.dataset_config_name, args.audio_column_name)
    if args.split not in dataset:
        raise ValueError(f"Split {args.split!r} not found; available: {list(dataset)}.")
    dataset = drop_unreadable_audio(dataset[args.split], args.audio_column_name, args.unreadable_audio)
    dataset = encode_labels(
        cast_audio(dataset, args.audio_column_name, feature_extractor.sampling_rate),
        args.label_column_name,
        model.config.label2id,
    )
    training_args.remove_unused_columns = False
    training_args.report_to = []
    trainer = Trainer(
        model=model,
        args=training_args,
        data_collator=AudioClassificationCollator(feature_extractor),
        processing_class=feature_extractor,
    )
    prediction = trainer.predict(
        dataset.with_transform(audio_transform(args.audio_column_name, feature_extractor.sampling_rate))
    )
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    scores = evaluate.load(METRICS_PATH).compute(
        predictions=prediction.predictions.argmax(-1), references=prediction.label_ids, num_labels=len(labels)
    )
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_confusion_matrix(scores["confusion_matrix"], labels, output_dir / "confusion")
    (output_dir / "metrics.json").write_text(json.dumps(scores, indent=2))
    print(
        f"{len(dataset)} clips: UA {scores['unweighted_accuracy']:.4f} WA {scores['accuracy']:.4f} "
        f"macro-F1 {scores['macro_f1']:.4f} weighted-F1 {scores['weighted_f1']:.4f}"
    )
    return scores


if __name__ == "__main__":
    main()
