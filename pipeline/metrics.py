"""The task metrics: accuracy (classification) and bits per character (language model), as a numpy
function of logits (`task_metric`, what every stage reports) and as Keras metrics (training)."""

from __future__ import annotations

import math

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="skiplstm")
def bits_per_char(y_true, y_pred):
    """BPC = sparse categorical cross-entropy of logits / ln 2."""
    ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    return ce / math.log(2.0)


@keras.saving.register_keras_serializable(package="skiplstm")
class BitsPerChar(keras.metrics.MeanMetricWrapper):
    """Mean bits per character over the batches of an epoch."""

    def __init__(self, name="bpc", dtype=None):
        super().__init__(fn=bits_per_char, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


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
