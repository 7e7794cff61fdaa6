"""State-sparsity schedules and measurement (the threshold controller that follows a schedule is
`pipeline.callbacks.SparsityController`).

State sparsity of one layer over a batch of sequences: the fraction of the states that feed a recurrent
product which are exact zeros (each one a weight column the accelerator skips, `pipeline.accelerator`):

    sparsity = #{(n, t, k) : h_{t-1}[n, k] == 0, t = 2..T} / (N * (T - 1) * H)

i.e. the fraction of exact zeros among the computed states h_1 .. h_{T-1} that feed a recurrent
product. The initial state h_0 = 0 is excluded: it is zero by construction, not by pruning.

Schedules are tfmot's (`PolynomialDecay`, `ConstantSparsity`): ``schedule(step) -> (should_prune,
sparsity)``. tfmot sets ``TF_USE_LEGACY_KERAS=1`` when imported, which would turn ``tf.keras`` into
Keras 2 for the whole process; `tfmot_sparsity` imports it in one place, after pinning ``tf.keras``
to Keras 3, and restores the variable.
"""

from __future__ import annotations

import importlib
import os

import numpy as np


def tfmot_sparsity():
    """Return ``tensorflow_model_optimization.sparsity.keras`` without changing ``tf.keras``."""
    import tensorflow as tf

    _ = tf.keras.layers  # resolve TF's lazy keras loader now, while it still points at Keras 3
    saved = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        tfmot = importlib.import_module("tensorflow_model_optimization")
    finally:
        if saved is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = saved
    return tfmot.sparsity.keras


def _check_target(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {name}={value!r}")
    return value


def polynomial_decay(initial_sparsity: float, final_sparsity: float, begin_step: int, end_step: int,
                     power: float = 3, frequency: int = 1):
    """tfmot ``PolynomialDecay``: s(t) = s_f + (s_i - s_f) * (1 - p)^power, p = clip((t-b)/(e-b), 0, 1)."""
    _check_target("initial_sparsity", initial_sparsity)
    _check_target("final_sparsity", final_sparsity)
    if end_step <= begin_step:
        raise ValueError(f"end_step must be > begin_step, got begin_step={begin_step}, end_step={end_step}")
    return tfmot_sparsity().PolynomialDecay(
        initial_sparsity, final_sparsity, begin_step, end_step, power=power, frequency=frequency
    )


def constant_sparsity(target_sparsity: float, begin_step: int = 0, frequency: int = 1):
    """tfmot ``ConstantSparsity``: s(t) = target for t >= begin_step."""
    _check_target("target_sparsity", target_sparsity)
    return tfmot_sparsity().ConstantSparsity(target_sparsity, begin_step, frequency=frequency)


def schedule_target(schedule, step: int) -> float:
    """The sparsity a tfmot schedule asks for at ``step`` (as a Python float)."""
    _, sparsity = schedule(np.int64(step))
    return float(np.asarray(sparsity))


def sequence_state_sparsity(h_seq: np.ndarray) -> float:
    """State sparsity of a ``(N, T, H)`` array of pruned states h_1..h_T (formula in module doc)."""
    h_seq = np.asarray(h_seq)
    if h_seq.ndim != 3:
        raise ValueError(f"expected states of shape (N, T, H), got shape {h_seq.shape}")
    fed = h_seq[:, :-1, :]
    if fed.size == 0:
        return 0.0
    return float(np.mean(fed == 0))


def state_sparsity(model, x, batch_size: int = 256) -> dict[str, float]:
    """Measure the state sparsity of every `SparseStateLSTM` of ``model`` on inputs ``x``."""
    import keras

    from pipeline.layers import SparseStateLSTM

    layers = [layer for layer in model.layers if isinstance(layer, SparseStateLSTM)]
    if not layers:
        raise ValueError(f"model {model.name!r} has no SparseStateLSTM layer")
    result = {}
    for layer in layers:
        rs = layer.return_sequences
        layer.return_sequences = True
        try:
            probe = keras.Model(model.inputs, layer(layer.input))
            seq = probe.predict(x, batch_size=batch_size, verbose=0)
        finally:
            layer.return_sequences = rs
        result[layer.name] = sequence_state_sparsity(seq)
    return result
