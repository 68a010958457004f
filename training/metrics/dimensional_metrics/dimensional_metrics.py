# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Metrics of one dimensional target (e.g. arousal) as a local `evaluate` module (`evaluate.load(path_to_this_folder)`).

- ccc: the concordance correlation coefficient (Lin, 1989), the usual score of dimensional emotion,

      ccc = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y)) ** 2)

  with population (1/N) moments. It is 1 for perfect agreement, and unlike Pearson's correlation it falls when
  predictions are shifted or scaled;
- pearson: Pearson's correlation (0 when either side is constant);
- mae: the mean absolute error, in the target's units.
"""

import datasets
import evaluate
import numpy as np


class DimensionalMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="Lin, L. I. (1989). A concordance correlation coefficient to evaluate reproducibility. Biometrics.",
            features=datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}),
        )

    def _compute(self, predictions, references):
        x = np.asarray(predictions, dtype=np.float64)
        y = np.asarray(references, dtype=np.float64)
        covariance = ((x - x.mean()) * (y - y.mean())).mean()
        denominator = x.var() + y.var() + (x.mean() - y.mean()) ** 2
        spread = x.std() * y.std()
        return {
            "ccc": float(2 * covariance / denominator) if denominator > 0 else 0.0,
            "pearson": float(covariance / spread) if spread > 0 else 0.0,
            "mae": float(np.abs(x - y).mean()),
        }
