# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Speech emotion recognition metrics as a local `evaluate` module (`evaluate.load(path_to_this_folder)`).

- accuracy: weighted accuracy (WA), the fraction of correct predictions;
- unweighted_accuracy: UA, the mean over classes of per-class recall (insensitive to class imbalance);
- macro_f1 / weighted_f1: per-class F1 averaged plainly / weighted by class support;
- confusion_matrix: counts, rows = true class, columns = predicted class.

Classes are ``0 .. num_labels - 1`` (pass ``num_labels`` so classes absent from a fold still count); a class
with no reference examples is left out of UA and macro-F1, as scikit-learn does with its labels argument.
"""

import datasets
import evaluate
import numpy as np


class SerMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, num_labels=None):
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        if num_labels is None:
            num_labels = int(max(predictions.max(initial=0), references.max(initial=0))) + 1
        confusion = np.zeros((num_labels, num_labels), dtype=np.int64)
        np.add.at(confusion, (references, predictions), 1)
        support = confusion.sum(axis=1)
        predicted = confusion.sum(axis=0)
        correct = np.diag(confusion)
        present = support > 0
        recall = np.divide(correct, support, out=np.zeros(num_labels), where=present)
        precision = np.divide(correct, predicted, out=np.zeros(num_labels), where=predicted > 0)
        denominator = precision + recall
        f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(num_labels), where=denominator > 0)
        return {
            "accuracy": float(correct.sum() / max(len(references), 1)),
            "unweighted_accuracy": float(recall[present].mean()) if present.any() else 0.0,
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "weighted_f1": float((f1 * support).sum() / max(support.sum(), 1)),
            "confusion_matrix": confusion.tolist(),
        }
