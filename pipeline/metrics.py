"""The task metrics as a numpy function of logits (`task_metric`, what every stage reports): accuracy
(classification) and bits per character (language model). Numpy only; the Keras metric that logs BPC
during training is `pipeline.keras_metrics.BitsPerChar`."""

from __future__ import annotations

import math

import numpy as np


def task_metric(logits: np.ndarray, y: np.ndarray, task: str) -> dict:
    """Accuracy (classify: mean of argmax(logits) == y) or BPC (lm: mean over targets of
    -log2 softmax(logits)[y], computed in float64) of logits against integer targets."""
    logits = np.asarray(logits, dtype=np.float64)
    if task == "classify":
        return {"metric": "accuracy", "value": float(np.mean(np.argmax(logits, -1) == y))}
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, y[..., None].astype(np.int64), -1).mean()
    return {"metric": "bpc", "value": float(ce / math.log(2.0))}
