"""Keras callbacks: the threshold controller that makes state sparsity follow a schedule, and the
column-balanced weight pruning that makes weight sparsity follow one."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.layers import SparseStateLSTM
from pipeline.sparsity import schedule_target


def _number(name: str, value) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {name}={value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {name}={value!r}") from None


class SparsityController(keras.callbacks.Callback):
    """Steer each `SparseStateLSTM` threshold so that its measured state sparsity follows a schedule.

    Integral feedback with bounds, once per training batch:

        tau <- clip(tau + gain * (s_target(step) - s_measured), 0, max_threshold)

    where s_measured is the state sparsity of the batch just trained (the layer's
    ``last_state_sparsity``). Sparsity grows monotonically with tau, so the loop is stable for a
    small gain. ``max_threshold < 1`` keeps the controller away from the collapse a quantile rule
    hits (many |h| are exactly 1.0 in float32, and a strict ``>`` then prunes everything).
    """

    def __init__(self, schedule, gain: float = 0.05, max_threshold: float = 0.95, layers=None):
        super().__init__()
        if not callable(schedule):
            raise TypeError(
                f"schedule must be a tfmot pruning schedule (callable step -> (should_prune, sparsity)), "
                f"got schedule={schedule!r}"
            )
        if not 0.0 < _number("gain", gain) <= 1.0:
            raise ValueError(f"gain must be in (0, 1], got gain={gain!r}")
        if not 0.0 < _number("max_threshold", max_threshold) < 1.0:
            raise ValueError(f"max_threshold must be in (0, 1), got max_threshold={max_threshold!r}")
        if layers is not None:
            layers = list(layers)
            bad = [layer for layer in layers if not isinstance(layer, SparseStateLSTM)]
            if not layers or bad:
                raise ValueError(
                    "layers must be a non-empty list of SparseStateLSTM layers, got "
                    f"{[type(b).__name__ for b in bad] or 'an empty list'}"
                )
        self.schedule = schedule
        self.gain = float(gain)
        self.max_threshold = float(max_threshold)
        self._layers = layers
        self.history: list[tuple[int, float, float, float]] = []

    def _targets(self):
        if self._layers is not None:
            return self._layers
        found = [layer for layer in self.model.layers if isinstance(layer, SparseStateLSTM)]
        if not found:
            raise ValueError("SparsityController: the model has no SparseStateLSTM layer")
        return found

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        target = schedule_target(self.schedule, step)
        for layer in self._targets():
            measured = float(layer.last_state_sparsity.numpy())
            tau = float(layer.threshold.numpy())
            tau = min(max(tau + self.gain * (target - measured), 0.0), self.max_threshold)
            layer.threshold.assign(tau)
        self.history.append((step, target, measured, tau))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            for layer in self._targets():
                logs[f"{layer.name}_threshold"] = float(layer.threshold.numpy())
            if self.history:
                logs["target_sparsity"] = self.history[-1][1]



class WeightPruning(keras.callbacks.Callback):
    """Column-balanced magnitude pruning of each `SparseStateLSTM`'s W_x and W_h (layers built with
    ``weight_prune_lanes`` = P) on a tfmot schedule, with the state pruning (issue 31).

    After each training batch: when the schedule says prune (``schedule(step) -> (should_prune, s_w)``,
    tfmot's ``PolynomialDecay``/``ConstantSparsity``, every ``frequency`` steps between begin and end)
    the masks are recomputed at weight sparsity s_w (`SparseStateLSTM.prune_weights`; a pruned weight
    stays pruned); every batch the masks are applied again (``W <- W * mask``), so the optimizer's
    update of a pruned weight never reaches a forward pass and the trained weights are exactly 0 where
    pruned. Logs ``<layer>_weight_sparsity`` each epoch.
    """

    def __init__(self, schedule, layers=None):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be a tfmot pruning schedule (callable step -> (should_prune, sparsity)), "
                            f"got schedule={schedule!r}")
        if layers is not None:
            layers = list(layers)
            bad = [la for la in layers if not isinstance(la, SparseStateLSTM) or not la.weight_prune_lanes]
            if not layers or bad:
                raise ValueError("layers must be a non-empty list of SparseStateLSTM layers built with "
                                 f"weight_prune_lanes > 0, got {[getattr(b, 'name', type(b).__name__) for b in bad] or 'none'}")
        self.schedule = schedule
        self._layers = layers
        self.history: list[tuple[int, float]] = []

    def _targets(self):
        if self._layers is not None:
            return self._layers
        found = [la for la in self.model.layers if isinstance(la, SparseStateLSTM) and la.weight_prune_lanes]
        if not found:
            raise ValueError("WeightPruning: the model has no SparseStateLSTM built with weight_prune_lanes > 0")
        return found

    def on_train_begin(self, logs=None):
        for layer in self._targets():
            layer.apply_weight_masks()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        should, sparsity = self.schedule(np.int64(step))
        prune, sparsity = bool(np.asarray(should)), float(np.asarray(sparsity))
        for layer in self._targets():
            if prune:
                layer.prune_weights(sparsity)
                self.history.append((step, sparsity))
            else:
                layer.apply_weight_masks()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            for layer in self._targets():
                logs[f"{layer.name}_weight_sparsity"] = layer.weight_sparsity()
