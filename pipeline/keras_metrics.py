"""The Keras metric of the language-model task: bits per character, logged during training (the
numpy metric every stage reports is `pipeline.metrics.task_metric`)."""

from __future__ import annotations

import math

import keras


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
